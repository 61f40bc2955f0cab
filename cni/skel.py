"""The plugin side of the CNI protocol: from environment + stdin to a handler call, and back.

What every plugin executable has to do before and after its real work (libcni's `skel` package
does the same for Go plugins):

  1. read CNI_COMMAND; with none set, print what the plugin is (for a human who ran it) and stop;
  2. check the variables the command requires — ADD/CHECK need CNI_CONTAINERID, CNI_NETNS,
     CNI_IFNAME, CNI_PATH; DEL the same but CNI_NETNS may be empty; GC/STATUS only CNI_PATH —
     and report every missing one in a single error (code 4);
  3. VERSION: answer {"cniVersion", "supportedVersions"} and stop;
  4. parse stdin (code 6 if not JSON), check the network name (code 7) and that the config's
     cniVersion is one we speak (code 1) — CHECK needs >= 0.4.0, GC and STATUS need >= 1.1.0;
  5. refuse to configure the plugin's own network namespace (code 8);
  6. call the handler; print its Result in the config's version (ADD) or nothing (others);
     any error becomes the spec's JSON error object on stdout and a non-zero exit status.

`dispatch()` is a pure function of (plugin, env, stdin, context) → (exit status, stdout bytes), so
the executor's in-process fast path (cni/invoke.py) and the console script run identical code.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cni import version as cniversion
from cni.errors import (DECODING_FAILURE, INCOMPATIBLE_CNI_VERSION, INTERNAL, INVALID_ENVIRONMENT_VARIABLES,
                        INVALID_NETNS, INVALID_NETWORK_CONFIG, UNKNOWN_CONTAINER, CNIError)
from cni.result import Result

_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")
_REQUIRED = {
    "CNI_CONTAINERID": ("ADD", "CHECK", "DEL"),
    "CNI_NETNS": ("ADD", "CHECK"),
    "CNI_IFNAME": ("ADD", "CHECK", "DEL"),
    "CNI_PATH": ("ADD", "CHECK", "DEL", "GC", "STATUS"),
}


@dataclass(frozen=True)
class CmdArgs:
    command: str
    container_id: str
    netns: str
    ifname: str
    args: str
    path: tuple[str, ...]
    config: dict          # the request configuration (stdin), parsed
    stdin: bytes          # ... and as received, for delegation to IPAM
    env: Mapping[str, str]

    @property
    def cni_version(self) -> str:
        return self.config.get("cniVersion", "")

    def cni_args(self) -> dict[str, str]:
        """CNI_ARGS ("IP=10.1.0.9;K8S_POD_NAME=web") as a dict."""
        out = {}
        for pair in filter(None, self.args.split(";")):
            key, sep, val = pair.partition("=")
            if not sep or not key:
                raise CNIError(INVALID_ENVIRONMENT_VARIABLES, "invalid CNI_ARGS",
                               f"{pair!r} is not KEY=VALUE")
            out[key] = val
        return out

    def prev_result(self) -> Result | None:
        prev = self.config.get("prevResult")
        return Result.from_json(prev, self.cni_version) if prev else None


@dataclass
class PluginContext:
    """How a plugin reaches the world; differs between the executable and the in-process path."""

    runner: object                                 # cni.invoke.Runner, for delegated plugins
    netns_access: Callable[[], object]             # () -> network.netns.NetnsAccess
    changes: list = field(default_factory=list)    # network.changes.Change records, for --explain
    nft_binary: str = "nft"

    def nft(self):
        from network.nft import Nft

        return Nft(self.nft_binary)


Handler = Callable[[CmdArgs, PluginContext], object]


@dataclass(frozen=True)
class Plugin:
    name: str
    about: str
    add: Handler          # returns a Result
    delete: Handler
    check: Handler
    gc: Handler | None = None
    status: Handler | None = None
    versions: tuple[str, ...] = cniversion.PLUGIN_VERSIONS


def _error(e: CNIError, v: str) -> tuple[int, bytes]:
    return 1, json.dumps(e.to_json(v or cniversion.CURRENT), indent=2).encode() + b"\n"


def _env_args(plugin: Plugin, env: Mapping[str, str]) -> str:
    cmd = env.get("CNI_COMMAND", "")
    missing = [name for name, cmds in _REQUIRED.items() if cmd in cmds and not env.get(name)]
    if not cmd:
        missing.insert(0, "CNI_COMMAND")
    if missing:
        raise CNIError(INVALID_ENVIRONMENT_VARIABLES, f"required env variables [{','.join(missing)}] missing")
    if cmd not in COMMANDS:
        raise CNIError(INVALID_ENVIRONMENT_VARIABLES, f"unknown CNI_COMMAND: {cmd}")
    if cmd in ("ADD", "CHECK", "DEL"):
        cid = env.get("CNI_CONTAINERID", "")
        if not cid:
            raise CNIError(UNKNOWN_CONTAINER, "missing containerID")
        if not _ID_RE.match(cid):
            raise CNIError(INVALID_ENVIRONMENT_VARIABLES, "invalid characters in containerID (CNI_CONTAINERID)", cid)
        check_ifname(env.get("CNI_IFNAME", ""))
    return cmd


def check_ifname(name: str) -> None:
    if not name:
        raise CNIError(INVALID_ENVIRONMENT_VARIABLES, "interface name (CNI_IFNAME) is empty")
    if len(name) > 15:
        raise CNIError(INVALID_ENVIRONMENT_VARIABLES, "interface name (CNI_IFNAME) is too long",
                       "interface name should be less than 16 characters")
    if name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise CNIError(INVALID_ENVIRONMENT_VARIABLES,
                       "interface name (CNI_IFNAME) contains / or : or whitespace, or is . or ..")


def _parse_config(stdin: bytes) -> dict:
    try:
        conf = json.loads(stdin)
    except ValueError as e:
        raise CNIError(DECODING_FAILURE, f"error parsing network config from stdin: {e}") from None
    if not isinstance(conf, dict):
        raise CNIError(DECODING_FAILURE, "network config on stdin must be a JSON object")
    name = conf.get("name")
    if not name or not isinstance(name, str):
        raise CNIError(INVALID_NETWORK_CONFIG, "missing network name (field \"name\")")
    if not _ID_RE.match(name):
        raise CNIError(INVALID_NETWORK_CONFIG, "invalid characters found in network name", name)
    return conf


def _check_version(plugin: Plugin, cmd: str, v: str) -> None:
    if not isinstance(v, str) or not v:
        v = "0.1.0"  # the spec's default when a config names none
    minimum = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}.get(cmd)
    if minimum and not cniversion.at_least(v, minimum):
        raise CNIError(INCOMPATIBLE_CNI_VERSION, f"config version does not allow {cmd}",
                       f"config is {v!r}; {cmd} needs {minimum} or later")
    cniversion.check_supported(v, plugin.versions)


def dispatch(plugin: Plugin, env: Mapping[str, str], stdin: bytes, ctx: PluginContext) -> tuple[int, bytes]:
    version = ""
    try:
        cmd = _env_args(plugin, env)
        if cmd == "VERSION":
            try:
                asked = json.loads(stdin or b"{}").get("cniVersion") or cniversion.CURRENT
            except (ValueError, AttributeError):
                asked = cniversion.CURRENT
            return 0, json.dumps({"cniVersion": asked,
                                  "supportedVersions": list(plugin.versions)}).encode() + b"\n"
        conf = _parse_config(stdin)
        version = conf.get("cniVersion") if isinstance(conf.get("cniVersion"), str) else ""
        _check_version(plugin, cmd, version)
        args = CmdArgs(cmd, env.get("CNI_CONTAINERID", ""), env.get("CNI_NETNS", ""),
                       env.get("CNI_IFNAME", ""), env.get("CNI_ARGS", ""),
                       tuple(p for p in env.get("CNI_PATH", "").split(":") if p), conf, stdin, env)
        if cmd in ("ADD", "DEL") and args.netns:
            from network.netns import is_own_netns

            if is_own_netns(args.netns):
                raise CNIError(INVALID_NETNS, "plugin's netns and netns from CNI_NETNS should not be the same",
                               args.netns)
        handler = {"ADD": plugin.add, "DEL": plugin.delete, "CHECK": plugin.check,
                   "GC": plugin.gc, "STATUS": plugin.status}[cmd]
        if handler is None:  # nothing to collect or report: success
            return 0, b""
        out = handler(args, ctx)
        if cmd == "ADD":
            assert isinstance(out, Result), f"{plugin.name} ADD returned {type(out).__name__}"
            return 0, json.dumps(out.to_json(version), indent=2).encode() + b"\n"
        return 0, b""
    except CNIError as e:
        return _error(e, version)
    except Exception as e:  # a bug or an unexpected kernel answer: still a proper CNI error
        from network.errors import NetworkError

        if not isinstance(e, NetworkError):
            traceback.print_exc(file=sys.stderr)
        return _error(CNIError(INTERNAL, str(e)), version)


def standalone_context() -> PluginContext:
    """The context of a plugin run as its own executable: a fresh, single-threaded process. It
    enters namespaces by forking itself (ForkAccess), and runs a delegated plugin (IPAM) in-process
    when the executable found on CNI_PATH is ours, saving a Python start per pod."""
    from cni.invoke import InProcessRunner

    def access():
        from network.netns import ForkAccess
        from runtime.sys import real

        return ForkAccess(real())

    ctx = PluginContext(runner=None, netns_access=access)
    ctx.runner = InProcessRunner(lambda runner: ctx)
    return ctx


def main(plugin: Plugin) -> None:
    """Entry point of a plugin executable (console script)."""
    env = os.environ
    if not env.get("CNI_COMMAND"):
        sys.stderr.write(f"{plugin.about}\nCNI protocol versions supported: {', '.join(plugin.versions)}\n")
        sys.exit(0)
    if env["CNI_COMMAND"] == "VERSION" and sys.stdin.isatty():
        stdin = b""
    else:
        try:
            stdin = sys.stdin.buffer.read()
        except OSError as e:
            rc, out = _error(CNIError(5, f"error reading from stdin: {e}"), "")
            sys.stdout.buffer.write(out)
            sys.exit(rc)
    ctx = standalone_context()
    rc, out = dispatch(plugin, env, stdin, ctx)
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    if ctx.changes and env.get("NODEAGENT_EXPLAIN"):
        from network.changes import explain

        sys.stderr.write(explain(ctx.changes) + "\n")
    sys.exit(rc)
