"""The real kubectl 1.37 → our API server → our kubelet API → a fake runtime whose containers are
host processes: logs, exec, attach, port-forward and cp behave as on a cluster.

Streaming tests run twice: as kubectl 1.37 does by default (WebSocket; for port-forward SPDY
tunnelled in a WebSocket), and with kubectl's fallback forced (plain SPDY/3.1 upgrades) through
its KUBECTL_REMOTE_COMMAND_WEBSOCKETS / KUBECTL_PORT_FORWARD_WEBSOCKETS switches."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
import urllib.request

import pytest

from tests.apiserver import Kubectl
from tests.unit.nodeagent.server.conftest import BIG
from tests.unit.nodeagent.server.fakeruntime import cri_time


@pytest.fixture(params=["websocket", "spdy"])
def kubectl_streams(request, cluster) -> Kubectl:
    k = Kubectl(cluster.server, cluster.kubectl.env["KUBECACHEDIR"])
    k.env = dict(cluster.kubectl.env)
    if request.param == "spdy":
        k.env["KUBECTL_REMOTE_COMMAND_WEBSOCKETS"] = "false"
        k.env["KUBECTL_PORT_FORWARD_WEBSOCKETS"] = "false"
    return k


def _read_until(proc: subprocess.Popen, want: str, timeout: float) -> str:
    """Read proc's stdout until `want` shows up (or the timeout passes); returns what was read."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    fd = proc.stdout.fileno()
    seen = ""
    deadline = time.monotonic() + timeout
    while want not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        seen += chunk.decode(errors="replace")
    sel.close()
    return seen


def _stop(proc: subprocess.Popen) -> str:
    """Stop a kubectl we started; returns what it wrote to stderr (its pipes are closed)."""
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err.decode() if isinstance(err, bytes) else (err or "")


# ---- logs ----

def test_logs_tail_since_timestamps_previous(cluster, kubectl):
    rt = cluster.runtime
    old = time.time() - 3600
    rt.write_log("c-app", "old line 1\nold line 2", at=old)
    rt.write_log("c-app", "new line 3")
    rt.write_log("c-app", "err line 4", stream="stderr")
    rt.write_log("c-app-0", "before the restart")

    out = kubectl("logs", "web")
    assert out.splitlines()[:4] == ["old line 1", "old line 2", "new line 3", "err line 4"]
    assert kubectl("logs", "web", "--tail=2").splitlines() == ["new line 3", "err line 4"]
    assert kubectl("logs", "web", "--since=10m").splitlines() == ["new line 3", "err line 4"]
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(old + 60))
    assert kubectl("logs", "web", f"--since-time={since}").splitlines() == ["new line 3", "err line 4"]
    stamped = kubectl("logs", "web", "--timestamps", "--tail=1").strip()
    stamp, text = stamped.split(" ", 1)
    assert text == "err line 4" and stamp.endswith("Z") and "T" in stamp
    assert kubectl("logs", "web", "--previous").strip() == "before the restart"
    assert kubectl("logs", "web", "--limit-bytes=5").strip() == "old l"


def test_logs_follow_shows_a_new_line_promptly(cluster, kubectl):
    rt = cluster.runtime
    rt.write_log("c-app", "before follow")
    proc = kubectl.popen("logs", "-f", "--tail=1", "web")
    try:
        assert "before follow" in _read_until(proc, "before follow", 15)
        t0 = time.monotonic()
        rt.write_log("c-app", "followed line")
        seen = _read_until(proc, "followed line", 5)
        latency = time.monotonic() - t0
        print(f"kubectl logs -f: a new line reached kubectl after {latency * 1000:.0f} ms")
        assert "followed line" in seen
        assert latency < 1.0, "issue 13: `kubectl logs -f` shows a new line within 1 s"
    finally:
        _stop(proc)


def test_logs_follow_ends_when_the_container_stops(cluster, kubectl):
    from nodeagent.cri.api import ContainerState
    rt = cluster.runtime
    c = rt.add_container("c-stop", "app", "sb-web")
    rt.write_log("c-stop", "last words")
    pods = cluster.kubelet.pods()
    web = next(p for p in pods if p["metadata"]["name"] == "web")
    saved = web["status"]["containerStatuses"][0]["containerID"]
    web["status"]["containerStatuses"][0]["containerID"] = "fake://c-stop"
    try:
        proc = kubectl.popen("logs", "-f", "web")
        assert "last words" in _read_until(proc, "last words", 15)
        c.state = ContainerState.EXITED
        rt.write_log("c-stop", "written as it exited")
        out, _ = proc.communicate(timeout=15)   # kubectl returns by itself: the stream ended
        assert "written as it exited" in out and proc.returncode == 0
    finally:
        web["status"]["containerStatuses"][0]["containerID"] = saved


