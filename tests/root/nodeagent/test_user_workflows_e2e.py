"""Day-one workflows with the real kubectl, on one node, as a user types them: no pod names a node
(the scheduler places them), and what kubectl prints is compared with what a real cluster prints.

Each test is one workflow that once went wrong here: `kubectl set image` on a bare pod, a
StatefulSet pod's FQDN and a pod's hostAliases in /etc/hosts, a Job's events in `kubectl
describe`, a failed probe's message, the node-controller's RegisteredNode in `describe node`.
"""

from __future__ import annotations

import json

import pytest

from tests.waits import poll_until
from tests.nodekit import BUSYBOX_IMAGE, Node, busybox_image, busybox_node, container_status, ready

IMAGE2 = "localhost/busybox:2"
LOOP = 'trap "exit 0" TERM; while true; do sleep 0.2; done'


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    base = tmp_path_factory.mktemp("node")
    n = busybox_node(base, "flow")
    busybox_image(base / "oci2", tag="2")       # the same image under a second tag
    n.import_image(base / "oci2", "localhost/busybox")
    yield n
    if n.running:
        n.down()


def apply(node: Node, *objs: dict) -> None:
    node.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs))


def test_set_image_on_a_pod_restarts_its_container(node):
    node.kubectl("run", "setimg", f"--image={BUSYBOX_IMAGE}", "--image-pull-policy=Never",
                 "--restart=Never", "--command", "--", "sh", "-c", LOOP)
    node.kubectl("wait", "--for=condition=Ready", "pod/setimg", "--timeout=60s")
    first = container_status(node.get("pod", "setimg"), "setimg")["containerID"]
    node.kubectl("set", "image", "pod/setimg", f"setimg={IMAGE2}")
    pod = node.wait_pod("setimg", lambda p: container_status(p, "setimg").get("containerID") not in (None, first)
                        and "running" in container_status(p, "setimg")["state"])
    cs = container_status(pod, "setimg")
    assert cs["image"] == IMAGE2 and cs["restartCount"] == 1 and pod["status"]["phase"] == "Running"
    out = node.kubectl("describe", "pod", "setimg").stdout
    assert "Container setimg definition changed, will be restarted" in out
    node.kubectl("delete", "pod", "setimg", "--now")


def test_statefulset_pod_fqdn_and_host_aliases_in_etc_hosts(node):
    apply(node,
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
           "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 80}]}},
          {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}],
                        "containers": [{"name": "c", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                                        "command": ["sh", "-c", LOOP]}]}}}})
    node.kubectl("rollout", "status", "sts/db", "--timeout=60s")
    ip = node.get("pod", "db-0")["status"]["podIP"]
    hosts = node.kubectl("exec", "db-0", "--", "cat", "/etc/hosts").stdout
    assert f"{ip}\tdb-0.db.default.svc.cluster.local\tdb-0\n" in hosts, hosts
    assert hosts.endswith("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"), hosts
    assert node.kubectl("exec", "db-0", "--", "hostname", "-f").stdout.strip() == \
        "db-0.db.default.svc.cluster.local"
    endpoints = node.get("endpoints", "db")["subsets"][0]["addresses"]
    assert [(a["ip"], a.get("hostname")) for a in endpoints] == [(ip, "db-0")]
    node.kubectl("delete", "sts", "db", "--cascade=foreground")


def test_job_completes_and_describe_shows_its_controller_once(node):
    node.kubectl("create", "job", "hello", f"--image={BUSYBOX_IMAGE}", "--", "sh", "-c", "echo done")
    node.kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=60s")
    assert node.kubectl("logs", "job/hello").stdout == "done\n"
    pods = node.get("pods", None)["items"]
    job_pods = [p for p in pods if p["metadata"].get("labels", {}).get("job-name") == "hello"]
    assert [p["status"]["phase"] for p in job_pods] == ["Succeeded"]

    def events():
        evs = json.loads(node.kubectl("get", "events", "--field-selector",
                                      "involvedObject.kind=Job,involvedObject.name=hello",
                                      "-o", "json").stdout)["items"]
        return evs if any(e["reason"] == "Completed" for e in evs) else None
    evs = poll_until(events, 60, "the Job's Completed event", interval=0.3)
    assert {e["source"]["component"] for e in evs} == {"job-controller"}
    assert [e["count"] for e in evs if e["reason"] == "Completed"] == [1]
    described = node.kubectl("describe", "job", "hello").stdout
    assert "job-controller  Created pod: hello-" in described
    node.kubectl("delete", "job", "hello")


def test_failed_readiness_probe_says_connection_refused(node):
    apply(node, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probed"}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                        "command": ["sh", "-c", LOOP],
                        "readinessProbe": {"httpGet": {"port": 8080, "path": "/ready"}, "periodSeconds": 1}}]}})
    pod = node.wait_pod("probed", lambda p: p["status"].get("podIP") and
                        "running" in container_status(p, "c")["state"])
    assert not ready(pod)
    ip = pod["status"]["podIP"]
    want = (f'Readiness probe failed: Get "http://{ip}:8080/ready": dial tcp {ip}:8080: '
            "connect: connection refused")
    poll_until(lambda: want in node.kubectl("describe", "pod", "probed").stdout, 60, "the probe's event",
               interval=0.3)
    node.kubectl("delete", "pod", "probed", "--now")


def test_describe_node_lists_registered_node(node):
    out = poll_until(lambda: (o := node.kubectl("describe", "node", node.name).stdout)
                   and "RegisteredNode" in o and o, 60, "RegisteredNode in describe node",
                     interval=0.3)
    assert f"node-controller  Node {node.name} event: Registered Node {node.name} in Controller" in out
    assert "Non-terminated Pods:" in out and "Allocated resources:" in out


def test_kubectl_debug_runs_an_ephemeral_container(node):
    node.kubectl("run", "dbg", f"--image={BUSYBOX_IMAGE}", "--image-pull-policy=Never",
                 "--command", "--", "sh", "-c", LOOP)
    node.kubectl("wait", "--for=condition=Ready", "pod/dbg", "--timeout=60s")
    node.kubectl("debug", "dbg", f"--image={BUSYBOX_IMAGE}", "--image-pull-policy=Never",
                 "--container=dbgr", "--", "sh", "-c", "echo from-debug; hostname", timeout=60)

    def finished():
        st = (node.get("pod", "dbg")["status"].get("ephemeralContainerStatuses") or [{}])[0]
        return st if "terminated" in st.get("state", {}) else None
    st = poll_until(finished, 60, "the debug container to finish", interval=0.3)
    assert st["name"] == "dbgr" and st["state"]["terminated"]["exitCode"] == 0
    assert node.kubectl("logs", "dbg", "-c", "dbgr").stdout == "from-debug\ndbg\n"
    assert "Ephemeral Containers:" in node.kubectl("describe", "pod", "dbg").stdout
    node.kubectl("delete", "pod", "dbg", "--now")
