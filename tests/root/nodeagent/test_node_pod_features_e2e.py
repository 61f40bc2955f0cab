"""A whole node, end to end, for the pod features beyond the basics: lifecycle hooks, memory-backed
and service-account volumes, hostPort admission and mapping, and a create/delete leak check.

One node serves the module (tests/nodekit.py), driven with the real kubectl; the last test takes
the node down. Pods name the node in spec.nodeName, as a scheduler's binding would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.netsim import SimNet
from tests.nodekit import (
    BUSYBOX_IMAGE, Node, busybox_node, container_status, create_pod, running)

IMAGE = BUSYBOX_IMAGE
LOOP = "while true; do sleep 0.2; done"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = busybox_node(tmp_path_factory.mktemp("node"), "feat")
    yield n
    if n.running:
        n.down()


def events(node: Node, name: str) -> list[dict]:
    out = node.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
    return json.loads(out.stdout)["items"]


def wait_event(node: Node, name: str, reason: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in events(node, name):
            if e["reason"] == reason:
                return e
        time.sleep(0.3)
    raise AssertionError(f"no {reason} event for {name} in {timeout} s: "
                         f"{[(e['reason'], e['message']) for e in events(node, name)]}")


class Watch:
    """`kubectl get pods -w -o json` for one name: every version of the pod a watcher saw (by a
    field selector, so the watch may start before the pod exists)."""

    def __init__(self, node: Node, name: str):
        self.proc = node.kubectl_popen("get", "pods", "--field-selector", f"metadata.name={name}",
                                       "-w", "-o", "json", "--output-watch-events",
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def stop(self) -> list[dict]:
        self.proc.terminate()
        text = self.proc.communicate(timeout=10)[0]
        dec, i, out = json.JSONDecoder(), 0, []
        while i < len(text):
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                break
            obj, i = dec.raw_decode(text, i)
            out.append(obj)
        return out


# --- lifecycle hooks ---------------------------------------------------------------------------------
def test_post_start_exec_http_and_sleep_hooks_run(node):
    web = ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    create_pod(node, "hooks", [
        {"name": "web", "command": web},
        {"name": "c", "command": ["sh", "-c", LOOP],
         "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo from-poststart > /tmp/mark"]}}}},
        {"name": "http", "command": ["sh", "-c", LOOP],
         "lifecycle": {"postStart": {"httpGet": {"path": "/index.html", "port": 8080}}}},
        {"name": "nap", "command": ["sh", "-c", LOOP],
         "lifecycle": {"postStart": {"sleep": {"seconds": 1}}}}])
    node.wait_pod("hooks", lambda p: running(p) and all(
        "running" in container_status(p, n)["state"] for n in ("web", "c", "http", "nap")))
    got = node.kubectl("exec", "hooks", "-c", "c", "--", "cat", "/tmp/mark").stdout
    assert got == "from-poststart\n"
    assert not [e for e in events(node, "hooks") if e["reason"] == "FailedPostStartHook"]
    node.kubectl("delete", "pod", "hooks", "--grace-period=0", "--force")


def test_failing_post_start_kills_the_container_with_the_kubelets_reasons(node):
    w = Watch(node, "badstart")
    create_pod(node, "badstart", [
        {"name": "c", "command": ["sh", "-c", f'trap "exit 1" TERM; {LOOP}'],
         "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo oops; exit 3"]}}}}],
        policy="OnFailure", grace=5)
    pod = node.wait_pod("badstart", lambda p: container_status(p, "c")["restartCount"] >= 1)
    seen = w.stop()
    assert container_status(pod, "c")["lastState"]["terminated"]["exitCode"] == 1    # its TERM trap ran
    ev = wait_event(node, "badstart", "FailedPostStartHook")
    assert ev["type"] == "Warning" and ev["message"] == "PostStartHook failed"
    killing = wait_event(node, "badstart", "Killing")
    assert killing["message"] == "FailedPostStartHook"
    waiting = [container_status(e["object"], "c")["state"].get("waiting") for e in seen]
    hook_err = [wt for wt in waiting if wt and wt.get("reason") == "PostStartHookError"]
    assert hook_err, waiting
    uid = pod["metadata"]["uid"]
    assert hook_err[0]["message"] == (
        f'Exec lifecycle hook ([sh -c echo oops; exit 3]) for Container "c" in Pod '
        f'"badstart_default({uid})" failed - error: command \'sh -c echo oops; exit 3\' exited '
        f'with 3: , message: "oops\\n"')
    node.kubectl("delete", "pod", "badstart", "--grace-period=0", "--force")


def test_pre_stop_runs_before_the_stop_signal_and_counts_against_the_grace_period(node):
    # the preStop hook and then the TERM trap append to the termination log: their order shows
    trap = 'trap "echo term >> /dev/termination-log; exit 0" TERM; ' + LOOP
    create_pod(node, "prestop", [{"name": "c", "command": ["sh", "-c", trap], "lifecycle": {
        "preStop": {"exec": {"command": ["sh", "-c", "echo prestop > /dev/termination-log"]}}}}])
    # a preStop that outlasts the grace period, in a container that ignores TERM: the hook gets
    # the whole 4 s, then the signal the 2 s minimum, then SIGKILL
    create_pod(node, "slowstop", [{"name": "c", "command": ["sh", "-c", f'trap "" TERM; {LOOP}'],
                               "lifecycle": {"preStop": {"exec": {"command": ["sleep", "60"]}}}}],
           grace=4)
    create_pod(node, "badstop", [{"name": "c", "command": ["sh", "-c", f'trap "exit 0" TERM; {LOOP}'],
                              "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "exit 1"]}}}}])
    for name in ("prestop", "slowstop", "badstop"):
        node.wait_pod(name, running)

    w = Watch(node, "prestop")
    node.kubectl("delete", "pod", "prestop", "--timeout=25s")
    before = [e["object"] for e in w.stop() if e["type"] != "DELETED"][-1]
    t = container_status(before, "c")["state"]["terminated"]
    assert (t["exitCode"], t.get("message")) == (0, "prestop\nterm\n"), t

    w = Watch(node, "slowstop")
    t0 = time.monotonic()
    node.kubectl("delete", "pod", "slowstop", "--timeout=25s")
    took = time.monotonic() - t0
    before = [e["object"] for e in w.stop() if e["type"] != "DELETED"][-1]
    assert container_status(before, "c")["state"]["terminated"]["exitCode"] == 137
    assert took >= 4 + 2, took               # the hook's 4 s, then the signal's minimum 2 s

    node.kubectl("delete", "pod", "badstop", "--wait=false")
    ev = wait_event(node, "badstop", "FailedPreStopHook")
    assert ev["type"] == "Warning" and ev["message"] == "PreStopHook failed"
    node.wait_gone("pod", "badstop")


# --- volumes -----------------------------------------------------------------------------------------
def test_memory_emptydir_is_a_tmpfs_of_its_size_limit(node):
    create_pod(node, "memvol", [{"name": "c", "command": ["sh", "-c", LOOP],
                             "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
           volumes=[{"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}])
    pod = node.wait_pod("memvol", running)
    df = node.kubectl("exec", "memvol", "--", "sh", "-c", "grep ' /scratch ' /proc/mounts; df -k /scratch").stdout
    assert " /scratch tmpfs " in df, df
    assert "8192" in df.splitlines()[-1].split(), df        # 8 MiB, in 1K blocks
    full = node.kubectl("exec", "memvol", "--", "dd", "if=/dev/zero", "of=/scratch/big", "bs=1M",
                        "count=16", check=False)
    assert full.returncode != 0 and "No space left" in full.stderr, full.stderr
    # on the node: a tmpfs below the pod's directory, gone with the pod
    uid = pod["metadata"]["uid"]
    vol = f"{node.data}/agent/pods/{uid}/volumes/kubernetes.io~empty-dir/scratch"
    assert vol in open("/proc/self/mountinfo").read()
    node.kubectl("delete", "pod", "memvol", "--grace-period=0", "--force")
    node.wait_gone("pod", "memvol")
    deadline = time.monotonic() + 20
    while vol in open("/proc/self/mountinfo").read() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert vol not in open("/proc/self/mountinfo").read()


def test_kube_api_access_volume_as_the_serviceaccount_admission_adds_it(node):
    # the projected volume upstream's ServiceAccount admission plugin puts in every pod
    sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
    volume = {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                    "fieldPath": "metadata.namespace"}}]}}]}}
    create_pod(node, "sa", [{"name": "c", "command": ["sh", "-c", LOOP], "volumeMounts": [
        {"name": "kube-api-access-x7k2p", "mountPath": sa_dir, "readOnly": True}]}],
        volumes=[volume])
    node.wait_pod("sa", running)
    ca = json.loads(node.kubectl("get", "configmap", "kube-root-ca.crt", "-o", "json").stdout)["data"]["ca.crt"]
    assert node.kubectl("exec", "sa", "--", "cat", f"{sa_dir}/ca.crt").stdout == ca
    assert node.kubectl("exec", "sa", "--", "cat", f"{sa_dir}/namespace").stdout == "default"
    # The token comes from the API's TokenRequest, bound to the pod: the API server takes it as
    # the pod's service account (controlplane/apiserver/serviceaccounts.py)
    token = node.kubectl("exec", "sa", "--", "cat", f"{sa_dir}/token").stdout
    who = json.loads(node.kubectl("auth", "whoami", "-o", "json", f"--token={token}").stdout)
    assert who["status"]["userInfo"]["username"] == "system:serviceaccount:default:default"
    assert who["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"] == ["sa"]
    node.kubectl("delete", "pod", "sa", "--grace-period=0", "--force")


# --- hostPort ----------------------------------------------------------------------------------------
def _web_with_host_port(node: Node, name: str, host_port: int) -> None:
    create_pod(node, name, [{"name": "web", "command": ["httpd", "-f", "-p", "8080", "-h", "/var/www"],
                         "ports": [{"containerPort": 8080, "hostPort": host_port}]}])


def test_host_port_maps_and_a_second_pod_asking_for_it_is_rejected(node):
    _web_with_host_port(node, "hp1", 18080)
    create_pod(node, "hpclient", [{"name": "c", "command": ["sleep", "3600"]}], grace=0)
    node.wait_pod("hp1", running)
    node.wait_pod("hpclient", running)
    # (a) the node itself on 127.0.0.1, as with the CNI portmap plugin (snat): route_localnet=1 on
    # the bridge and a masquerade of 127/8 to the bridge's address
    got = node.sh("busybox", "wget", "-qO-", "http://127.0.0.1:18080/index.html")
    assert got.stdout == "hello from a pod\n", got.stderr
    assert node.sh("sysctl", "-n", "net.ipv4.conf.cni0.route_localnet").stdout.strip() == "1"
    # The test node's only address is loopback: give its namespace one more (on lo: no dummy links
    # in this kernel) for the node-address cases.
    ip = "192.0.2.1"
    assert node.sh("ip", "addr", "add", f"{ip}/32", "dev", "lo").returncode == 0
    try:
        # (c) another pod, and the pod itself, through the node's address (masqueraded: the reply
        # must come back through the node, not straight across the bridge)
        for pod, container in (("hpclient", "c"), ("hp1", "web")):
            got = node.kubectl("exec", pod, "-c", container, "--", "wget", "-qO-",
                               f"http://{ip}:18080/index.html", check=False)
            assert got.stdout == "hello from a pod\n", (pod, got.stderr)
        _from_another_machine(node, "198.51.100", 18080)              # (d)
        _host_port_checks(node, ip)                                   # (b), admission, reuse
    finally:                        # (a second address would make a restarted node ask which)
        node.sh("ip", "addr", "del", f"{ip}/32", "dev", "lo")
        node.kubectl("delete", "pod", "hpclient", "--grace-period=0", "--force", check=False)


def _from_another_machine(node: Node, lan: str, port: int) -> None:
    """(d): a second machine — a namespace with a veth into the node's — reaches the hostPort on
    the node's address on that link; the link goes again afterwards."""
    sim = SimNet()
    try:
        sim.add_ns("remote")
        sim.sh("remote", "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "hpremote",
               "netns", node.netns)
        sim.sh("remote", "ip", "addr", "add", f"{lan}.2/24", "dev", "eth0")
        sim.sh("remote", "ip", "link", "set", "eth0", "up")
        assert node.sh("ip", "addr", "add", f"{lan}.1/24", "dev", "hpremote").returncode == 0
        assert node.sh("ip", "link", "set", "hpremote", "up").returncode == 0
        got = sim.sh("remote", "busybox", "wget", "-qO-", f"http://{lan}.1:{port}/index.html", check=False)
        assert got.stdout == "hello from a pod\n", got.stderr
    finally:
        sim.cleanup()                                  # the veth pair goes with the namespace
        node.sh("ip", "link", "del", "hpremote")       # (if it has not yet)


