"""A whole node, end to end, given what it cannot run: an image no registry has, an image with no
command, a missing configMap key or secret, a memory limit no container starts under, a hostPort
another pod holds, a pod range with no address left. For each, the pod shows the kubelet's reason
and a message naming the cause (status and events, as upstream's kubelet words them), a healthy
pod beside it keeps running, and once the failed pod is deleted the node has nothing of it left
(the leak census of test_node_pod_features_e2e: netns, mounts, veths, pod IPs, cgroups,
processes; and nftables rules and set elements).

One node serves the module (tests/nodekit.py), with a /28 pod range so that the last test can
run it out of addresses. Upstream references are named at each case (kubernetes/pkg/kubelet).
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path

import pytest

from tests.imagekit import OciLayout
from tests.layerkit import dir_, file_, tar_bytes
from tests.nodekit import Node, busybox_node, container_status, create_pod, running
from tests.root.nodeagent.test_node_pod_features_e2e import (
    LOOP, MARK, POD_UIDS, events, node_objects, wait_event)

POD_CIDR = "10.244.7.0/28"       # 14 hosts: the bridge's gateway, 2 spares, 11 for pods
HEALTHY = "healthy"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    base = tmp_path_factory.mktemp("node")
    n = Node(base, "bad")
    from tests.nodekit import busybox_image
    busybox_image(base / "oci")
    n.import_image(base / "oci", "localhost/busybox")
    # an image with files but neither Entrypoint nor Cmd (as `FROM scratch` + `COPY` gives)
    OciLayout(base / "nocmd").image([tar_bytes([dir_("etc"), file_("etc/hello", b"hi\n")])],
                                    tag="1", config={"Env": ["PATH=/bin"]})
    n.import_image(base / "nocmd", "localhost/nocmd")
    n.up("--pod-cidr", POD_CIDR)
    n.name = json.loads(n.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
    # The pod that must be unaffected by everything below. Its hostPort makes the node's
    # hostport table at once: the table stays when the last hostPort pod goes (as the CNI portmap
    # plugin's chains do), so a case's census must not be the first to see it.
    create_pod(n, HEALTHY, [{"name": "c", "command": ["sh", "-c", f"{LOOP} # {MARK}"],
                             "ports": [{"containerPort": 8080, "hostPort": 18999}]}], grace=0)
    n.wait_pod(HEALTHY, running)
    # (not in POD_UIDS: the census counts the cases' pods only — the healthy pod's shell forks
    # now and then, and a fork has its parent's command line until it execs)
    yield n
    if n.running:
        n.down()


# --- helpers -----------------------------------------------------------------------------------------
LEAK_KEYS = ("netns", "mounts", "pod IPs", "pod cgroups", "pod processes")


def nft_objects(node: Node) -> dict[str, int]:
    """Rules and set/map elements of the node's nftables, counted from `nft -j` (the text's line
    count moves with how nft wraps a set's elements). The elements include the spares'
    addresses: census() takes them off (after the range ran out, the spares come back only with
    a later pod's sandbox, 30 s after the failure — spares.py)."""
    out = json.loads(node.sh("nft", "-j", "list", "ruleset").stdout or '{"nftables": []}')["nftables"]
    count = {"rules": 0, "elements": 0}
    for obj in out:
        if "rule" in obj:
            count["rules"] += 1
        for kind in ("set", "map"):
            if kind in obj:
                count["elements"] += len(obj[kind].get("elem") or [])
    return count


def census(node: Node) -> dict:
    got = node_objects(node)
    out = {k: got[k] for k in LEAK_KEYS}
    out["pod veths"] = len(got["veth"]) - len(got["spare sandboxes"])
    nft = nft_objects(node)
    nft["elements"] -= len(got["spare sandboxes"])     # a spare's address is in the masq set
    out["nft"] = nft
    return out


def settled_census(node: Node, want: dict, timeout: float = 30) -> dict:
    """The census once it equals `want`, or the last one seen (the pod's cgroup and sandbox go a
    moment after its API object)."""
    deadline = time.monotonic() + timeout
    while (got := census(node)) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    return got


def healthy_unaffected(node: Node, started_at: str) -> None:
    pod = node.get("pod", HEALTHY)
    st = container_status(pod, "c")
    assert running(pod) and st["restartCount"] == 0, pod["status"]
    assert st["state"]["running"]["startedAt"] == started_at


MADE: list[str] = []   # the pods of the running case (the `case` fixture deletes what is left)


def make_pod(node: Node, name: str, containers: list[dict], **spec) -> dict:
    MADE.append(name)
    for c in containers:
        c.setdefault("command", ["sh", "-c", f"{LOOP} # {MARK}"])
    create_pod(node, name, containers, grace=0, **spec)
    pod = node.get("pod", name)
    POD_UIDS.add(pod["metadata"]["uid"])
    return pod


def delete(node: Node, *names: str) -> None:
    node.kubectl("delete", "pod", *names, "--grace-period=0", "--force", "--wait=false")
    for n in names:
        node.wait_gone("pod", n)


def reasons(node: Node, name: str) -> list[tuple[str, str, str]]:
    return [(e["type"], e["reason"], e["message"]) for e in events(node, name)]


def waiting(pod: dict, c: str = "c") -> dict:
    return container_status(pod, c)["state"].get("waiting") or {}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace").replace("\0", " ")
    except OSError as e:
        return str(e)


@pytest.fixture
def case(node):
    """The census and the healthy pod's start before a case; after it (its pods deleted by the
    test), the same census and the healthy pod not restarted."""
    before = settled_census(node, census(node), timeout=0)
    started = container_status(node.get("pod", HEALTHY), "c")["state"]["running"]["startedAt"]
    MADE.clear()
    yield
    left = node.kubectl("get", "pods", "-o", "name").stdout.split()
    if leftover := [n for n in MADE if f"pod/{n}" in left]:     # (a case that failed half-way)
        delete(node, *leftover)
    after = settled_census(node, before)
    extra = [(pid, _read(f"/proc/{pid}/cgroup"), _read(f"/proc/{pid}/cmdline"))
             for pid in set(after["pod processes"]) - set(before["pod processes"])]
    assert after == before, ({k: (before[k], after[k]) for k in before if before[k] != after[k]},
                             extra, node.log_tail())
    healthy_unaffected(node, started)


# --- 1. an image no registry has ---------------------------------------------------------------------
def test_unknown_image_is_err_image_pull_then_image_pull_back_off(node, case):
    """pkg/kubelet/images/image_manager.go: the pull error is the waiting message of ErrImagePull
    (event Failed 'Failed to pull image "<image>": <err>', then 'Error: ErrImagePull'); the retry
    inside the back-off is ImagePullBackOff with 'Back-off pulling image "<image>"' (event
    BackOff) and the status message 'Back-off pulling image "<image>": ErrImagePull: <err>'."""
    image = "127.0.0.1:1/nope:1"          # loopback of the node's netns: connection refused
    make_pod(node, "noimage", [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent"}])
    pod = node.wait_pod("noimage", lambda p: waiting(p).get("reason") in ("ErrImagePull", "ImagePullBackOff"))
    pull = wait_event(node, "noimage", "Failed")
    pulls = [m for t, r, m in reasons(node, "noimage") if r == "Failed"]
    failed = [m for m in pulls if m.startswith(f'Failed to pull image "{image}": ')]
    assert failed and "Error: ErrImagePull" in pulls, reasons(node, "noimage")
    err = failed[0].split(": ", 1)[1]
    assert "127.0.0.1:1" in err and "connect" in err.lower(), err
    assert pull["type"] == "Warning"
    pod = node.wait_pod("noimage", lambda p: waiting(p).get("reason") == "ErrImagePull"
                        or waiting(p).get("reason") == "ImagePullBackOff")
    if waiting(pod)["reason"] == "ErrImagePull":
        assert waiting(pod)["message"] == err
    pod = node.wait_pod("noimage", lambda p: waiting(p).get("reason") == "ImagePullBackOff")
    assert waiting(pod)["message"] == f'Back-off pulling image "{image}": ErrImagePull: {err}'
    back = wait_event(node, "noimage", "BackOff")
    assert back["message"] == f'Back-off pulling image "{image}"' and back["type"] == "Normal"
    deadline = time.monotonic() + 20
    while ("Warning", "Failed", "Error: ImagePullBackOff") not in reasons(node, "noimage"):
        assert time.monotonic() < deadline, reasons(node, "noimage")
        time.sleep(0.3)
    assert pod["status"]["phase"] == "Pending"
    delete(node, "noimage")


def test_invalid_image_name(node, case):
    """image_manager.go applyDefaultImageTag: InvalidImageName, event InspectFailed
    'Failed to apply default image tag "<image>": couldn't parse image name "<image>": invalid
    reference format: <why>' (distribution/reference's words after the colon)."""
    image = "localhost/UPPER:1"
    make_pod(node, "badname", [{"name": "c", "image": image}])
    pod = node.wait_pod("badname", lambda p: waiting(p).get("reason") == "InvalidImageName")
    want = (f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": '
            'invalid reference format')
    assert waiting(pod)["message"].startswith(want) and "lowercase" in waiting(pod)["message"]
    want = waiting(pod)["message"]
    ev = wait_event(node, "badname", "InspectFailed")
    assert ev["message"] == want and ev["type"] == "Warning"
    delete(node, "badname")


# --- 2. an image with no command ---------------------------------------------------------------------
def test_image_without_command_is_create_container_error(node, case):
    """containerd (internal/cri/server/container_create_linux.go): 'failed to generate container
    "<id>" spec: no command specified'; the kubelet shows CreateContainerError with that text and
    an event Failed 'Error: <it>'."""
    make_pod(node, "nocmd", [{"name": "c", "image": "localhost/nocmd:1", "command": []}])
    pod = node.wait_pod("nocmd", lambda p: waiting(p).get("reason") == "CreateContainerError")
    msg = waiting(pod)["message"]
    assert "no command specified" in msg, msg
    ev = [m for t, r, m in reasons(node, "nocmd") if r == "Failed"]
    assert f"Error: {msg}" in ev, reasons(node, "nocmd")
    assert pod["status"]["phase"] == "Pending"
    delete(node, "nocmd")


# --- 3. a missing configMap key, a missing secret ----------------------------------------------------
def test_missing_config_map_key_and_secret_then_they_appear(node, case):
    """kubelet_pods.go makeEnvironmentVariables: 'couldn't find key <k> in ConfigMap <ns>/<name>',
    'secret "<name>" not found' → CreateContainerConfigError (event Failed 'Error: <msg>'); the
    kubelet retries each sync, so the pod starts once they exist."""
    node.kubectl("create", "configmap", "cfg", "--from-literal=other=1")
    make_pod(node, "needcm", [{"name": "c", "env": [
        {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}])
    make_pod(node, "needsec", [{"name": "c", "env": [
        {"name": "S", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "s"}}}]}])
    pod = node.wait_pod("needcm", lambda p: waiting(p).get("reason") == "CreateContainerConfigError")
    assert waiting(pod)["message"] == "couldn't find key k in ConfigMap default/cfg"
    pod = node.wait_pod("needsec", lambda p: waiting(p).get("reason") == "CreateContainerConfigError")
    assert waiting(pod)["message"] == 'secret "sec" not found'
    assert ("Warning", "Failed", 'Error: secret "sec" not found') in reasons(node, "needsec")
    assert ("Warning", "Failed", "Error: couldn't find key k in ConfigMap default/cfg") in \
        reasons(node, "needcm")

    node.kubectl("create", "configmap", "cfg2", "--from-literal=k=v")      # (not the one it needs)
    node.kubectl("patch", "configmap", "cfg", "-p", '{"data": {"k": "from-cm"}}')
    node.kubectl("create", "secret", "generic", "sec", "--from-literal=s=from-secret")
    node.wait_pod("needcm", running, timeout=90)
    node.wait_pod("needsec", running, timeout=90)
    assert node.kubectl("exec", "needcm", "--", "sh", "-c", "echo $K").stdout == "from-cm\n"
    assert node.kubectl("exec", "needsec", "--", "sh", "-c", "echo $S").stdout == "from-secret\n"
    delete(node, "needcm", "needsec")
    node.kubectl("delete", "configmap", "cfg", "cfg2")
    node.kubectl("delete", "secret", "sec")


# --- 4. a cgroup value no container runs under -------------------------------------------------------
def test_memory_limit_too_low_to_start(node, case):
    """limits.memory: 8Ki passes the API server's validation (any positive quantity) and is a
    value the kernel takes (two pages) for the pod's cgroup — but on cgroup v1 the container's own
    memory cgroup cannot then be made under it: mkdir is charged to the parent's limit and fails
    with ENOMEM. runc does that mkdir at `runc create`, inside containerd's task creation, so the
    kubelet's words are RunContainerError 'failed to create containerd task: ... mkdir
    <cgroup>: cannot allocate memory' (and the container then exited, StartError). Our runtime
    makes the cgroup at CreateContainer: CreateContainerError naming the cgroup and the errno,
    retried (see the report: the reason differs from upstream's)."""
    # (no service-account token volume: its tmpfs is sized by the same 8Ki, as the kubelet sizes
    # it, and three files do not fit in two pages — FailedMount first; the next test has that)
    make_pod(node, "tiny", [{"name": "c", "resources": {"limits": {"memory": "8Ki"}}}],
             restartPolicy="Never", automountServiceAccountToken=False)
    pod = node.wait_pod("tiny", lambda p: waiting(p).get("reason") not in (None, "ContainerCreating")
                        or "terminated" in container_status(p, "c")["state"], timeout=60)
    w = waiting(pod)
    assert w.get("reason") == "CreateContainerError", pod["status"]
    assert w["message"].startswith("creating cgroup /sys/fs/cgroup/") and \
        w["message"].endswith(": Cannot allocate memory"), w
    assert ("Warning", "Failed", f"Error: {w['message']}") in reasons(node, "tiny")
    assert pod["status"]["phase"] == "Pending"
    delete(node, "tiny")


def test_api_volume_too_big_for_the_memory_limit_is_failed_mount(node, case):
    """The kube-api-access volume is a tmpfs sized by the pod's memory limit (the kubelet's
    calculateEmptyDirMemorySize): at 8Ki its three files do not fit — FailedMount naming the volume
    and ENOSPC, the pod waits in ContainerCreating, and nothing is left once it is deleted."""
    make_pod(node, "tinyvol", [{"name": "c", "resources": {"limits": {"memory": "8Ki"}}}],
             restartPolicy="Never")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mounts = [m for (t, r, m) in reasons(node, "tinyvol") if r == "FailedMount"]
        if mounts:
            break
        time.sleep(0.5)
    assert mounts and mounts[0].startswith('MountVolume.SetUp failed for volume "kube-api-access-') \
        and mounts[0].endswith(": no space left on device"), reasons(node, "tinyvol")
    pod = node.get("pod", "tinyvol")
    assert waiting(pod).get("reason") == "ContainerCreating" and pod["status"]["phase"] == "Pending"
    delete(node, "tinyvol")


# --- 5. a hostPort another pod holds -----------------------------------------------------------------
def test_host_port_held_by_another_pod_is_rejected_at_admission(node, case):
    """lifecycle/predicate.go: the pod is Failed with reason NodePorts and message 'Pod was
    rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod
    ports', event NodePorts (Warning); it got no sandbox at all."""
    ports = [{"containerPort": 8080, "hostPort": 18181}]
    make_pod(node, "holder", [{"name": "c", "ports": ports}])
    node.wait_pod("holder", running)
    make_pod(node, "taker", [{"name": "c", "ports": ports}])
    pod = node.wait_pod("taker", lambda p: p["status"].get("phase") == "Failed")
    assert (pod["status"]["reason"], pod["status"]["message"]) == (
        "NodePorts", "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports "
                     "for the requested pod ports")
    assert not pod["status"].get("podIP")
    ev = wait_event(node, "taker", "NodePorts")      # kubelet.go rejectPod: the bare message
    assert (ev["type"], ev["message"]) == ("Warning", pod["status"]["message"].removeprefix(
        "Pod was rejected: "))
    assert not pod["status"].get("containerStatuses") or all(
        "waiting" in c["state"] or "terminated" in c["state"] for c in pod["status"]["containerStatuses"])
    assert running(node.get("pod", "holder"))
    delete(node, "holder", "taker")


# --- 6. no pod address left --------------------------------------------------------------------------
def test_out_of_pod_ips_waits_in_sandbox_creation_until_one_is_freed(node, case):
    """A full range: CNI ADD fails. With containerd the kubelet's event is FailedCreatePodSandBox
    'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for
    sandbox "<id>": plugin type="bridge" name="..." failed (add): failed to allocate for range 0:
    no IP addresses available in range set: <first>-<last>'; ours has no gRPC wrapping, names our
    bridge plugin (its IPAM is host-local's, in-process) and adds the CNI error's details. The pod
    stays Pending (ContainerCreating) and retries; when a pod goes, it gets the address."""
    net = ipaddress.ip_network(POD_CIDR)
    first, last = net.network_address + 1, net.broadcast_address - 1   # (.1, the bridge, is never handed out)
    names = []
    # Fill the range: pods until one cannot get an address. They have hostPorts, so none may
    # take a spare (spares.py): the two spares' addresses must come back to them at the end.
    for i in range(net.num_addresses):
        name = f"fill-{i}"
        make_pod(node, name, [{"name": "c", "ports": [{"containerPort": 8080, "hostPort": 19100 + i}]}])
        names.append(name)
        deadline, evs = time.monotonic() + 60, []
        while True:
            pod = node.get("pod", name)
            if running(pod):
                break
            evs = [m for t, r, m in reasons(node, name) if r == "FailedCreatePodSandBox"]
            if evs:
                break
            assert time.monotonic() < deadline, (pod["status"], node.log_tail())
            time.sleep(0.3)
        if evs:
            break
    else:
        raise AssertionError("the range never ran out")
    starved = names[-1]
    msg = evs[0]
    assert msg.startswith("Failed to create pod sandbox: failed to setup network for sandbox "), msg
    assert (f"failed (add): failed to allocate for range 0: no IP addresses available in range set: "
            f"{first}-{last}") in msg, msg
    pod = node.get("pod", starved)
    assert pod["status"]["phase"] == "Pending" and not pod["status"].get("podIP"), pod["status"]
    assert waiting(pod).get("reason") in (None, "ContainerCreating"), pod["status"]
    # every address but the bridge's and the healthy pod's went to a pod: none stayed with a spare
    assert len(names) - 1 == net.num_addresses - 4, names

    delete(node, names[0])
    pod = node.wait_pod(starved, running, timeout=90)
    assert ipaddress.ip_address(pod["status"]["podIP"]) in net
    delete(node, *names[1:])
