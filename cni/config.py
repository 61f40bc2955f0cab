"""Network configurations: reading them from a conf dir, and deriving each plugin's request.

A network configuration (SPEC.md section 1) is a JSON file in the conf dir (/etc/cni/net.d):
a `.conflist` holds {"cniVersion", "name", "plugins": [...]}; an old-style `.conf`/`.json` holds one
plugin object with its own name and cniVersion and is "up-converted" to a one-plugin list.

Discovery, as libcni does it:
  - by name: the first `.conflist` (files sorted by name) whose "name" matches; failing that, the
    first matching `.conf`/`.json`;
  - no name given (the agent's default network): the first `.conflist` in sorted order, else the first
    `.conf`/`.json` — so `10-nodeagent.conflist` wins over `99-loopback.conf` and over
    `00-old.conf` alike.
A file that cannot be parsed is an error naming the file, never silently skipped.

The request a plugin gets (section 3, "Deriving request configuration") is its plugin object with
`name` and `cniVersion` of the list inserted, `prevResult` when there is one, `runtimeConfig` made of
the capabilities it declares that the runtime supplied (portMappings, ...), and `capabilities` removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cni import version as cniversion
from cni.errors import DECODING_FAILURE, ConfigError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")


@dataclass(frozen=True)
class PluginConf:
    type: str
    raw: dict  # the plugin object exactly as configured (read-only by convention)

    @property
    def capabilities(self) -> dict:
        caps = self.raw.get("capabilities") or {}
        return caps if isinstance(caps, dict) else {}


@dataclass(frozen=True)
class NetworkConfigList:
    name: str
    cni_version: str
    plugins: tuple[PluginConf, ...]
    cni_versions: tuple[str, ...] = ()
    disable_check: bool = False
    disable_gc: bool = False
    source: str = ""          # the file it came from ("" when built in code)
    raw: dict = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return json.dumps(self.raw).encode()

    def with_version(self, v: str) -> "NetworkConfigList":
        raw = dict(self.raw, cniVersion=v)
        return NetworkConfigList(self.name, v, self.plugins, self.cni_versions, self.disable_check,
                                 self.disable_gc, self.source, raw)


def _bool(raw: dict, key: str, where: str) -> bool:
    v = raw.get(key, False)
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise ConfigError(f"{where}: invalid value {v!r} for {key}", "want true or false")


def parse_conflist(data: bytes | str | dict, source: str = "") -> NetworkConfigList:
    where = source or "network configuration"
    if isinstance(data, dict):
        raw = data
    else:
        try:
            raw = json.loads(data)
        except ValueError as e:
            raise ConfigError(f"{where}: not valid JSON", str(e), DECODING_FAILURE) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: missing network name (field \"name\")")
    if not NAME_RE.match(name):
        raise ConfigError(f"{where}: invalid characters in network name {name!r}",
                          "a letter or digit, then letters, digits, '_', '.', '-'")
    declared = raw.get("cniVersion", "")
    if not isinstance(declared, str):
        raise ConfigError(f"{where}: invalid cniVersion {declared!r}", "must be a string")
    versions = raw.get("cniVersions") or []
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        raise ConfigError(f"{where}: invalid cniVersions", "must be a list of version strings")
    for v in [*versions, *([declared] if declared else [])]:
        try:
            cniversion.parse(v)
        except Exception:
            raise ConfigError(f"{where}: invalid version {v!r} in cniVersion(s)") from None
    # Highest version listed that this runtime implements (the spec's rule); a lone cniVersion is
    # taken as written, so that a version we do not speak fails loudly at the plugin (code 1).
    chosen = cniversion.highest([*versions, *([declared] if declared else [])]) if versions else declared
    if not chosen:
        raise ConfigError(f"{where}: no usable cniVersion", f"listed: {versions or declared!r}")
    plugins_raw = raw.get("plugins")
    if not isinstance(plugins_raw, list) or not plugins_raw:
        raise ConfigError(f"{where}: \"plugins\" must be a non-empty list")
    plugins = []
    for i, p in enumerate(plugins_raw):
        if not isinstance(p, dict) or not isinstance(p.get("type"), str) or not p["type"]:
            raise ConfigError(f"{where}: plugins[{i}] has no \"type\"")
        if "/" in p["type"]:
            raise ConfigError(f"{where}: plugins[{i}].type {p['type']!r} must not contain '/'")
        plugins.append(PluginConf(p["type"], p))
    return NetworkConfigList(name, chosen, tuple(plugins), tuple(versions),
                             _bool(raw, "disableCheck", where), _bool(raw, "disableGC", where),
                             source, raw)


def conf_to_conflist(data: bytes | str, source: str = "") -> NetworkConfigList:
    """Up-convert a single-plugin `.conf` to a list (libcni's ConfListFromConf)."""
    where = source or "network configuration"
    try:
        raw = json.loads(data)
    except ValueError as e:
        raise ConfigError(f"{where}: not valid JSON", str(e), DECODING_FAILURE) from None
    if not isinstance(raw, dict) or not raw.get("type"):
        raise ConfigError(f"{where}: missing plugin \"type\"")
    return parse_conflist({"name": raw.get("name"), "cniVersion": raw.get("cniVersion", ""),
                           "plugins": [raw]}, source)


def load_file(path: Path) -> NetworkConfigList:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}", e.strerror or str(e), 5) from e
    if path.suffix == ".conflist":
        return parse_conflist(data, str(path))
    return conf_to_conflist(data, str(path))


def conf_files(conf_dir: Path) -> tuple[list[Path], list[Path]]:
    """(sorted .conflist files, sorted .conf/.json files) in `conf_dir`; missing dir → empty."""
    try:
        entries = [p for p in conf_dir.iterdir() if p.is_file()]
    except FileNotFoundError:
        return [], []
    lists = sorted(p for p in entries if p.suffix == ".conflist")
    singles = sorted(p for p in entries if p.suffix in (".conf", ".json"))
    return lists, singles


def find_network(conf_dir: Path, name: str | None = None) -> NetworkConfigList:
    """The network called `name` in `conf_dir`, or (name None) the default one; see module doc."""
    conf_dir = Path(conf_dir)
    lists, singles = conf_files(conf_dir)
    if not lists and not singles:
        raise ConfigError(f"no network configurations found in {conf_dir}",
                          "write one (e.g. `nodeagent cni install --pod-cidr ...`)")
    for path in [*lists, *singles]:
        conf = load_file(path)
        if name is None or conf.name == name:
            return conf
    raise ConfigError(f"no network configuration named {name!r} in {conf_dir}",
                      f"found: {', '.join(p.name for p in [*lists, *singles])}")


def build_request(net: NetworkConfigList, plugin: PluginConf, *, prev_result: dict | None = None,
                  capability_args: dict | None = None, attachment: bool = True) -> dict:
    """The JSON object plugin `plugin` receives on stdin (section 3)."""
    req = {k: v for k, v in plugin.raw.items() if k != "capabilities"}
    req["name"] = net.name
    req["cniVersion"] = net.cni_version
    if prev_result is not None:
        req["prevResult"] = prev_result
    if attachment:
        runtime = {cap: capability_args[cap] for cap, on in plugin.capabilities.items()
                   if on and capability_args and cap in capability_args}
        if runtime:
            req["runtimeConfig"] = runtime
    return req
