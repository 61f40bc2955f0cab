"""The runtime's memory of attachments: the last ADD result, for CHECK, DEL and GC.

The spec makes the runtime keep the final ADD result ("the runtime must store the result returned by
the final plugin persistently") because DEL and CHECK must pass it as prevResult, and GC must know
which attachments exist. libcni keeps one JSON file per attachment; we write the very same format, so
the cache is readable by any libcni-based tool:

    /var/lib/cni/results/<network>-<container id>-<ifname>
    {"kind": "cniCacheV1", "containerId": ..., "ifName": ..., "networkName": ..., "netns": ...,
     "config": <the network config list, base64 — Go's encoding of []byte>,
     "cniArgs": [["K", "V"], ...], "capabilityArgs": {"portMappings": [...]}, "result": {...}}

Files are written to a temporary name and renamed, so a crash never leaves half a cache entry.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import localfs

KIND = "cniCacheV1"


@dataclass(frozen=True)
class RuntimeConf:
    """The attachment parameters of one ADD/CHECK/DEL (SPEC.md section 3)."""

    container_id: str
    netns: str
    ifname: str = "eth0"
    args: tuple[tuple[str, str], ...] = ()       # CNI_ARGS as pairs
    capability_args: dict = field(default_factory=dict)  # e.g. {"portMappings": [...]}

    def cni_args(self) -> str:
        return ";".join(f"{k}={v}" for k, v in self.args)


@dataclass(frozen=True)
class CachedAttachment:
    network: str
    container_id: str
    ifname: str
    netns: str
    config: bytes
    cni_args: tuple[tuple[str, str], ...]
    capability_args: dict
    result: dict | None
    path: Path

    def runtime_conf(self) -> RuntimeConf:
        return RuntimeConf(self.container_id, self.netns, self.ifname, self.cni_args, self.capability_args)


class ResultCache:
    def __init__(self, cache_dir: str | os.PathLike):
        self.dir = Path(cache_dir) / "results"

    def path(self, network: str, rt: RuntimeConf) -> Path:
        return self.dir / f"{network}-{rt.container_id}-{rt.ifname}"

    def write(self, network: str, rt: RuntimeConf, config: bytes, result: dict) -> Path:
        entry = {"kind": KIND, "containerId": rt.container_id, "config": base64.b64encode(config).decode(),
                 "ifName": rt.ifname, "networkName": network, "result": result}
        if rt.netns:
            entry["netns"] = rt.netns
        if rt.args:
            entry["cniArgs"] = [list(a) for a in rt.args]
        if rt.capability_args:
            entry["capabilityArgs"] = rt.capability_args
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.path(network, rt)
        localfs.write_atomic(final, json.dumps(entry), 0o600)
        return final

    def read(self, network: str, rt: RuntimeConf) -> CachedAttachment | None:
        return self._load(self.path(network, rt))

    def delete(self, network: str, rt: RuntimeConf) -> None:
        try:
            self.path(network, rt).unlink()
        except FileNotFoundError:
            pass

    def all(self) -> list[CachedAttachment]:
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            if n.startswith("."):
                continue
            entry = self._load(self.dir / n)
            if entry is not None:
                out.append(entry)
        return out

    @staticmethod
    def _load(path: Path) -> CachedAttachment | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # missing (DEL twice) or not a cache entry of ours: nothing cached
        if not isinstance(data, dict) or data.get("kind") != KIND:
            return None
        try:
            config = base64.b64decode(data.get("config") or "")
        except ValueError:
            config = b""
        return CachedAttachment(data.get("networkName", ""), data.get("containerId", ""),
                                data.get("ifName", ""), data.get("netns", ""), config,
                                tuple(tuple(a) for a in data.get("cniArgs") or ()),
                                data.get("capabilityArgs") or {}, data.get("result"), path)
