"""Lifecycle hook handlers (nodeagent/kuberuntime/lifecycle.py): what fails a hook, upstream's
messages, and how a preStop hook eats into the grace period."""

import asyncio
import socket

import pytest

from nodeagent.kuberuntime.lifecycle import HookFailed, HookRunner

POD = {"metadata": {"name": "web", "namespace": "default", "uid": "u-1"}}
C = {"name": "c", "ports": [{"name": "http", "containerPort": 0}]}


class Exec:
    def __init__(self, out=b"", err=b"", code=0):
        self.result, self.calls = (out, err, code), []

    async def exec_sync(self, cid, cmd, timeout):
        self.calls.append((cid, cmd, timeout))
        return self.result


def run(coro):
    return asyncio.run(coro)


def test_exec_hook_runs_without_timeout_and_fails_on_a_non_zero_exit():
    rt = Exec()
    run(HookRunner(rt).run(POD, C, "cid", {"exec": {"command": ["touch", "/x"]}}, "10.0.0.2"))
    assert rt.calls == [("cid", ["touch", "/x"], 0)]
    with pytest.raises(HookFailed) as e:
        run(HookRunner(Exec(b"oops\n", b"bad\n", 2)).run(
            POD, C, "cid", {"exec": {"command": ["sh", "-c", "exit 2"]}}, None))
    assert str(e.value) == ('Exec lifecycle hook ([sh -c exit 2]) for Container "c" in Pod '
                            '"web_default(u-1)" failed - error: command \'sh -c exit 2\' exited with 2: '
                            'bad\n, message: "oops\\nbad\\n"')


def _server(status: bytes):
    """A one-shot HTTP server on loopback answering `status`; (port, task)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.setblocking(False)

    async def answer():
        loop = asyncio.get_running_loop()
        conn, _ = await loop.sock_accept(srv)
        await loop.sock_recv(conn, 4096)
        await loop.sock_sendall(conn, b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        conn.close()
        srv.close()
    return srv.getsockname()[1], answer


def test_http_hook_fails_only_without_an_answer():
    async def main():
        port, answer = _server(b"404 Not Found")
        served = asyncio.create_task(answer())
        # a 404 is an answer: upstream's runHTTPHandler does not judge the status
        await HookRunner(Exec()).run(POD, C, "cid", {"httpGet": {"path": "/hook", "port": port}}, "127.0.0.1")
        await served
        with pytest.raises(HookFailed) as e:       # nothing listens there any more
            await HookRunner(Exec()).run(POD, C, "cid", {"httpGet": {"path": "/hook", "port": port}},
                                         "127.0.0.1")
        return str(e.value)
    msg = run(main())
    assert msg.startswith('HTTP lifecycle hook (/hook) for Container "c" in Pod "web_default(u-1)" '
                          'failed - error: ')


def test_pre_stop_counts_against_the_grace_period_with_a_2_s_floor():
    sleeper = {"lifecycle": {"preStop": {"sleep": {"seconds": 30}}}, "name": "c"}
    failed = []
    left = run(HookRunner(Exec()).pre_stop(POD, sleeper, "cid", None, 1, failed.append))
    assert left == 2 and not failed                # cut at the 1 s grace; the signal still gets 2 s
    bad = {"lifecycle": {"preStop": {"exec": {"command": ["false"]}}}, "name": "c"}
    left = run(HookRunner(Exec(code=1)).pre_stop(POD, bad, "cid", None, 30, failed.append))
    assert left == 30 and failed and failed[0].startswith("Exec lifecycle hook ([false])")
    assert run(HookRunner(Exec()).pre_stop(POD, {"name": "c"}, "cid", None, 0, failed.append)) == 0


def test_what_killing_needs_survives_in_the_container_annotations():
    # kuberuntime/labels.go: newContainerAnnotations writes it, restoreSpecsFromContainerLabels
    # reads it back when the pod is gone
    from nodeagent.kuberuntime import config as cfg

    hook = {"httpGet": {"path": "/bye", "port": "http"}}
    pod = {"metadata": {"name": "web", "namespace": "ns", "uid": "u-1"},
           "spec": {"terminationGracePeriodSeconds": 45}}
    c = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}], "lifecycle": {"preStop": hook}}
    labels = {**cfg.pod_labels(pod), cfg.CONTAINER_NAME: "c"}
    restored_pod, restored_c = cfg.restore_kill_specs(labels, cfg.kill_annotations(pod, c))
    assert restored_pod == {"metadata": {"name": "web", "namespace": "ns", "uid": "u-1"},
                            "spec": {"terminationGracePeriodSeconds": 45}}
    assert restored_c == c
    assert cfg.kill_grace(restored_pod) == 45
    deleting = dict(pod, metadata=dict(pod["metadata"], deletionGracePeriodSeconds=5))
    assert cfg.kill_grace(cfg.restore_kill_specs(labels, cfg.kill_annotations(deleting, c))[0]) == 5
    # nothing stored (or garbled): no hook, the 2 s minimum
    bare_pod, bare_c = cfg.restore_kill_specs(labels, {cfg.PRE_STOP_HANDLER: "{not json"})
    assert bare_c == {"name": "c"} and cfg.kill_grace(bare_pod) == 2
