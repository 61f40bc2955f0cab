"""The CNI error: a spec error code, a short message and details (SPEC.md, section 5 "Error").

The same type serves both sides of the protocol:
  - a plugin raises CNIError and cni/skel.py prints it as the spec's JSON error object;
  - the executor turns a plugin's JSON error back into a PluginFailed (a CNIError) that also names
    the plugin and the command, so the agent's log says *which* plugin refused and why.
Runtime-side problems (no such plugin, a broken config file) are CNIErrors too, with the closest code.
"""

from __future__ import annotations

# Well-known codes, SPEC.md section 5. 0-99 are reserved by the spec; 100+ are plugin-specific.
UNKNOWN = 0
INCOMPATIBLE_CNI_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT_VARIABLES = 4
IO_FAILURE = 5
DECODING_FAILURE = 6
INVALID_NETWORK_CONFIG = 7
INVALID_NETNS = 8          # libcni's skel: CNI_NETNS is the plugin's own namespace
TRY_AGAIN_LATER = 11
PLUGIN_NOT_AVAILABLE = 50
LIMITED_CONNECTIVITY = 51
INTERNAL = 999             # libcni's skel uses this for any non-CNI error

# Ours (100+).
ADDRESS_IN_USE = 100       # a hostPort another pod already maps
INTERFACE_EXISTS = 101     # ADD for an attachment that exists (its interface, or its cache entry)


class CNIError(Exception):
    def __init__(self, code: int, msg: str, details: str = ""):
        self.code = code
        self.msg = msg
        self.details = details
        super().__init__(f"{msg}: {details}" if details else msg)

    def to_json(self, cni_version: str) -> dict:
        out = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def from_json(cls, obj: dict) -> "CNIError":
        return cls(int(obj.get("code", UNKNOWN)), str(obj.get("msg", "")), str(obj.get("details", "")))


class PluginFailed(CNIError):
    """A plugin in the chain returned an error (or died without a proper one)."""

    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = ""):
        self.plugin = plugin
        self.command = command
        super().__init__(code, msg, details)

    def __str__(self) -> str:
        # libcni's words: `plugin type="bridge" ... failed (add): <the plugin's msg>`
        text = f'plugin type="{self.plugin}" failed ({self.command.lower()}): {self.msg}'
        if self.details:
            text += f": {self.details}"
        return text + f" [CNI code {self.code}]"


class PluginNotFound(CNIError):
    def __init__(self, plugin: str, path: list[str]):
        self.plugin = plugin
        self.path = path
        where = ":".join(path) if path else "(CNI_PATH is empty)"
        super().__init__(UNKNOWN, f"failed to find plugin {plugin!r} in path {where}",
                         "install it there (e.g. `nodeagent cni install`) or fix the bin dirs")


class ConfigError(CNIError):
    """A network configuration file or object that cannot be used; names the file and the field."""

    def __init__(self, msg: str, details: str = "", code: int = INVALID_NETWORK_CONFIG):
        super().__init__(code, msg, details)
