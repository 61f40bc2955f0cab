"""What a failed probe says, in the kubelet's words (pkg/probe: Go's net/http and net.Dial errors),
since that is what `kubectl describe pod` shows under Events: "Readiness probe failed: Get
"http://10.244.0.5:8080/": dial tcp 10.244.0.5:8080: connect: connection refused". Probes here go
to a port on 127.0.0.1 that nothing listens on, or to a listener that never answers."""

from __future__ import annotations

import asyncio
import socket

from nodeagent.cri.api import CRIError, ExecTimeout
from nodeagent.prober import Prober


class _Runtime:
    def __init__(self, result, running: bool = True):
        self.result, self.running = result, running

    async def container_status(self, cid):
        from nodeagent.cri.api import ContainerState
        return type("S", (), {"state": ContainerState.RUNNING if self.running else ContainerState.EXITED})()

    async def exec_sync(self, cid, cmd, timeout):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(spec: dict, runtime=None, timeout: float = 1) -> tuple[bool, str]:
    p = Prober(runtime or _Runtime((b"", b"", 0)), None, lambda uid: None)
    return asyncio.run(p._probe({}, {"name": "c"}, "cid", spec, timeout, "127.0.0.1"))


def test_refused_http_and_tcp_probes_say_what_go_says():
    port = _free_port()
    assert probe({"httpGet": {"port": port, "path": "/healthz"}}) == (
        False, f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: connection refused')
    assert probe({"tcpSocket": {"port": port}}) == (
        False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


def test_http_probe_timeout():
    with socket.socket() as srv:              # accepts (the backlog) but never answers
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        ok, msg = probe({"httpGet": {"port": port}}, timeout=0.3)
    assert not ok
    assert msg == (f'Get "http://127.0.0.1:{port}/": context deadline exceeded '
                   "(Client.Timeout exceeded while awaiting headers)")


def test_exec_probe_failure_is_its_output_and_a_timeout_names_the_command():
    assert probe({"exec": {"command": ["test", "-e", "/x"]}}, _Runtime((b"", b"", 1))) == (False, "")
    assert probe({"exec": {"command": ["sh", "-c", "echo no; exit 1"]}},
                 _Runtime((b"no\n", b"", 1))) == (False, "no\n")
    assert probe({"exec": {"command": ["sleep", "9"]}}, _Runtime(ExecTimeout("x"))) == (
        False, 'command "sleep 9" timed out')


def test_an_exec_the_runtime_cannot_run_is_an_error_not_a_failure():
    """A container that is stopping cannot run the probe's command: the kubelet says the probe
    errored ("... probe errored and resulted in unknown state: ...") and counts nothing."""
    assert probe({"exec": {"command": ["true"]}},
                 _Runtime(CRIError("container is stopping"), running=False)) == (None, "container is stopping")
    # ... but a command that cannot start in a running container fails it (and liveness restarts)
    assert probe({"exec": {"command": ["nosuch"]}}, _Runtime(CRIError("executable 'nosuch' not found"))) == (
        False, "executable 'nosuch' not found")
