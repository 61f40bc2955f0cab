"""Pod volumes: what `volumes` and `volumeMounts` become on the node (the kubelet's volumemanager,
for the volume types a single node serves itself).

Every volume is a directory (or a file) of the agent's, then bind-mounted into each container
that names it in volumeMounts (with subPath and readOnly); the runtime does the mount:

    <pods-dir>/<pod uid>/volumes/<plugin>/<volume name>/

    emptyDir      an empty directory, for the pod's life (shared by its containers)
    hostPath      the node's own path; DirectoryOrCreate / FileOrCreate make it, Directory / File
                  / Socket insist it is there
    configMap     one file per key (or per `items` entry), mode defaultMode (0644)
    secret        the same, from a Secret's decoded data
    downwardAPI   the pod's own fields (labels, annotations, name, ...) and resources, as files
    projected     configMap, secret and downwardAPI sources in one directory

Files are rewritten when their content changes (an edited ConfigMap reaches running pods on the
next sync, as on a real node) and each write is atomic (a temporary file renamed over the old
one): a program reading a key never sees half of it. A missing ConfigMap or Secret (not
`optional`) is FailedMount, with the kubelet's message, and the containers wait.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import localfs
from nodeagent.cri.api import Mount
from nodeagent.envvars import Lookup, field_value, resource_value
from nodeagent.errors import AgentError

PLUGIN_DIR = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
              "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
              "projected": "kubernetes.io~projected"}
DEFAULT_MODE = 0o644


class VolumeError(AgentError):
    reason = "FailedMount"


def pod_dir(pods_dir: str, uid: str) -> Path:
    return Path(pods_dir) / uid


# --- gathering what to write (async: reads the API) --------------------------------------------------
async def _object_files(kind: str, src: dict, ns: str, lookup: Lookup, vol: str) -> dict[str, tuple[bytes, int]] | None:
    name = src.get("name", "")
    obj = await lookup("configmaps" if kind == "configMap" else "secrets", ns, name)
    if obj is None:
        if src.get("optional"):
            return {}
        word = "configmap" if kind == "configMap" else "secret"
        raise VolumeError(f'MountVolume.SetUp failed for volume "{vol}" : {word} "{name}" not found')
    data: dict[str, bytes] = {}
    if kind == "secret":
        data.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
    else:
        data.update({k: v.encode() for k, v in (obj.get("data") or {}).items()})
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    mode = src.get("defaultMode", DEFAULT_MODE)
    items = src.get("items")
    if not items:
        return {k: (v, mode) for k, v in data.items()}
    out = {}
    for it in items:
        if it["key"] not in data:
            if src.get("optional"):
                continue
            raise VolumeError(f'MountVolume.SetUp failed for volume "{vol}" : configmap references '
                              f'non-existent config key: {it["key"]}' if kind == "configMap" else
                              f'MountVolume.SetUp failed for volume "{vol}" : references non-existent '
                              f'secret key: {it["key"]}')
        out[it.get("path") or it["key"]] = (data[it["key"]], it.get("mode", mode))
    return out


def _downward_files(pod: dict, src: dict, allocatable: dict[str, int]) -> dict[str, tuple[bytes, int]]:
    mode = src.get("defaultMode", DEFAULT_MODE)
    out = {}
    containers = {c["name"]: c for c in (pod.get("spec") or {}).get("containers") or []}
    for it in src.get("items") or []:
        if "fieldRef" in it:
            value = field_value(pod, it["fieldRef"].get("fieldPath", ""))
        else:
            ref = it.get("resourceFieldRef") or {}
            c = containers.get(ref.get("containerName", "")) or next(iter(containers.values()), {})
            value = resource_value(pod, c, ref, allocatable)
        out[it["path"]] = (value.encode(), it.get("mode", mode))
    return out


async def plan(pod: dict, lookup: Lookup, allocatable: dict[str, int]) -> dict[str, tuple[str, object]]:
    """volume name → (kind, what to make): files for configMap/secret/downwardAPI/projected,
    the spec for emptyDir/hostPath. Raises VolumeError."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    out: dict[str, tuple[str, object]] = {}
    for v in (pod.get("spec") or {}).get("volumes") or []:
        name = v["name"]
        if "emptyDir" in v:
            out[name] = ("emptyDir", None)
        elif "hostPath" in v:
            out[name] = ("hostPath", v["hostPath"])
        elif "configMap" in v or "secret" in v:
            kind = "configMap" if "configMap" in v else "secret"
            src = dict(v[kind])
            if kind == "secret":
                src["name"] = src.get("secretName", "")
            out[name] = (kind, await _object_files(kind, src, ns, lookup, name))
        elif "downwardAPI" in v:
            out[name] = ("downwardAPI", _downward_files(pod, v["downwardAPI"], allocatable))
        elif "projected" in v:
            files: dict[str, tuple[bytes, int]] = {}
            mode = v["projected"].get("defaultMode", DEFAULT_MODE)
            for s in v["projected"].get("sources") or []:
                if "configMap" in s:
                    files.update(await _object_files("configMap", {"defaultMode": mode, **s["configMap"]},
                                                     ns, lookup, name) or {})
                elif "secret" in s:
                    files.update(await _object_files("secret", {"defaultMode": mode, **s["secret"]},
                                                     ns, lookup, name) or {})
                elif "downwardAPI" in s:
                    files.update(_downward_files(pod, {"defaultMode": mode, **s["downwardAPI"]}, allocatable))
                # serviceAccountToken needs the TokenRequest API: not served here yet, so skipped
            out[name] = ("projected", files)
        else:
            kind = next((k for k in v if k != "name"), "?")
            raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : volume type {kind} '
                              "is not supported on this node")
    return out


