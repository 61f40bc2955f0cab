"""Probes: the kubelet asking a container "are you alive / ready / started?" (pkg/kubelet/prober).

One asyncio task per (container, probe kind), started when the container runs and ended when it
is gone. Each task waits initialDelaySeconds, then probes every periodSeconds with its timeout:

    exec        ExecSync in the container (runtime.exec_sync): exit code 0 is success
    httpGet     an HTTP GET to the pod IP (or `host`) and port: a status of 200–399 is success
    tcpSocket   a TCP connection that opens is success

A result flips only after failureThreshold failures in a row (or successThreshold successes), and
each flip wakes the pod worker:

    readiness   not ready → the container's `ready` is false and the pod leaves Ready (and so
                Services' endpoints); before its first success a container is not ready
    liveness    failed → the pod worker stops the container (its grace period) and the restart
                policy decides what happens next, as for any exit
    startup     until it succeeds, readiness and liveness wait; `started` is false

Results are kept by container ID, so a restarted container starts from scratch.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from dataclasses import dataclass
from typing import Callable

from nodeagent.cri.api import ContainerState, CRIError, ExecTimeout, RuntimeService
from nodeagent.events import WARNING, EventRecorder

log = logging.getLogger("nodeagent.prober")

KINDS = ("startupProbe", "readinessProbe", "livenessProbe")
WORDS = {"startupProbe": "Startup", "readinessProbe": "Readiness", "livenessProbe": "Liveness"}


@dataclass
class _Result:
    ok: bool
    successes: int = 0
    failures: int = 0
    message: str = ""
    failed: bool = False       # failureThreshold failures in a row were reached


def _port(container: dict, port) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"port {port!r} is not a named port of the container")


# What a failed probe says is what the kubelet's Go code says (pkg/probe/{http,tcp,exec}): the
# text of a net/http or net.Dial error, or the command's output. `kubectl describe` shows it.
MAX_OUTPUT = 10 * 1024          # pkg/probe's maxReadLength
_ERRNO_WORDS = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
                errno.ENETUNREACH: "network is unreachable", errno.ECONNRESET: "connection reset by peer",
                errno.ETIMEDOUT: "connection timed out"}


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _dial_error(host: str, port: int, e: BaseException) -> str:
    """net.Dial's error text: `dial tcp 10.244.0.5:8080: connect: connection refused`."""
    if isinstance(e, asyncio.TimeoutError):
        return f"dial tcp {_addr(host, port)}: i/o timeout"
    err = getattr(e, "errno", None)
    words = _ERRNO_WORDS.get(err) or (os.strerror(err).lower() if err else str(e))
    return f"dial tcp {_addr(host, port)}: connect: {words}"


async def _connect(host: str, port: int, timeout: float):
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        raise _ProbeError(_dial_error(host, port, e)) from None


class _ProbeError(Exception):
    """A probe that failed with this message (Go's words)."""


async def _http_get(host: str, port: int, path: str, headers: list[dict], timeout: float) -> tuple[bool, str]:
    url = f"http://{_addr(host, port)}{path or '/'}"
    try:
        return await asyncio.wait_for(_http_exchange(host, port, path, headers, timeout), timeout)
    except _ProbeError as e:
        return False, f'Get "{url}": {e}'
    except asyncio.TimeoutError:
        return False, (f'Get "{url}": context deadline exceeded '
                       "(Client.Timeout exceeded while awaiting headers)")
    except OSError as e:
        why = _ERRNO_WORDS.get(e.errno) or (os.strerror(e.errno).lower() if e.errno else str(e))
        return False, f'Get "{url}": read tcp {_addr(host, port)}: read: {why}'


async def _http_exchange(host: str, port: int, path: str, headers: list[dict],
                         timeout: float) -> tuple[bool, str]:
    reader, writer = await _connect(host, port, timeout)
    try:
        extra = "".join(f"{h['name']}: {h['value']}\r\n" for h in headers)
        writer.write(f"GET {path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.37\r\n"
                     f"Accept: */*\r\nConnection: close\r\n{extra}\r\n".encode())
        await writer.drain()
        line = await reader.readline()
        if not line:
            raise _ProbeError("EOF")
        parts = line.decode(errors="replace").split()
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if 200 <= code < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {code}"
    finally:
        writer.close()


