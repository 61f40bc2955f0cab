"""Running one CNI plugin: find it, hand it the environment and stdin, read its answer.

The CNI protocol is "execute a binary" (SPEC.md section 2): parameters in CNI_* environment
variables, the request configuration on stdin, a result (or a JSON error) on stdout, exit status 0
or not. `ExecRunner` does exactly that, as libcni's invoke package does, for any plugin — Debian's
reference plugins in /usr/lib/cni included.

`InProcessRunner` is the agent's fast path for *our own* plugin types. It calls the very same
dispatcher the plugin's executable would run (cni/skel.py), with the same environment and the same
stdin bytes, and reads the same stdout bytes back — minus the fork, the exec and a ~150 ms Python
start with pyroute2 import. Anything that is not ours still goes through ExecRunner. The plugin is
looked up on the CNI path either way, so a missing plugin is the same error on both paths, and only
an executable that really is our plugin (our launcher or console script) is short-circuited.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from cni.errors import PluginFailed, PluginNotFound

# Our plugin types (their executables are console scripts of the same name) → implementing module.
BUILTIN_PLUGINS = {
    "nodeagent-bridge": "cni.plugins.bridge",
    "nodeagent-host-local": "cni.plugins.hostlocal",
    "nodeagent-loopback": "cni.plugins.loopback",
    "nodeagent-portmap": "cni.plugins.portmap",
}

EXEC_TIMEOUT = 60.0


def find_in_path(plugin: str, path: list[str]) -> str:
    """The plugin's executable in the first directory of `path` that has it (libcni FindInPath)."""
    if not plugin or "/" in plugin:
        raise PluginNotFound(plugin or "(empty)", path)
    for d in path:
        if not d:
            continue
        full = os.path.join(d, plugin)
        if os.path.isfile(full):
            return full
    raise PluginNotFound(plugin, path)


@dataclass(frozen=True)
class Invocation:
    """The per-call parameters (SPEC.md section 2, "Parameters")."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: str = ""           # CNI_ARGS: "K=V;K2=V2"
    path: tuple[str, ...] = ()

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The plugin's environment: ours, with the CNI_* variables set (libcni passes the rest on)."""
        env = dict(os.environ if base is None else base)
        env.update(CNI_COMMAND=self.command, CNI_CONTAINERID=self.container_id,
                   CNI_NETNS=self.netns, CNI_IFNAME=self.ifname, CNI_ARGS=self.args,
                   CNI_PATH=":".join(self.path))
        return env


class Runner(Protocol):
    def run(self, exe: str, plugin_type: str, env: Mapping[str, str], stdin: bytes) -> bytes:
        """Run the plugin; return its stdout on success, raise PluginFailed otherwise."""


def interpret(plugin_type: str, command: str, rc: int, stdout: bytes, stderr: bytes) -> bytes:
    """stdout on success; on failure the plugin's JSON error (or its stderr) as PluginFailed."""
    if rc == 0:
        return stdout
    text = stdout.strip()
    if text:
        try:
            err = json.loads(text)
            if isinstance(err, dict) and "code" in err:
                raise PluginFailed(plugin_type, command, int(err.get("code") or 0),
                                   str(err.get("msg", "")), str(err.get("details", "")))
        except ValueError:
            pass
        raise PluginFailed(plugin_type, command, 0,
                           f"plugin failed but its output is not a CNI error: {text[:200]!r}")
    if stderr.strip():
        raise PluginFailed(plugin_type, command, 0,
                           f"plugin failed: {stderr.decode(errors='replace').strip()[:500]}")
    raise PluginFailed(plugin_type, command, 0, f"plugin failed with no error message (exit {rc})")


class ExecRunner:
    """Execute the plugin binary (fork + exec). stderr is passed through to ours, as libcni does."""

    def __init__(self, stderr=None):
        self.stderr = stderr if stderr is not None else sys.stderr

    def run(self, exe: str, plugin_type: str, env: Mapping[str, str], stdin: bytes) -> bytes:
        command = env.get("CNI_COMMAND", "")
        for attempt in range(6):
            try:
                proc = subprocess.run([exe], input=stdin, env=dict(env), capture_output=True,
                                      timeout=EXEC_TIMEOUT)
                break
            except OSError as e:
                # "text file busy": the binary is being written right now (an install in progress)
                if e.errno == errno.ETXTBSY and attempt < 5:
                    time.sleep(0.2)
                    continue
                raise PluginFailed(plugin_type, command, 0, f"cannot execute {exe}: {e.strerror}") from e
            except subprocess.TimeoutExpired as e:
                raise PluginFailed(plugin_type, command, 0,
                                   f"{exe} did not finish within {EXEC_TIMEOUT:.0f}s") from e
        out = interpret(plugin_type, command, proc.returncode, proc.stdout, proc.stderr)
        if proc.returncode == 0 and proc.stderr and self.stderr is not None:
            self.stderr.write(proc.stderr.decode(errors="replace"))
        return out


_ours_cache: dict[tuple[str, float], bool] = {}


def is_our_executable(exe: str, module: str) -> bool:
    """Does `exe` run `module`'s main? True for our launchers and pip's console scripts, which both
    say `from cni.plugins.X import main`. Anything else that merely has our name is executed."""
    try:
        key = (exe, os.stat(exe).st_mtime)
    except OSError:
        return False
    if key not in _ours_cache:
        try:
            with open(exe, "rb") as f:
                head = f.read(4096)
        except OSError:
            head = b""
        _ours_cache[key] = f"from {module} import main".encode() in head
    return _ours_cache[key]


class InProcessRunner:
    """Our plugin types in this process (through cni/skel.py's dispatcher); others by ExecRunner.

    `context` is the plugin environment for in-process runs (cni/skel.py, PluginContext): the netns
    helper instead of forking ourselves, this runner for delegation (so our bridge calls our IPAM
    in-process too), and the list that collects the Changes for --explain."""

    def __init__(self, context_factory, fallback: Runner | None = None):
        self._context_factory = context_factory
        self.fallback = fallback or ExecRunner()

    def run(self, exe: str, plugin_type: str, env: Mapping[str, str], stdin: bytes) -> bytes:
        module = BUILTIN_PLUGINS.get(plugin_type)
        if module is None or not is_our_executable(exe, module):
            return self.fallback.run(exe, plugin_type, env, stdin)
        from cni import skel

        plugin = importlib.import_module(module)
        rc, stdout = skel.dispatch(plugin.PLUGIN, env, stdin, self._context_factory(self))
        return interpret(plugin_type, env.get("CNI_COMMAND", ""), rc, stdout, b"")