# --- making them (blocking: call in a thread) --------------------------------------------------------
def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    try:
        if path.read_bytes() == data and (path.stat().st_mode & 0o7777) == mode:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    localfs.write_atomic(path, data, mode)


def _safe_rel(p: str) -> str:
    rel = os.path.normpath(p)
    if rel.startswith("..") or os.path.isabs(rel):
        raise VolumeError(f"volume file path {p!r} must be relative and must not contain '..'")
    return rel


def make(pods_dir: str, uid: str, planned: dict[str, tuple[str, object]]) -> dict[str, str]:
    """Create every volume; volume name → host path."""
    paths: dict[str, str] = {}
    base = pod_dir(pods_dir, uid) / "volumes"
    for name, (kind, what) in planned.items():
        if kind == "hostPath":
            paths[name] = _host_path(name, what)
            continue
        d = base / PLUGIN_DIR[kind] / name
        d.mkdir(parents=True, exist_ok=True)
        if kind != "emptyDir":
            d.chmod(0o755)
            wanted = {_safe_rel(rel): v for rel, v in (what or {}).items()}
            for rel, (data, mode) in wanted.items():
                _write_atomic(d / rel, data, mode)
            for f in d.rglob("*"):         # a key removed from the ConfigMap goes away too
                if f.is_file() and str(f.relative_to(d)) not in wanted:
                    f.unlink()
        else:
            d.chmod(0o777)
        paths[name] = str(d)
    return paths


def _host_path(name: str, spec: dict) -> str:
    path, type_ = spec.get("path", ""), spec.get("type", "")
    p = Path(path)
    if type_ == "DirectoryOrCreate":
        p.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif type_ == "FileOrCreate":
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=0o644, exist_ok=True)
    elif type_ in ("Directory", "File", "Socket", "CharDevice", "BlockDevice") and not p.exists():
        raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : hostPath type check '
                          f'failed: {path} is not a {type_.lower()}')
    return path


def mounts(container: dict, paths: dict[str, str]) -> list[Mount]:
    """The container's volumeMounts as CRI mounts (subPath made inside the volume if missing)."""
    out = []
    for vm in container.get("volumeMounts") or []:
        src = paths.get(vm["name"])
        if src is None:
            raise VolumeError(f'volumeMount "{vm["name"]}" names no volume of the pod')
        if vm.get("subPath"):
            src = os.path.join(src, _safe_rel(vm["subPath"]))
            if not os.path.exists(src):
                os.makedirs(src, exist_ok=True)
        prop = {"HostToContainer": "rslave", "Bidirectional": "rshared"}.get(
            vm.get("mountPropagation", ""), "private")
        out.append(Mount(container_path=vm["mountPath"], host_path=src,
                         readonly=bool(vm.get("readOnly")), propagation=prop))
    return out


def remove(pods_dir: str, uid: str) -> None:
    """The pod's directory, volumes and termination-log files with it (after its containers)."""
    shutil.rmtree(pod_dir(pods_dir, uid), ignore_errors=True)