def _host_port_checks(node: Node, ip: str) -> None:
    got = node.sh("busybox", "wget", "-qO-", f"http://{ip}:18080/index.html")
    assert got.stdout == "hello from a pod\n", (ip, got.stderr)

    # the same host port on the same node: the kubelet's admission rejects it (NodePorts)
    _web_with_host_port(node, "hp2", 18080)
    pod = node.wait_pod("hp2", lambda p: p["status"].get("phase") == "Failed")
    assert pod["status"]["reason"] == "NodePorts"
    assert pod["status"]["message"] == ("Pod was rejected: Predicate NodePorts failed: node(s) didn't "
                                        "have free ports for the requested pod ports")
    assert not pod["status"].get("containerStatuses") and not pod["status"].get("podIP")
    ev = wait_event(node, "hp2", "NodePorts")
    assert ev["type"] == "Warning"
    table = node.kubectl("get", "pod", "hp2").stdout
    assert "NodePorts" in table, table                      # kubectl shows the reason as STATUS
    assert node.get("pod", "hp1")["status"]["phase"] == "Running"    # the first pod is unaffected

    # a rejected pod is deleted like any finished pod; the port is free again once hp1 is gone
    node.kubectl("delete", "pod", "hp2", "--timeout=30s")
    node.kubectl("delete", "pod", "hp1", "--grace-period=1", "--timeout=30s")
    _web_with_host_port(node, "hp3", 18080)
    node.wait_pod("hp3", running)
    got = node.sh("busybox", "wget", "-qO-", f"http://{ip}:18080/index.html")
    assert got.stdout == "hello from a pod\n", got.stderr
    node.kubectl("delete", "pod", "hp3", "--grace-period=0", "--force")


