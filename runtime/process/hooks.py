"""OCI hooks: programs the runtime runs at fixed points of a container's life.

Each hook gets the container's state as JSON on its stdin (ociVersion, id, status, pid, bundle,
annotations) — which is how, for example, a network hook learns the pid whose namespace it is to
configure. Where and when each kind runs (runtime-spec config.md, "POSIX-platform Hooks"):

    prestart         create, after the namespaces exist and before pivot_root, in the runtime's
    createRuntime    namespaces: run by the supervisor while the container's init waits for it
    createContainer  create, same moment, in the container's namespaces: run by the init itself
    startContainer   start, in the container (after pivot_root), right before the program
    poststart        start, in the runtime's namespaces, once the program runs (by the supervisor)
    poststop         delete, in the runtime's namespaces, after the container is gone (by `delete`)

A failing (non-zero exit, killed, timed out, not found) prestart, createRuntime, createContainer
or startContainer hook fails the operation: the container is stopped and nothing is left of a
failed create. A failing poststart or poststop hook is only a warning (the spec's words).

The hooks are started with posix_spawn, not subprocess: the init calls this after pivot_root,
where nothing can be imported any more (subprocess is not loaded in our processes; os and select
are), and posix_spawn runs no Python in the child, so it is safe from any process. Each hook's
exit is awaited on a pidfd with the hook's timeout.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time

from runtime.errors import StepError


def state_json(spec, cid: str, status: str, pid: int | None, bundle: str) -> bytes:
    """The OCI state of a container made from `spec` (a ContainerSpec), as the hooks read it."""
    return state_bytes(spec.oci_version, cid, status, pid, bundle, dict(spec.annotations))


def state_bytes(oci_version: str, cid: str, status: str, pid: int | None, bundle: str,
                annotations: dict) -> bytes:
    state = {"ociVersion": oci_version, "id": cid, "status": status, "bundle": bundle,
             "annotations": annotations}
    if pid:
        state["pid"] = pid
    return json.dumps(state).encode()


def run_hooks(hooks, kind: str, state: bytes) -> None:
    """Run `hooks` (runtime.spec.model.Hook) in order; StepError("<kind> hook", why) for the
    first that fails."""
    for i, hook in enumerate(hooks):
        problem = run_hook(hook, state)
        if problem is not None:
            raise StepError(f"{kind} hook", f"hooks.{kind}[{i}] ({hook.path}): {problem}")


def warn_hooks(hooks, kind: str, state: bytes) -> list[str]:
    """Run `hooks`, all of them whatever happens; the warnings for those that failed."""
    return [f"hooks.{kind}[{i}] ({hook.path}): {problem}" for i, hook in enumerate(hooks)
            if (problem := run_hook(hook, state)) is not None]


def run_hook(hook, state: bytes) -> str | None:
    """Run one hook with `state` on its stdin; None if it succeeded, else what went wrong (with
    the end of its output)."""
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    env = dict(e.split("=", 1) for e in hook.env if "=" in e)
    # The supervisor ignores some signals; ignored dispositions survive execve, so reset them.
    ignored = [s for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTSTP,
                           signal.SIGTTIN, signal.SIGTTOU, signal.SIGPIPE, signal.SIGXFSZ)]
    try:
        pid = os.posix_spawn(hook.path, list(hook.args) or [hook.path], env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, stdin_r, 0),
                                           (os.POSIX_SPAWN_DUP2, out_w, 1),
                                           (os.POSIX_SPAWN_DUP2, out_w, 2)],
                             setsigdef=ignored, setsigmask=())
    except OSError as e:
        for fd in (stdin_r, stdin_w, out_r, out_w):
            os.close(fd)
        return f"cannot run it: {e.strerror}"
    os.close(stdin_r)
    os.close(out_w)
    try:
        try:
            os.write(stdin_w, state)        # a few hundred bytes: fits in the pipe at once
        except OSError:
            pass                            # the hook does not read its stdin: its business
        finally:
            os.close(stdin_w)
        return _wait(pid, out_r, hook.timeout)
    finally:
        os.close(out_r)


def _wait(pid: int, out_r: int, timeout: int | None) -> str | None:
    pidfd = os.pidfd_open(pid)
    output = b""
    deadline = None if timeout is None else time.monotonic() + timeout
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(out_r, select.POLLIN)
    try:
        while True:
            wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            events = dict(poller.poll(wait_ms))
            if out_r in events:
                chunk = os.read(out_r, 65536)
                if chunk:
                    output = (output + chunk)[-2000:]
                else:
                    poller.unregister(out_r)
            if pidfd in events:
                break
            if deadline is not None and time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return f"timed out after {timeout} s (killed)"
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    said = output.decode(errors="replace").strip()
    how = (f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status)
           else f"killed by {signal.Signals(os.WTERMSIG(status)).name}")
    return how + (f": {said.splitlines()[-1]}" if said else "")
