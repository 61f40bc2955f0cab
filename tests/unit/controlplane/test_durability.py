"""kill -9 in the middle of a stream of writes: every acknowledged write survives, and a watcher
resumes from the revision it had seen, across the restart, without a 410."""

import json
import signal
import threading
import time
import urllib.error
import urllib.request


def _post(server, name):
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                       "data": {"n": name}}).encode()
    req = urllib.request.Request(f"{server.url}/api/v1/namespaces/default/configmaps", data=body,
                                 method="POST", headers={"Authorization": f"Bearer {server.token}",
                                                         "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=server.ssl_context(), timeout=5) as r:
        return json.loads(r.read())


def test_kill_9_keeps_acknowledged_writes(server_factory, tmp_path):
    srv = server_factory(tmp_path / "state")
    first = _post(srv, "before")
    resume_rv = int(first["metadata"]["resourceVersion"])
    acked: dict[str, int] = {}
    stop = threading.Event()

    def writer(k):
        i = 0
        while not stop.is_set():
            try:
                obj = _post(srv, f"w{k}-{i}")
                acked[obj["metadata"]["name"]] = int(obj["metadata"]["resourceVersion"])
            except (urllib.error.URLError, ConnectionError, OSError):
                return  # the server died under us: this write was not acknowledged
            i += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]  # concurrent: group commits
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) >= 40

    again = server_factory(srv.data_dir, srv.port)
    req = urllib.request.Request(f"{again.url}/api/v1/namespaces/default/configmaps",
                                 headers={"Authorization": f"Bearer {again.token}"})
    with urllib.request.urlopen(req, context=again.ssl_context()) as r:
        stored = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"])
                  for i in json.loads(r.read())["items"]}
    for name, rv in acked.items():
        assert stored.get(name) == rv, f"acknowledged write {name}@{rv} lost"

    # A watcher that had seen `before` resumes after the restart from that revision.
    req = urllib.request.Request(
        f"{again.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={resume_rv}"
        f"&timeoutSeconds=2", headers={"Authorization": f"Bearer {again.token}"})
    with urllib.request.urlopen(req, context=again.ssl_context()) as r:
        events = [json.loads(line) for line in r.read().splitlines() if line.strip()]
    assert all(e["type"] == "ADDED" for e in events)
    assert {e["object"]["metadata"]["name"] for e in events} >= set(acked)