# --- leaks -------------------------------------------------------------------------------------------
# 200 on the host; in the vm tier (cgroup v2, under an emulator ~5x slower) fewer, to stay inside
# CI's budget: the census is the same, only the number of rounds differs.
LEAK_CYCLES = int(os.environ.get("NODEAGENT_LEAK_CYCLES",
                                 "30" if os.environ.get("NODEAGENT_IN_VM") == "1" else "200"))
LEAK_BATCH = 10
MARK = "leakcheck-3f9a"


def _own_cgroup_dirs() -> list[Path]:
    from runtime.cgroups.layout import CgroupMode, detect
    layout = detect()
    if layout.mode is CgroupMode.V2:
        return [layout.unified.own_dir]
    return [layout.v1[c].own_dir for c in ("memory", "cpu", "pids") if c in layout.v1]


def _pids(marker: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker.encode() in (p / "cmdline").read_bytes():
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def _agent_fds(node: Node) -> tuple[int, int]:
    """(sockets, other fds) of the node's process. Its sockets include the API server's clients
    (it runs in the same process), which come and go with kubectl; the others do not."""
    agent = int((node.data / "nodeagent.pid").read_text().split()[0])
    targets = []
    for fd in Path(f"/proc/{agent}/fd").iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            pass
    sockets = sum(t.startswith("socket:") for t in targets)
    return sockets, len(targets) - sockets


POD_UIDS: set[str] = set()   # every pod _batch made (whose cgroups node_objects counts)


def _in_our_pods(pid: int) -> bool:
    """Is the process in the cgroup of one of our pods? (The same test may run on another node of
    the machine at once, with the same marker in its pods' command lines.)"""
    try:
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    return any(f"pod{uid}" in cgroups for uid in POD_UIDS)


def node_objects(node: Node) -> dict[str, object]:
    """Everything a pod leaves on a node if it leaks, as a user could list it."""
    data = str(node.data)
    # The node keeps pre-made sandboxes (nodeagent/cri/spares.py) whose addresses are held while
    # no pod exists: by design, not a leak. Their IDs are in their records ("spare": true).
    spares = set()
    # (globbed where the records are: a walk of the whole data dir races with containers'
    # upper directories coming and going, FileNotFoundError)
    for rec in (node.data / "agent" / "cri" / "sandboxes").glob("*/sandbox.json"):
        try:
            if json.loads(rec.read_text()).get("spare"):
                spares.add(rec.parent.name)
        except (OSError, ValueError):
            pass  # removed or being written meanwhile

    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    mounts = sorted(m for m in (line.split()[4] for line in mountinfo)
                    if data in m and not any(sid in m for sid in spares))
    links = node.sh("ip", "-o", "link", "show").stdout.splitlines()
    ruleset = node.sh("nft", "list", "ruleset").stdout.splitlines()

    def spare_ip(p: Path) -> bool:  # host-local: .attachments/<id>/<if>/<ip>, or <ip> naming its id
        if p.parent.parent.name in spares:
            return True
        try:
            return p.read_text().split()[:1] in ([sid] for sid in spares)
        except OSError:
            return False

    ipam = sorted(str(p.relative_to(node.data)) for p in (node.data / "cni" / "ipam").rglob("*")
                  if p.is_file() and p.name[:1].isdigit() and not spare_ip(p))
    # this node's pods only: other nodes on the machine may share our cgroup
    cgroups = sorted(str(d) for root in _own_cgroup_dirs() for d in (root / "kubepods").glob("**/pod*")
                     if d.name[3:] in POD_UIDS)
    agent = int((node.data / "nodeagent.pid").read_text().split()[0])
    sockets, files = _agent_fds(node)
    return {
        "netns": [m for m in mounts if "/ns" in m or "netns" in m],
        "mounts": mounts,
        "veth": [line.split(":")[1].strip() for line in links if "veth" in line],  # spares' too
        "spare sandboxes": sorted(spares),
        "pod IPs": ipam,
        "nft lines": len(ruleset),
        "pod cgroups": cgroups,
        "pod processes": [pid for pid in _pids(MARK) if _in_our_pods(pid)],
        "processes under the data dir": len(_pids(data)),
        "agent sockets": sockets,
        "agent other fds": files,
        "agent threads": len(list(Path(f"/proc/{agent}/task").iterdir())),
    }


def _batch(node: Node, names: list[str], while_running=None) -> None:
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n},
             "spec": {"nodeName": node.name, "terminationGracePeriodSeconds": 10,
                      "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                                      "command": ["sh", "-c", f'trap "exit 0" TERM; {LOOP} # {MARK}'],
                                      "ports": [{"containerPort": 8080, "hostPort": 19000 + i}]}]}}
            for i, n in enumerate(names)]
    # a stream of objects (a kind: List fails kubectl's client-side validation against our API
    # server: "unable to respond with a content type that the client supports")
    node.kubectl("create", "-f", "-", input="\n".join(json.dumps(p) for p in pods))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        items = json.loads(node.kubectl("get", "pods", *names, "-o", "json").stdout)["items"]
        POD_UIDS.update(p["metadata"]["uid"] for p in items)
        if len(items) == len(names) and all(running(p) for p in items):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"pods not Running: {[(p['metadata']['name'], p['status'].get('phase')) for p in items]}"
                             f"\n{node.log_tail()}")
    if while_running is not None:
        while_running()
    node.kubectl("delete", "pods", *names, "--timeout=120s",       # graceful: through the agent
                 timeout=150)