class Prober:
    def __init__(self, runtime: RuntimeService, recorder: EventRecorder, wake: Callable[[str], None]):
        self.runtime, self.recorder, self.wake = runtime, recorder, wake
        self._tasks: dict[tuple[str, str], asyncio.Task] = {}     # (container id, kind) → task
        self._results: dict[tuple[str, str], _Result] = {}
        self._owner: dict[tuple[str, str], str] = {}              # (container id, kind) → pod uid

    # --- what the pod worker and the status ask --------------------------------------------------------
    def started(self, container: dict, cid: str) -> bool:
        if "startupProbe" not in container:
            return True
        r = self._results.get((cid, "startupProbe"))
        return r is not None and r.ok

    def ready(self, container: dict, cid: str) -> bool:
        if not self.started(container, cid):
            return False
        if "readinessProbe" not in container:
            return True
        r = self._results.get((cid, "readinessProbe"))
        return r is not None and r.ok

    def failed_liveness(self, container: dict, cid: str) -> str | None:
        """Why the container must be restarted (liveness or startup failed), or None."""
        for kind in ("livenessProbe", "startupProbe"):
            r = self._results.get((cid, kind))
            # a startup probe is "not ok" from the start: only failureThreshold failures in a
            # row fail it (one failure restarted the container before its time)
            if kind in container and r is not None and not r.ok and r.failed:
                return f"Container {container['name']} failed {WORDS[kind].lower()} probe, will be restarted"
        return None

    # --- tasks ---------------------------------------------------------------------------------------
    def sync(self, pod: dict, running: dict[str, str], pod_ip: str | None) -> None:
        """running: container name → ID of its running instance. Start and stop probe tasks."""
        wanted = set()
        spec = pod.get("spec") or {}
        sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        for c in (spec.get("containers") or []) + sidecars:     # sidecars are probed too
            cid = running.get(c["name"])
            if cid is None:
                continue
            for kind in KINDS:
                if kind in c:
                    wanted.add((cid, kind))
                    if (cid, kind) not in self._tasks:
                        self._tasks[(cid, kind)] = asyncio.create_task(
                            self._run(pod, c, cid, kind, pod_ip), name=f"probe {kind} {cid}")
        uid = pod["metadata"]["uid"]
        for key in wanted:
            self._owner[key] = uid
        for key in [k for k, owner in self._owner.items() if owner == uid and k not in wanted]:
            self._stop(key)

    def forget(self, uid: str) -> None:
        for key in [k for k, owner in self._owner.items() if owner == uid]:
            self._stop(key)

    def close(self) -> None:
        """Stop every probe (the agent is stopping; the containers go on)."""
        for key in list(self._tasks):
            self._stop(key)

    def _stop(self, key: tuple[str, str]) -> None:
        t = self._tasks.pop(key, None)
        if t is not None:
            t.cancel()
        self._results.pop(key, None)
        self._owner.pop(key, None)

    async def _run(self, pod: dict, c: dict, cid: str, kind: str, pod_ip: str | None) -> None:
        spec = c[kind] or {}
        period = max(1, int(spec.get("periodSeconds") or 10))
        timeout = max(1, int(spec.get("timeoutSeconds") or 1))
        need_ok = max(1, int(spec.get("successThreshold") or 1))
        need_fail = max(1, int(spec.get("failureThreshold") or 3))
        await asyncio.sleep(int(spec.get("initialDelaySeconds") or 0))
        uid = pod["metadata"]["uid"]
        key = (cid, kind)
        where = "initContainers" if c.get("restartPolicy") == "Always" else "containers"  # sidecar
        while True:
            if kind != "startupProbe" and "startupProbe" in c and not self.started(c, cid):
                await asyncio.sleep(1)
                continue
            ok, message = await self._probe(pod, c, cid, spec, timeout, pod_ip)
            # before any result: alive (liveness), not ready, not started
            r = self._results.setdefault(key, _Result(ok=kind == "livenessProbe"))
            if ok is None:
                # the probe could not be run (the runtime failed it: e.g. the container is
                # stopping): the worker throws the result away (doProbe), the event says so
                self.recorder.event(pod, WARNING, "Unhealthy",
                                    f"{WORDS[kind]} probe errored and resulted in unknown state: {message}",
                                    f"spec.containers{{{c['name']}}}")
                await asyncio.sleep(period)
                continue
            if ok:
                r.successes, r.failures, r.failed = r.successes + 1, 0, False
            else:
                r.successes, r.failures = 0, r.failures + 1
                r.failed = r.failures >= need_fail
                self.recorder.event(pod, WARNING, "Unhealthy", f"{WORDS[kind]} probe failed: {message}",
                                    f"spec.{where}{{{c['name']}}}")
            now_ok = True if ok and r.successes >= need_ok else \
                False if not ok and r.failures >= need_fail else r.ok
            if now_ok != r.ok:
                r.ok, r.message = now_ok, message
                self.wake(uid)
            if kind == "startupProbe" and r.ok:
                return                      # a startup probe ends with its first success
            await asyncio.sleep(period)

    async def _running(self, cid: str) -> bool:
        try:
            return (await self.runtime.container_status(cid)).state is ContainerState.RUNNING
        except CRIError:
            return False

    async def _probe(self, pod: dict, c: dict, cid: str, spec: dict, timeout: float,
                     pod_ip: str | None) -> tuple[bool | None, str]:
        """(success, message); success None: the probe errored rather than failed."""
        try:
            if "exec" in spec:
                cmd = list(spec["exec"].get("command") or [])
                try:
                    out, err, code = await self.runtime.exec_sync(cid, cmd, timeout)
                except ExecTimeout:
                    return False, f'command "{" ".join(cmd)}" timed out'
                except CRIError as e:
                    # a command that cannot start in a running container fails the probe (as
                    # containerd's exec error does); one the runtime cannot run because the
                    # container is going or gone is an error, thrown away
                    return (False if await self._running(cid) else None), e.message
                return code == 0, (out + err)[:MAX_OUTPUT].decode(errors="replace")
            if "httpGet" in spec:
                h = spec["httpGet"]
                host = h.get("host") or pod_ip or "127.0.0.1"
                return await _http_get(host, _port(c, h.get("port")), h.get("path", "/"),
                                       h.get("httpHeaders") or [], timeout)
            if "tcpSocket" in spec:
                t = spec["tcpSocket"]
                host = t.get("host") or pod_ip or "127.0.0.1"
                port = _port(c, t.get("port"))
                _, w = await _connect(host, port, timeout)
                w.close()
                return True, ""
            return False, "probe type not supported (exec, httpGet and tcpSocket are)"
        except _ProbeError as e:
            return False, str(e)
        except asyncio.TimeoutError:
            return False, f"timeout after {timeout}s"
        except (OSError, ValueError, CRIError) as e:
            return False, str(e)
