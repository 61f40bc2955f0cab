"""Container lifecycle hooks: postStart and preStop (pkg/kubelet/lifecycle/handlers.go, and the two
places kuberuntime_container.go runs them).

A hook is one of three handlers, run by the agent against a container:

    exec       a command inside the container (ExecSync, no timeout); it fails on a non-zero
               exit or when the runtime cannot run it
    httpGet    a GET to the pod IP (or `host`) and port, scheme and headers as given; it fails
               only when no HTTP answer comes at all — a 404 or 500 is an answer, and upstream's
               runHTTPHandler does not look at the status code
    sleep      wait `seconds`; it fails only if cut short

When each runs, and what a failure does (the kubelet's rules):

    postStart  right after StartContainer, before the pod worker goes on (the container shows
               Running, but the next container waits). A failure records FailedPostStartHook
               ("PostStartHook failed": the hook's output stays out of events, it may hold
               secrets), kills the container (its preStop runs too) with the Killing message
               "FailedPostStartHook", and the container waits with reason PostStartHookError
               and the hook's message; the restart policy then decides, with back-off.
    preStop    before the stop signal, whenever the kubelet stops a container (pod deletion,
               liveness failure, failed postStart). It counts against the grace period: it may
               use all of it, the stop signal then gets what is left — but never less than 2 s
               after a hook (minimumGracePeriodInSeconds). A failure records FailedPreStopHook and the stop
               goes on.

Messages are upstream's, with Go's formatting: `[sh -c exit 1]` for a command, %q quoting.
"""

from __future__ import annotations

import asyncio
import json
import time

from nodeagent.cri.api import CRIError, RuntimeService

MIN_GRACE = 2          # minimumGracePeriodInSeconds: a stop signal always gets this long


def go_quote(s: str) -> str:
    """Go's %q, near enough for messages: a double-quoted string with escapes."""
    return json.dumps(s, ensure_ascii=False)


def format_pod(pod: dict) -> str:
    """format.Pod: name_namespace(uid)."""
    md = pod.get("metadata") or {}
    return f"{md.get('name')}_{md.get('namespace', 'default')}({md.get('uid')})"


class HookFailed(Exception):
    """A hook failed; `str(e)` is the kubelet's message for it."""


def _port(container: dict, port) -> int:
    if port in (None, ""):
        return 80
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"couldn't find port: {port} in {container.get('name')}")


async def _http_get(scheme: str, host: str, port: int, path: str, headers: list[dict]) -> None:
    """One GET; raises OSError/ValueError when no HTTP answer comes. The status is not judged."""
    ssl_ctx = None
    if scheme.upper() == "HTTPS":
        import ssl
        ssl_ctx = ssl.create_default_context()
        ssl_ctx.check_hostname, ssl_ctx.verify_mode = False, ssl.CERT_NONE   # as the kubelet's
    reader, writer = await asyncio.open_connection(host, port, ssl=ssl_ctx)
    try:
        if not path.startswith("/"):
            path = "/" + path
        extra = "".join(f"{h['name']}: {h['value']}\r\n" for h in headers)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-lifecycle/1.37\r\n"
                     f"Accept: */*\r\nConnection: close\r\n{extra}\r\n".encode())
        await writer.drain()
        line = await reader.readline()
        if not line.startswith(b"HTTP/"):
            raise ValueError(f"malformed HTTP response {line[:40]!r}")
    finally:
        writer.close()


class HookRunner:
    def __init__(self, runtime: RuntimeService):
        self.runtime = runtime

    async def run(self, pod: dict, container: dict, cid: str, handler: dict, pod_ip: str | None) -> None:
        """Run one handler to its end; raises HookFailed with upstream's message."""
        name, where = container.get("name", ""), format_pod(pod)
        if "exec" in handler:
            cmd = list((handler["exec"] or {}).get("command") or [])
            shown = "[" + " ".join(cmd) + "]"
            try:
                out, err, code = await self.runtime.exec_sync(cid, cmd, 0)
            except CRIError as e:
                raise HookFailed(f"Exec lifecycle hook ({shown}) for Container {go_quote(name)} in Pod "
                                 f"{go_quote(where)} failed - error: {e}, message: \"\"") from e
            if code != 0:
                output = (out + err).decode(errors="replace")
                error = f"command '{' '.join(cmd)}' exited with {code}: {err.decode(errors='replace')}"
                raise HookFailed(f"Exec lifecycle hook ({shown}) for Container {go_quote(name)} in Pod "
                                 f"{go_quote(where)} failed - error: {error}, message: {go_quote(output)}")
            return
        if "httpGet" in handler:
            h = handler["httpGet"] or {}
            try:
                host = h.get("host") or pod_ip
                if not host:
                    raise ValueError("failed to find networking container: the pod has no IP")
                await _http_get(h.get("scheme") or "HTTP", host, _port(container, h.get("port")),
                                h.get("path") or "/", h.get("httpHeaders") or [])
            except (OSError, ValueError) as e:
                raise HookFailed(f"HTTP lifecycle hook ({h.get('path', '')}) for Container "
                                 f"{go_quote(name)} in Pod {go_quote(where)} failed - error: {e}") from e
            return
        if "sleep" in handler:
            await asyncio.sleep(int((handler["sleep"] or {}).get("seconds") or 0))
            return
        raise HookFailed(f"invalid handler: {json.dumps(handler)}")

    async def pre_stop(self, pod: dict, container: dict, cid: str, pod_ip: str | None,
                       grace: float, failed) -> float:
        """Run the preStop hook for at most `grace` seconds; the grace period left for the stop
        signal (never below MIN_GRACE after a hook). `failed(message)` is told of a failure.
        (Without a hook the grace period is left as it is: unlike upstream's killContainer, a
        `--force --grace-period=0` here kills at once rather than after 2 s.)"""
        hook = ((container.get("lifecycle") or {}).get("preStop"))
        if hook and grace > 0:
            start = time.monotonic()
            try:
                await asyncio.wait_for(self.run(pod, container, cid, hook, pod_ip), grace)
            except asyncio.TimeoutError:
                pass                            # "PreStop hook not completed in grace period"
            except HookFailed as e:
                failed(str(e))
            # whole seconds, truncated, as upstream's int64(Duration.Seconds())
            grace = max(float(MIN_GRACE), grace - int(time.monotonic() - start))
        return grace