@pytest.mark.vm
@pytest.mark.skipif(LEAK_CYCLES <= 0, reason="NODEAGENT_LEAK_CYCLES=0")
def test_pod_create_delete_cycles_leave_nothing_behind(node):
    """NODEAGENT_LEAK_CYCLES (default 200) pods, each created, Running and deleted, 10 at a time;
    then the node has exactly what it had after the first batch: no netns, veth, pod IP, nft
    rule, mount, cgroup or process more, and the agent (nearly) no more fds or threads."""
    busy = {}
    _batch(node, [f"leak-warm-{i}" for i in range(LEAK_BATCH)],           # warm caches and pools
           while_running=lambda: busy.update(node_objects(node)))
    # the census sees each kind of object while pods run (so it would see one left behind)
    for key in ("netns", "veth", "pod IPs", "pod cgroups", "pod processes"):
        assert len(busy[key]) >= LEAK_BATCH, (key, busy[key])
    before = node_objects(node)
    assert busy["nft lines"] > before["nft lines"] and busy["mounts"] != before["mounts"]
    t0 = time.monotonic()
    done = 0
    fds = []
    while done < LEAK_CYCLES:
        n = min(LEAK_BATCH, LEAK_CYCLES - done)
        _batch(node, [f"leak-{done + i}" for i in range(n)])
        done += n
        fds.append(_agent_fds(node))
    took = time.monotonic() - t0
    print(f"\n{done} pod create/delete cycles in {took:.1f} s ({took / done * 1000:.0f} ms a pod, "
          f"{LEAK_BATCH} at a time)")
    # (a pod cgroup whose last process was still leaving is removed on the agent's next
    # housekeeping pass, within seconds: wait for that, not for ever)
    deadline = time.monotonic() + 20
    while (after := node_objects(node))["pod cgroups"] and time.monotonic() < deadline:
        time.sleep(0.5)
    print("before:", before, "\nafter: ", after, "\nagent (sockets, other fds) after each batch:", fds)
    left = [(d, sorted(os.listdir(d)), Path(d, "cgroup.procs").read_text().split())
            for d in after["pod cgroups"][:6]]
    if after["pod cgroups"]:
        log = (node.data / "nodeagent.log").read_text(errors="replace").splitlines()
        left.append([line for line in log if "cgroup" in line][:10])
    assert not after["pod processes"] and not after["pod cgroups"] and not after["pod IPs"], left
    assert len(after["veth"]) == len(after["spare sandboxes"]) and not after["netns"], after
    for key in ("mounts", "nft lines", "processes under the data dir"):
        assert after[key] == before[key], key
    # pipes, pidfds, files: a leak per pod would show as hundreds; the thread pool and the
    # connections (the API server's clients among them) may still move a little
    assert after["agent other fds"] <= before["agent other fds"] + 2, (before, after)
    for key in ("agent sockets", "agent threads"):
        assert after[key] <= before[key] + 16, (key, before[key], after[key])


