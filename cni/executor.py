"""The CNI executor: the runtime side of the spec, as libcni implements it.

    ex = CNIExecutor(bin_dirs=["/opt/cni/bin"], cache_dir="/var/lib/cni")
    net = find_network(Path("/etc/cni/net.d"))                 # cni/config.py
    result = ex.add(net, RuntimeConf(container_id, "/run/netns/pod1", "eth0"))
    ex.check(net, rt); ex.delete(net, rt); ex.gc(net, valid=[(cid, "eth0")]); ex.status(net)

ADD  runs the plugins in order, each getting the previous one's result as prevResult, stops at the
     first error, and caches the final result (cni/cache.py). Every plugin is looked up *before*
     the first one runs, so a missing plugin fails cleanly instead of half-way through the chain.
DEL  runs them in reverse, each getting the cached ADD result as prevResult (spec >= 0.4.0), and
     removes the cache entry when all succeeded. DEL of something never added is fine.
CHECK like ADD's order, with the cached result; skipped when the list says disableCheck.
GC   DELs every cached attachment of the network not in the valid list, then (spec >= 1.1.0)
     sends GC with cni.dev/valid-attachments to every plugin, collecting all errors.
STATUS (spec >= 1.1.0) asks each plugin whether it can take ADDs.

Version: the config list's cniVersion is used as written. When it also lists `cniVersions`, we pick
the highest version that every plugin of the chain supports (asking each with VERSION, once), which
the spec allows ("runtimes MAY consider the set of supported plugin versions"): the same conflist
then runs with our plugins at 1.1.0 and with Debian's reference plugins (<= 1.0.0) at 1.0.0.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable

from cni import version as cniversion
from cni.cache import CachedAttachment, ResultCache, RuntimeConf
from cni.config import NAME_RE, NetworkConfigList, build_request, parse_conflist
from cni.errors import (INCOMPATIBLE_CNI_VERSION, INVALID_ENVIRONMENT_VARIABLES, INVALID_NETWORK_CONFIG,
                        UNKNOWN_CONTAINER, CNIError, PluginFailed)
from cni.invoke import ExecRunner, Invocation, Runner, find_in_path
from cni.result import Result
from cni.skel import check_ifname

DEFAULT_CACHE_DIR = "/var/lib/cni"
_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")


def validate_attachment(net: NetworkConfigList, rt: RuntimeConf) -> None:
    if not rt.container_id:
        raise CNIError(UNKNOWN_CONTAINER, "missing container ID")
    if not _ID_RE.match(rt.container_id):
        raise CNIError(INVALID_ENVIRONMENT_VARIABLES, "invalid characters in container ID", rt.container_id)
    if not NAME_RE.match(net.name):
        raise CNIError(INVALID_NETWORK_CONFIG, "invalid characters found in network name", net.name)
    check_ifname(rt.ifname)


class CNIExecutor:
    def __init__(self, bin_dirs: Iterable[str], cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
                 runner: Runner | None = None):
        self.path = [str(d) for d in bin_dirs]
        self.cache = ResultCache(cache_dir)
        self.runner = runner or ExecRunner()
        self._versions: dict[tuple[str, float], tuple[str, ...]] = {}  # (exe, mtime) → VERSION answer
        self._versions_lock = threading.Lock()

    # --- plumbing --------------------------------------------------------------------------------
    def _invoke(self, plugin_type: str, command: str, request: dict, rt: RuntimeConf | None,
                runner: Runner | None = None) -> bytes:
        exe = find_in_path(plugin_type, self.path)
        inv = Invocation(command, rt.container_id if rt else "", rt.netns if rt else "",
                         rt.ifname if rt else "", rt.cni_args() if rt else "", tuple(self.path))
        return (runner or self.runner).run(exe, plugin_type, inv.env(), json.dumps(request).encode())

    def version_info(self, plugin_type: str, runner: Runner | None = None) -> tuple[str, ...]:
        """What the plugin answers to VERSION (cached per executable and modification time)."""
        exe = find_in_path(plugin_type, self.path)
        key = (exe, os.stat(exe).st_mtime)
        with self._versions_lock:
            if key in self._versions:
                return self._versions[key]
        # libcni sets dummy values for plugins built against old skels that demanded them
        env = Invocation("VERSION", "", "dummy", "dummy", "", ("dummy",)).env()
        out = (runner or self.runner).run(exe, plugin_type, env,
                                          json.dumps({"cniVersion": cniversion.CURRENT}).encode())
        try:
            supported = tuple(json.loads(out).get("supportedVersions") or ())
        except (ValueError, AttributeError):
            raise PluginFailed(plugin_type, "VERSION", 6, "cannot decode the VERSION answer", out[:200].decode()) from None
        with self._versions_lock:
            self._versions[key] = supported
        return supported

    def negotiate(self, net: NetworkConfigList, runner: Runner | None = None) -> NetworkConfigList:
        """With `cniVersions` in the list: the highest version all plugins support (see module doc)."""
        if not net.cni_versions:
            return net
        candidates = sorted({*net.cni_versions, *([net.raw.get("cniVersion")] if net.raw.get("cniVersion") else [])},
                            key=cniversion.parse, reverse=True)
        candidates = [c for c in candidates if cniversion.parse(c) <= cniversion.parse(cniversion.CURRENT)]
        supported = [set(self.version_info(p.type, runner)) for p in net.plugins]
        for v in candidates:
            if all(v in s for s in supported):
                return net if v == net.cni_version else net.with_version(v)
        raise CNIError(INCOMPATIBLE_CNI_VERSION, f"network {net.name!r}: no CNI version supported by every plugin",
                       f"config lists {candidates}; plugins support "
                       + "; ".join(f"{p.type}: {sorted(s)}" for p, s in zip(net.plugins, supported)))

    def _check_plugins_exist(self, net: NetworkConfigList) -> None:
        for p in net.plugins:
            find_in_path(p.type, self.path)

    def _cached_prev(self, net: NetworkConfigList, rt: RuntimeConf) -> dict | None:
        entry = self.cache.read(net.name, rt)
        if entry is None or not entry.result:
            return None
        try:  # hand it over in the version of the config, as libcni does
            return Result.from_json(entry.result, net.cni_version).to_json(net.cni_version)
        except CNIError:
            return None

    # --- the operations --------------------------------------------------------------------------
    def add(self, net: NetworkConfigList, rt: RuntimeConf, runner: Runner | None = None) -> Result:
        validate_attachment(net, rt)
        self._check_plugins_exist(net)
        net = self.negotiate(net, runner)
        prev: dict | None = None
        result: Result | None = None
        for plugin in net.plugins:
            req = build_request(net, plugin, prev_result=prev, capability_args=rt.capability_args)
            out = self._invoke(plugin.type, "ADD", req, rt, runner)
            try:
                raw = json.loads(out)
            except ValueError:
                raise PluginFailed(plugin.type, "ADD", 6, "plugin output is not JSON", out[:200].decode(errors="replace")) from None
            result = Result.from_json(raw, net.cni_version)
            prev = result.to_json(net.cni_version)
        assert result is not None
        self.cache.write(net.name, rt, net.to_bytes(), result.to_json(net.cni_version))
        return result.with_version(net.cni_version)

    def delete(self, net: NetworkConfigList, rt: RuntimeConf, runner: Runner | None = None) -> None:
        validate_attachment(net, rt)
        self._check_plugins_exist(net)
        net = self.negotiate(net, runner)
        prev = self._cached_prev(net, rt) if cniversion.at_least(net.cni_version, "0.4.0") else None
        for plugin in reversed(net.plugins):
            req = build_request(net, plugin, prev_result=prev, capability_args=rt.capability_args)
            self._invoke(plugin.type, "DEL", req, rt, runner)
        self.cache.delete(net.name, rt)

    def check(self, net: NetworkConfigList, rt: RuntimeConf, runner: Runner | None = None) -> None:
        validate_attachment(net, rt)
        if not cniversion.at_least(net.cni_version, "0.4.0"):
            raise CNIError(INCOMPATIBLE_CNI_VERSION, f"configuration version {net.cni_version!r} does not support CHECK")
        if net.disable_check:
            return
        self._check_plugins_exist(net)
        net = self.negotiate(net, runner)
        prev = self._cached_prev(net, rt)
        if prev is None:
            raise CNIError(UNKNOWN_CONTAINER, f"no cached result for {rt.container_id} ({rt.ifname}) "
                                              f"in network {net.name!r}", "CHECK is only valid after ADD")
        for plugin in net.plugins:
            req = build_request(net, plugin, prev_result=prev, capability_args=rt.capability_args)
            self._invoke(plugin.type, "CHECK", req, rt, runner)

    def gc(self, net: NetworkConfigList, valid: Iterable[tuple[str, str]],
           runner: Runner | None = None) -> None:
        if net.disable_gc:
            return
        valid = set(valid)
        errors: list[str] = []
        for entry in self.cached_attachments(net.name):
            if (entry.container_id, entry.ifname) in valid:
                continue
            try:
                self.delete(self._config_of(entry, net), entry.runtime_conf(), runner)
            except CNIError as e:
                errors.append(f"failed to delete stale attachment {entry.container_id} {entry.ifname}: {e}")
        net = self.negotiate(net, runner)
        if cniversion.at_least(net.cni_version, "1.1.0"):
            attachments = [{"containerID": c, "ifname": i} for c, i in sorted(valid)]
            for plugin in net.plugins:
                req = build_request(net, plugin, attachment=False)
                req["cni.dev/valid-attachments"] = attachments
                try:
                    self._invoke(plugin.type, "GC", req, None, runner)
                except CNIError as e:
                    errors.append(f"GC of plugin {plugin.type}: {e}")
        if errors:
            raise CNIError(0, f"GC of network {net.name!r} incomplete", "; ".join(errors))

    def status(self, net: NetworkConfigList, runner: Runner | None = None) -> None:
        net = self.negotiate(net, runner)
        if not cniversion.at_least(net.cni_version, "1.1.0"):
            return
        for plugin in net.plugins:
            self._invoke(plugin.type, "STATUS", build_request(net, plugin, attachment=False), None, runner)

    # --- the cache, for the runtime --------------------------------------------------------------
    def cached_result(self, net: NetworkConfigList, rt: RuntimeConf) -> Result | None:
        entry = self.cache.read(net.name, rt)
        return Result.from_json(entry.result, net.cni_version) if entry and entry.result else None

    def cached_attachments(self, network: str | None = None) -> list[CachedAttachment]:
        return [e for e in self.cache.all() if network is None or e.network == network]

    @staticmethod
    def _config_of(entry: CachedAttachment, fallback: NetworkConfigList) -> NetworkConfigList:
        """The config an attachment was ADDed with (the cache keeps it), else the current one."""
        if entry.config:
            try:
                return parse_conflist(entry.config, f"cached config of {entry.path.name}")
            except CNIError:
                pass
        return fallback