def test_logs_errors_read_as_kubectl_errors(cluster, kubectl):
    # kubectl picks the first container itself; the API server's own rule shows through --raw
    p = kubectl.run("logs", "two")
    assert 'Defaulted container "a" out of: a, b' in p.stderr
    p = kubectl.run("get", "--raw", "/api/v1/namespaces/default/pods/two/log", check=False)
    assert p.returncode != 0
    assert "a container name must be specified for pod two, choose one of: [a b]" in p.stderr
    p = kubectl.run("logs", "web", "-c", "nope", check=False)
    assert p.returncode != 0 and "container nope is not valid for pod web" in p.stderr


# ---- exec ----

def test_exec_exit_code(cluster, kubectl_streams):
    p = kubectl_streams.run("exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "out\n"
    assert "err" in p.stderr


def test_exec_success_and_stdin(cluster, kubectl_streams):
    assert kubectl_streams("exec", "web", "--", "echo", "fine") == "fine\n"
    p = kubectl_streams.run("exec", "-i", "web", "--", "cat", input="hi\n")
    assert p.stdout == "hi\n"


def test_exec_large_stdin_round_trip(cluster, kubectl_streams):
    data = "".join(f"line {i:06d} " + "x" * 80 + "\n" for i in range(20000))  # ~1.8 MB
    p = kubectl_streams.run("exec", "-i", "web", "--", "cat", input=data)
    assert p.stdout == data


def test_exec_tty(cluster, kubectl_streams, tmp_path):
    # script(1) gives kubectl a terminal of 40x100; kubectl sends that size on the resize channel.
    # The runtime starts the process before any size can reach its terminal (CRI has no initial
    # size; the kubelet applies the first one microseconds later): the short sleep keeps `stty`
    # out of that window.
    cmd = "stty rows 40 cols 100; " + " ".join([kubectl_streams.exe, "exec", "-it", "web", "--", "sh", "-c",
                                                "'test -t 0 && echo TTY-YES; sleep 0.2; stty size'"])
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=kubectl_streams.env, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "TTY-YES" in p.stdout, p.stdout + p.stderr
    assert "40 100" in p.stdout
    assert p.returncode == 0


def test_exec_unknown_container_is_refused(cluster, kubectl):
    p = kubectl.run("exec", "two", "-c", "zzz", "--", "true", check=False)
    assert p.returncode != 0 and "zzz" in p.stderr


# ---- attach ----

def test_attach_with_stdin(cluster, kubectl_streams):
    proc = subprocess.Popen([kubectl_streams.exe, "attach", "-i", "attachme"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=kubectl_streams.env)
    try:
        time.sleep(0.5)  # nothing to wait on from outside: give the upgrade a moment before typing
        proc.stdin.write(b"hello\n")
        proc.stdin.flush()
        assert "echo:hello" in _read_until(proc, "echo:hello", 15)
    finally:
        _stop(proc)


# ---- port-forward ----

def test_port_forward_http(cluster, kubectl_streams):
    proc = kubectl_streams.popen("port-forward", "pod/web", f":{cluster.http_port}")
    try:
        line = _read_until(proc, "\n", 20)
        assert "Forwarding from 127.0.0.1:" in line, line + (proc.stderr.read() if proc.poll() is not None else "")
        local = int(line.split("127.0.0.1:")[1].split(" ")[0])
        for _ in range(3):   # several connections over the one session
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as r:
                assert r.read() == b"hello from the pod\n"
    finally:
        _stop(proc)


def test_port_forward_large_download(cluster, kubectl_streams):
    proc = kubectl_streams.popen("port-forward", "pod/web", f":{cluster.http_port}")
    try:
        line = _read_until(proc, "\n", 20)
        local = int(line.split("127.0.0.1:")[1].split(" ")[0])
        t0 = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/big", timeout=30) as r:
            body = r.read()
        dt = time.monotonic() - t0
        assert body == BIG
        print(f"port-forward: {len(body) / dt / 1e6:.1f} MB/s for {len(body) >> 20} MiB")
    finally:
        _stop(proc)


def test_port_forward_to_a_closed_port_reports_the_error(cluster, kubectl_streams):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    proc = kubectl_streams.popen("port-forward", "pod/web", f":{dead}")
    try:
        line = _read_until(proc, "\n", 20)
        local = int(line.split("127.0.0.1:")[1].split(" ")[0])
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10).read()
    except BaseException:
        _stop(proc)
        raise
    assert "error forwarding port" in _stop(proc)


# ---- cp ----

def test_cp_both_ways(cluster, kubectl_streams, tmp_path):
    pod_dir = tmp_path / "in-pod"
    pod_dir.mkdir()
    (pod_dir / "remote.txt").write_text("from the pod\n")
    local = tmp_path / "local.txt"
    local.write_text("to the pod\n")
    kubectl_streams("cp", str(local), f"web:{pod_dir}/copied.txt")
    assert (pod_dir / "copied.txt").read_text() == "to the pod\n"
    kubectl_streams("cp", f"web:{pod_dir}/remote.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "from the pod\n"