# --- image GC and eviction (last: they restart the node with other flags) ---------------------------
def _restart(node: Node, *flags: str) -> None:
    """kill -9 the node's process (its pods live on), then `nodeagent up` again with flags."""
    pid = int((node.data / "nodeagent.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2] \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    node.up(*flags)


def test_image_gc_removes_unused_images_and_keeps_used_ones(node, tmp_path):
    from tests.imagekit import OciLayout
    from tests.nodekit import busybox_layer

    layout = OciLayout(tmp_path / "spare")                 # another image (another config → ID)
    layout.image([busybox_layer()], tag="1", config={"Cmd": ["sh"], "Env": ["SPARE=1"]})
    node.import_image(tmp_path / "spare", "localhost/spare")

    def images() -> str:
        out = node.nodeagent("image", "ls", "--store", str(node.data / "images"), in_netns=False)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "localhost/spare" in images() and "localhost/busybox" in images()
    create_pod(node, "user", [{"name": "c", "command": ["sh", "-c", LOOP]}])
    node.wait_pod("user", running)

    # The whole node again, with image GC at any usage (high 1%, low 0%) and no minimum age: the
    # first pass at start removes what no container uses and cannot free the rest.
    _restart(node, "--image-gc-high-threshold=1", "--image-gc-low-threshold=0",
             "--minimum-image-ttl-duration=0s")
    ev = wait_event(node, node.name, "FreeDiskSpaceFailed", timeout=60)
    assert ev["type"] == "Warning" and ev["message"].startswith(
        "Failed to garbage collect required amount of images. Attempted to free ")
    listed = images()
    assert "localhost/spare" not in listed and "localhost/busybox" in listed, listed
    assert node.get("pod", "user")["status"]["phase"] == "Running"


def test_an_emptydir_over_its_size_limit_gets_the_pod_evicted(node):
    """The kubelet's local storage limits: a disk emptyDir cannot be held to its sizeLimit by the
    filesystem, so the eviction manager measures it and evicts the pod (grace 1 s, no
    DisruptionTarget condition) — on a node under no pressure at all."""
    create_pod(node, "filler", [{"name": "c", "command": [
        "sh", "-c", f"dd if=/dev/zero of=/scratch/fill bs=1024 count=2048; {LOOP}"],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
        volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}])
    pod = node.wait_pod("filler", lambda p: p["status"].get("reason") == "Evicted", timeout=60)
    st = pod["status"]
    assert (st["phase"], st["message"]) == (
        "Failed", 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ')
    assert not any(c["type"] == "DisruptionTarget" for c in st.get("conditions") or [])
    assert wait_event(node, "filler", "Evicted")["message"] == st["message"]


def test_memory_pressure_evicts_a_besteffort_pod_and_refuses_new_ones(node):
    # a hard threshold no machine is above: the node is under memory pressure at once
    create_pod(node, "victim", [{"name": "c", "command": ["sh", "-c", f'trap "exit 0" TERM; {LOOP}']}])
    node.wait_pod("victim", running)
    _restart(node, "--eviction-hard=memory.available<1000Ti")

    def pressure(n: dict) -> dict:
        return next(c for c in n["status"]["conditions"] if c["type"] == "MemoryPressure")
    deadline = time.monotonic() + 60
    while pressure(node.get("node", node.name, namespace=""))["status"] != "True":
        assert time.monotonic() < deadline, "no MemoryPressure"
        time.sleep(0.5)
    assert pressure(node.get("node", node.name, namespace=""))["reason"] == "KubeletHasInsufficientMemory"

    pod = node.wait_pod("victim", lambda p: p["status"].get("reason") == "Evicted", timeout=90)
    st = pod["status"]
    assert st["phase"] == "Failed"
    assert st["message"].startswith("The node was low on resource: memory. Threshold quantity: 1000Ti, "
                                    "available: "), st["message"]
    target = next(c for c in st["conditions"] if c["type"] == "DisruptionTarget")
    assert (target["status"], target["reason"]) == ("True", "TerminationByKubelet")
    assert "terminated" in container_status(pod, "c")["state"]
    assert wait_event(node, "victim", "Evicted")["type"] == "Warning"

    # while under pressure a new BestEffort pod is refused (the kubelet's eviction admission)
    create_pod(node, "late", [{"name": "c", "command": ["sh", "-c", LOOP]}])
    pod = node.wait_pod("late", lambda p: p["status"].get("phase") == "Failed")
    assert (pod["status"]["reason"], pod["status"]["message"]) == (
        "Evicted", "Pod was rejected: The node had condition: [MemoryPressure]. ")

    # A soft threshold: pressure at once, but eviction only once it has held for its grace
    # period, and then with min(--eviction-max-pod-grace-period, the pod's own) — 4 s here, time
    # for the TERM trap's 2 s (a hard eviction's 1 s would end in a SIGKILL, exit 137).
    _restart(node, "--eviction-hard=memory.available<1Ki", "--eviction-soft=memory.available<1000Ti",
             "--eviction-soft-grace-period=memory.available=5s", "--eviction-max-pod-grace-period=4")
    create_pod(node, "soft", [{"name": "c", "command": ["sh", "-c", f'trap "sleep 2; exit 0" TERM; {LOOP}'],
                               "resources": {"requests": {"memory": "1Mi"}}}])   # Burstable: admitted
    pod = node.wait_pod("soft", lambda p: p["status"].get("reason") == "Evicted", timeout=90)
    assert pod["status"]["message"].startswith(
        "The node was low on resource: memory. Threshold quantity: 1000Ti, available: ")
    assert container_status(pod, "c")["state"]["terminated"]["exitCode"] == 0
    since = pressure(node.get("node", node.name, namespace=""))
    assert since["status"] == "True"
    target = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")

    def t(stamp: str) -> float:
        return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    assert t(target["lastTransitionTime"]) - t(since["lastTransitionTime"]) >= 5
