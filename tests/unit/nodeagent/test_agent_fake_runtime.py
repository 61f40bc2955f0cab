"""The kubelet side end to end with a fake runtime: a real API server, the real informer, pod
workers, status manager, event recorder and node status — only the containers are pretend."""

import asyncio
import base64

import pytest

from apiclient import CONFIGMAPS, EVENTS, LEASES, NODES, PODS, SECRETS, SERVICES
from tests.apiserver import start_server
from tests.unit.nodeagent.agentkit import NODE, condition, cstatus, phase, pod, running_agent
from tests.unit.nodeagent.fakecri import FakeRuntime


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("apiserver") / "data")
    yield srv
    srv.stop()


def run(coro):
    return asyncio.run(coro)


def test_node_registers_ready_with_capacity_and_lease(server, tmp_path, monkeypatch):
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            async def ready():
                node = await a.api.get(NODES, NODE)
                return condition(node, "Ready").get("status") == "True"
            for _ in range(200):
                try:
                    if await ready():
                        break
                except Exception:  # noqa: BLE001 - not registered yet
                    pass
                await asyncio.sleep(0.05)
            node = await a.api.get(NODES, NODE)
            st = node["status"]
            assert node["metadata"]["labels"]["kubernetes.io/hostname"] == NODE
            assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
            assert st["capacity"]["pods"] == "110" and int(st["capacity"]["cpu"]) >= 1
            assert st["allocatable"]["memory"].endswith("Ki")
            assert {c["type"]: c["reason"] for c in st["conditions"]} == {
                "MemoryPressure": "KubeletHasSufficientMemory", "DiskPressure": "KubeletHasNoDiskPressure",
                "PIDPressure": "KubeletHasSufficientPID", "Ready": "KubeletReady"}
            assert {"type": "InternalIP", "address": "127.0.0.1"} in st["addresses"]
            assert st["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
            assert st["nodeInfo"]["containerRuntimeVersion"] == "fakecri://0.1"
            assert st["nodeInfo"]["kernelVersion"]
            assert node["spec"]["podCIDR"] == "10.244.0.0/24"
            for _ in range(100):       # events are written by the recorder's task, a moment later
                evs = (await a.api.list(EVENTS, "default",
                                        field_selector=f"involvedObject.name={NODE}"))["items"]
                reasons = {e["reason"]: e["message"] for e in evs}
                if {"Starting", "NodeReady", "NodeHasSufficientMemory"} <= set(reasons):
                    break
                await asyncio.sleep(0.05)
            assert reasons.get("Starting") == "Starting kubelet."
            # the kubelet's first word, before its conditions' (names are <node>.<hex nanoseconds>)
            assert min(evs, key=lambda e: e["metadata"]["name"])["reason"] == "Starting"
            assert reasons.get("NodeReady") == f"Node {NODE} status is now: NodeReady"
            assert "NodeHasSufficientMemory" in reasons
            lease = await a.api.get(LEASES, NODE, "kube-node-lease")
            assert lease["spec"]["holderIdentity"] == NODE
            assert lease["spec"]["leaseDurationSeconds"] == 40
    run(main())


def test_node_is_created_with_its_status_not_patched_later(server, tmp_path, monkeypatch):
    """What a watcher sees first (`kubectl get nodes -w`'s ADDED event, as a scheduler's informer
    would) is the whole Node: capacity, allocatable, addresses, nodeInfo and conditions."""
    import json
    import subprocess
    import time

    from apiclient import NotFound
    from tests.apiserver import Kubectl

    kubectl = Kubectl(server, tmp_path / "kubecache")

    async def main():
        async with running_agent(server, tmp_path=tmp_path / "a", monkeypatch=monkeypatch) as a:
            for _ in range(200):
                try:
                    node = await a.api.get(NODES, NODE)
                    if condition(node, "Ready").get("status") == "True":
                        break
                except NotFound:
                    pass
                await asyncio.sleep(0.05)

    kubectl.run("delete", "node", NODE, "--ignore-not-found")
    watch = subprocess.Popen([kubectl.exe, "get", "nodes", "-w", "-o", "json", "--output-watch-events"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kubectl.env)
    try:
        time.sleep(1)                      # the watch is open before the agent starts
        run(main())
    finally:
        watch.terminate()
        out, err = watch.communicate(timeout=10)
    first = json.JSONDecoder().raw_decode(out.lstrip())[0]
    assert first["type"] == "ADDED", (out[:500], err)
    st = first["object"]["status"]
    assert st["capacity"]["pods"] == "110" and st["allocatable"]["cpu"] == st["capacity"]["cpu"]
    assert {"type": "InternalIP", "address": "127.0.0.1"} in st["addresses"]
    assert st["nodeInfo"]["containerRuntimeVersion"] == "fakecri://0.1"
    assert st["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    assert {c["type"] for c in st["conditions"]} == {"Ready", "MemoryPressure", "DiskPressure",
                                                     "PIDPressure"}
    assert condition(first["object"], "Ready")["reason"] == "KubeletReady"


def test_pod_runs_ready_with_ip_and_events_then_graceful_delete(server, tmp_path, monkeypatch):
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("web", ["sleep", "1d"], grace=7))
            p = await a.wait_pod("web", lambda p: condition(p, "Ready").get("status") == "True")
            st = p["status"]
            assert st["phase"] == "Running"
            assert st["podIP"].startswith("10.244.0.") and st["podIPs"] == [{"ip": st["podIP"]}]
            assert st["hostIP"] == "127.0.0.1" and st["qosClass"] == "BestEffort"
            assert st["startTime"]
            cs = cstatus(p)
            assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
            assert "running" in cs["state"] and cs["containerID"].startswith("fakecri://")
            assert cs["imageID"].startswith("sha256:")
            for t in ("PodScheduled", "PodReadyToStartContainers", "Initialized", "ContainersReady"):
                assert condition(p, t)["status"] == "True", t
            # no writes when nothing changed: wake the worker, its status is the same
            uid = p["metadata"]["uid"]
            rv = p["metadata"]["resourceVersion"]
            await asyncio.sleep(0.3)
            rv = (await a.get("web"))["metadata"]["resourceVersion"]
            a.task.get_coro()  # (the agent keeps running)
            await asyncio.sleep(0.5)
            assert (await a.get("web"))["metadata"]["resourceVersion"] == rv

            evs = (await a.api.list(EVENTS, "default", field_selector=f"involvedObject.uid={uid}"))["items"]
            reasons = {e["reason"] for e in evs}
            assert {"Pulled", "Created", "Started"} <= reasons, reasons
            assert all(e["source"]["component"] == "kubelet" for e in evs)

            await a.api.delete(PODS, "web", "default")
            await a.wait_gone("web")
            stops = [c for c in a.fake.calls if c[0] == "stop_container"]
            assert stops and stops[0][2] == 7.0
            assert not a.fake.sandboxes and not a.fake.containers   # everything removed
            assert uid in a.cgroups.removed
    run(main())


def test_restart_policies_reasons_and_backoff(server, tmp_path, monkeypatch):
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("never", ["exit", "3"], policy="Never"))
            await a.create_pod(pod("onfail", ["exit", "0"], policy="OnFailure"))
            await a.create_pod(pod("always", ["exit", "1"], policy="Always"))
            p = await a.wait_pod("never", lambda p: phase(p) == "Failed")
            term = cstatus(p)["state"]["terminated"]
            assert term["exitCode"] == 3 and term["reason"] == "Error"
            assert term["startedAt"] and term["finishedAt"]
            assert condition(p, "Ready")["status"] == "False"
            p = await a.wait_pod("onfail", lambda p: phase(p) == "Succeeded")
            assert cstatus(p)["state"]["terminated"]["reason"] == "Completed"
            assert condition(p, "Ready")["reason"] == "PodCompleted"
            p = await a.wait_pod("always", lambda p: cstatus(p).get("restartCount", 0) >= 2 and
                                 cstatus(p)["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff")
            assert phase(p) == "Running"
            w = cstatus(p)["state"]["waiting"]
            assert w["message"].startswith("back-off ") and "restarting failed container=main" in w["message"]
            assert cstatus(p)["lastState"]["terminated"]["exitCode"] == 1
            evs = (await a.api.list(EVENTS, "default"))["items"]
            backoffs = [e for e in evs if e["reason"] == "BackOff" and e["involvedObject"]["name"] == "always"]
            assert backoffs and backoffs[0]["type"] == "Warning"
            for name in ("never", "onfail", "always"):
                await a.api.delete(PODS, name, "default")
            for name in ("never", "onfail", "always"):
                await a.wait_gone(name)
    run(main())


def test_a_finished_pod_loses_its_cgroup_but_keeps_its_status(server, tmp_path, monkeypatch):
    # SyncTerminatedPod: the cgroup of a pod that will never run again goes at once, not when
    # the pod object is deleted; the container (status, logs) stays until then
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            created = await a.create_pod(pod("done", ["exit", "0"], policy="Never"))
            uid = created["metadata"]["uid"]
            await a.wait_pod("done", lambda p: phase(p) == "Succeeded")
            await a.wait_for(lambda: uid in a.cgroups.removed, what="the finished pod's cgroup removed")
            assert a.fake.containers                                  # kept, for status and logs
            p = await a.get("done")
            assert cstatus(p)["state"]["terminated"]["reason"] == "Completed"
            await a.api.delete(PODS, "done", "default")
            await a.wait_gone("done")
            await a.wait_for(lambda: not a.fake.containers, what="the deleted pod's containers removed")
    run(main())


def test_oom_killed_and_restarted(server, tmp_path, monkeypatch):
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("oom", ["oom"], policy="Always",
                                   resources={"limits": {"memory": "64Mi", "cpu": "100m"}}))
            p = await a.wait_pod("oom", lambda p: cstatus(p).get("restartCount", 0) >= 1 and
                                 cstatus(p).get("lastState", {}).get("terminated"))
            last = cstatus(p)["lastState"]["terminated"]
            assert last["reason"] == "OOMKilled" and last["exitCode"] == 137
            assert p["status"]["qosClass"] == "Guaranteed"
            cfg = config_of(a.fake, "oom")
            assert cfg.resources.memory_limit_in_bytes == 64 * 2**20
            from nodeagent.resources import lowest_oom_score_adj
            assert cfg.resources.cpu_quota == 10_000
            assert cfg.resources.oom_score_adj == max(-997, lowest_oom_score_adj())
            await a.api.delete(PODS, "oom", "default", grace_period_seconds=0)
            await a.wait_gone("oom")
    run(main())


def test_env_from_api_and_config_errors(server, tmp_path, monkeypatch):
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.api.create(CONFIGMAPS, {"metadata": {"name": "cfg"}, "data": {"color": "blue",
                                                                                    "size": "L"}}, "default")
            await a.api.create(SECRETS, {"metadata": {"name": "sec"}, "data": {
                "pw": base64.b64encode(b"hunter2").decode()}}, "default")
            env = [{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-$(C_color)-$$(A)"},
                   {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                   {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                   {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                      "divisor": "1Mi"}}},
                   {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
                   {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k",
                                                                     "optional": True}}}]
            await a.create_pod(pod("env", ["sleep", "$(A)"], env=env,
                                   envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "C_"}],
                                   resources={"limits": {"memory": "32Mi"}}))
            await a.wait_pod("env", lambda p: phase(p) == "Running")
            cfg = config_of(a.fake, "env")
            envs = dict(cfg.envs)
            own = {k: v for k, v in envs.items() if not k.startswith("KUBERNETES_")}
            assert own == {"C_color": "blue", "C_size": "L", "A": "x", "B": "x-blue-$(A)",
                           "POD": "env", "NODE": NODE, "MEM": "32", "PW": "hunter2"}
            # the API server's own Service, as every pod sees it
            kube = await a.api.get(SERVICES, "kubernetes", "default")
            assert envs["KUBERNETES_SERVICE_HOST"] == kube["spec"]["clusterIP"]
            assert envs["KUBERNETES_SERVICE_PORT"] == "443"
            assert envs["KUBERNETES_PORT_443_TCP"] == f"tcp://{kube['spec']['clusterIP']}:443"
            assert cfg.command == ("sleep", "x")
            assert [k for k, _ in cfg.envs][:2] == ["C_color", "C_size"]

            await a.create_pod(pod("badref", ["sleep", "1"], env=[
                {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "absent"}}}]))
            p = await a.wait_pod("badref", lambda p: cstatus(p).get("state", {}).get("waiting", {})
                                 .get("reason") == "CreateContainerConfigError")
            assert cstatus(p)["state"]["waiting"]["message"] == \
                "couldn't find key absent in ConfigMap default/cfg"
            assert phase(p) == "Pending"

            await a.create_pod(pod("noimage", ["sleep", "1"], image="registry.example/missing:1"))
            # ErrImagePull, then (within the pull back-off) ImagePullBackOff
            p = await a.wait_pod("noimage", lambda p: cstatus(p).get("state", {}).get("waiting", {})
                                 .get("reason") == "ImagePullBackOff")
            # image_manager.go: the back-off's message carries the pull's error
            assert cstatus(p)["state"]["waiting"]["message"] == (
                'Back-off pulling image "registry.example/missing:1": ErrImagePull: '
                "registry.example/missing:1: manifest unknown")
            for _ in range(100):
                evs = (await a.api.list(EVENTS, "default"))["items"]
                failed = [e["message"] for e in evs if e["involvedObject"]["name"] == "noimage"
                          and e["reason"] == "Failed"]
                if "Error: ImagePullBackOff" in failed:
                    break
                await asyncio.sleep(0.05)
            assert any("manifest unknown" in m for m in failed), failed
            assert "Error: ErrImagePull" in failed and "Error: ImagePullBackOff" in failed
            await a.create_pod(pod("badname", ["sleep", "1"], image="Bad!Name"))
            await a.wait_pod("badname", lambda p: cstatus(p).get("state", {}).get("waiting", {})
                             .get("reason") == "InvalidImageName")
            await a.create_pod(pod("noprog", ["no-such-program"]))
            p = await a.wait_pod("noprog", lambda p: cstatus(p).get("state", {}).get("waiting", {})
                                 .get("reason") == "CreateContainerError")
            assert "executable file not found" in cstatus(p)["state"]["waiting"]["message"]
            for name in ("env", "badref", "noimage", "badname", "noprog"):
                await a.api.delete(PODS, name, "default", grace_period_seconds=0)
            for name in ("env", "badref", "noimage", "badname", "noprog"):
                await a.wait_gone(name)
    run(main())


def config_of(fake, pod_name):
    """The ContainerConfig of the newest container of that pod."""
    found = [cfg for cid, cfg in fake.configs.items() if cid in fake.containers and
             fake.sandbox_configs[fake.containers[cid].pod_sandbox_id].metadata.name == pod_name]
    return found[-1]


def test_init_containers_in_order_then_app(server, tmp_path, monkeypatch):
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            body = pod("init", ["sleep", "1d"])
            body["spec"]["initContainers"] = [
                {"name": "one", "image": "localhost/busybox:1", "command": ["exit", "0"]},
                {"name": "two", "image": "localhost/busybox:1", "command": ["exit", "0"]}]
            await a.create_pod(body)
            p = await a.wait_pod("init", lambda p: condition(p, "Ready").get("status") == "True")
            assert condition(p, "Initialized")["status"] == "True"
            for n in ("one", "two"):
                assert cstatus(p, n, init=True)["state"]["terminated"]["reason"] == "Completed"
            created = [c[1] for c in a.fake.calls if c[0] == "create_container"]
            assert created == ["one", "two", "main"]

            body = pod("initfail", ["sleep", "1d"], policy="Never")
            body["spec"]["initContainers"] = [
                {"name": "bad", "image": "localhost/busybox:1", "command": ["exit", "4"]}]
            await a.create_pod(body)
            p = await a.wait_pod("initfail", lambda p: phase(p) == "Failed")
            assert cstatus(p, "bad", init=True)["state"]["terminated"]["exitCode"] == 4
            assert cstatus(p)["state"]["waiting"]["reason"] == "PodInitializing"
            assert condition(p, "Initialized")["reason"] == "ContainersNotInitialized"
            for name in ("init", "initfail"):
                await a.api.delete(PODS, name, "default", grace_period_seconds=0)
                await a.wait_gone(name)
    run(main())


def test_force_delete_during_graceful_stop_kills_at_once(server, tmp_path, monkeypatch):
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("stubborn", ["ignore-term"], grace=60))
            await a.wait_pod("stubborn", lambda p: phase(p) == "Running")
            await a.api.delete(PODS, "stubborn", "default")
            await a.wait_for(lambda: any(c[0] == "stop_container" for c in a.fake.calls),
                             what="a graceful stop")
            await a.api.delete(PODS, "stubborn", "default", grace_period_seconds=0)
            await a.wait_gone("stubborn", timeout=10)
            await a.wait_for(lambda: not a.fake.containers, timeout=10, what="containers removed")
            timeouts = [c[2] for c in a.fake.calls if c[0] == "stop_container"]
            assert timeouts[0] == 60.0 and 0 in timeouts
    run(main())


def test_restart_recovery_adopts_containers(server, tmp_path, monkeypatch):
    async def main():
        fake = FakeRuntime()
        async with running_agent(server, fake, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("keep", ["sleep", "1d"]))
            await a.create_pod(pod("dies", ["sleep", "1d"], policy="Never"))
            p1 = await a.wait_pod("keep", lambda p: phase(p) == "Running")
            p2 = await a.wait_pod("dies", lambda p: phase(p) == "Running")
        # the agent is gone; its containers are not. One of them exits meanwhile.
        dies_id = cstatus(p2)["containerID"].split("://")[1]
        fake.exit(dies_id, 7)
        # a slow first listing (as under an emulator): every pod worker must wait for it, not
        # take "nothing known yet" for "nothing there" and start the pod afresh
        fake.list_delay = 0.3
        calls_before = len([c for c in fake.calls if c[0] == "create_container"])
        async with running_agent(server, fake, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            p = await a.wait_pod("dies", lambda p: phase(p) == "Failed")
            assert cstatus(p)["state"]["terminated"]["exitCode"] == 7
            assert cstatus(p)["containerID"] == cstatus(p2)["containerID"]
            p = await a.get("keep")
            assert cstatus(p)["containerID"] == cstatus(p1)["containerID"]
            assert cstatus(p)["restartCount"] == 0 and phase(p) == "Running"
            assert len([c for c in fake.calls if c[0] == "create_container"]) == calls_before
            for name in ("keep", "dies"):
                await a.api.delete(PODS, name, "default", grace_period_seconds=0)
                await a.wait_gone(name)
    run(main())


def test_orphans_of_pods_deleted_while_down_are_removed(server, tmp_path, monkeypatch):
    async def main():
        fake = FakeRuntime()
        async with running_agent(server, fake, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("orphan", ["sleep", "1d"]))
            await a.wait_pod("orphan", lambda p: phase(p) == "Running")
        # deleted while the agent is down: force, so the API forgets it at once
        from apiclient import ApiClient, load_kubeconfig
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api:
            await api.delete(PODS, "orphan", "default", grace_period_seconds=0)
        assert fake.sandboxes
        async with running_agent(server, fake, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.wait_for(lambda: not fake.sandboxes and not fake.containers,
                             what="the orphan's sandbox removed")
    run(main())


def test_orphans_get_their_pre_stop_and_grace_period_from_their_annotations(server, tmp_path,
                                                                             monkeypatch):
    # The pod is gone when the agent comes back: what its container needs to be stopped — the
    # preStop handler, the grace period — comes from what was stored with the container
    # (restoreSpecsFromContainerLabels), not from the pod.
    async def main():
        fake = FakeRuntime()
        hook = {"exec": {"command": ["sh", "-c", "echo bye > /hooks/done"]}}
        async with running_agent(server, fake, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("orphan2", ["sleep", "1d"], grace=7, lifecycle={"preStop": hook}))
            await a.wait_pod("orphan2", lambda p: phase(p) == "Running")
        [cid] = list(fake.containers)
        from apiclient import ApiClient, load_kubeconfig
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api:
            await api.delete(PODS, "orphan2", "default", grace_period_seconds=0)
        fake.calls.clear()
        async with running_agent(server, fake, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.wait_for(lambda: not fake.containers, what="the orphan's container removed")
        kills = [c for c in fake.calls if c[0] in ("exec_sync", "stop_container") and c[1] == cid]
        assert kills[:2] == [("exec_sync", cid, ("sh", "-c", "echo bye > /hooks/done")),
                             ("stop_container", cid, 7.0)]
    run(main())


def test_event_recorder_deduplicates_with_a_count(server):
    from apiclient import ApiClient, load_kubeconfig
    from nodeagent.events import WARNING, EventRecorder

    async def main():
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api:
            rec = EventRecorder(api, "kubelet", NODE)
            task = asyncio.create_task(rec.run())
            obj = {"kind": "Pod", "apiVersion": "v1",
                   "metadata": {"name": "dedup", "namespace": "default", "uid": "uid-dedup"}}
            for _ in range(3):
                rec.event(obj, WARNING, "BackOff", "Back-off restarting failed container c", "spec.containers{c}")
            rec.event(obj, WARNING, "BackOff", "another message")
            await rec.flush()
            task.cancel()
            evs = (await api.list(EVENTS, "default", field_selector="involvedObject.uid=uid-dedup"))["items"]
            counts = sorted((e["message"], e["count"]) for e in evs)
            assert counts == [("Back-off restarting failed container c", 3), ("another message", 1)]
            first = next(e for e in evs if e["count"] == 3)
            assert first["involvedObject"]["fieldPath"] == "spec.containers{c}"
            assert first["source"] == {"component": "kubelet", "host": NODE}
            assert first["firstTimestamp"] <= first["lastTimestamp"]
    run(main())


def test_readiness_and_liveness_probes(server, tmp_path, monkeypatch):
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            probe = {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 1}
            await a.create_pod(pod("probed", ["sleep", "1d"], readinessProbe=probe))
            p = await a.wait_pod("probed", lambda p: condition(p, "Ready").get("status") == "True")
            assert cstatus(p)["ready"]
            a.fake.healthy["main"] = False
            p = await a.wait_pod("probed", lambda p: condition(p, "Ready").get("status") == "False")
            assert not cstatus(p)["ready"] and "running" in cstatus(p)["state"]
            assert condition(p, "ContainersReady")["message"] == "containers with unready status: [main]"
            a.fake.healthy["main"] = True
            await a.wait_pod("probed", lambda p: condition(p, "Ready").get("status") == "True")

            await a.create_pod(pod("lively", ["sleep", "1d"], grace=5, livenessProbe=probe))
            p = await a.wait_pod("lively", lambda p: phase(p) == "Running")
            first = cstatus(p)["containerID"]
            a.fake.healthy["main"] = False
            p = await a.wait_pod("lively", lambda p: cstatus(p).get("restartCount", 0) >= 1)
            a.fake.healthy["main"] = True
            assert cstatus(p)["containerID"] != first
            assert cstatus(p)["lastState"]["terminated"]["exitCode"] == 143
            killing = ("Killing", "Container main failed liveness probe, will be restarted")
            for _ in range(100):        # the recorder writes a moment later
                evs = (await a.api.list(EVENTS, "default"))["items"]
                mine = [(e["reason"], e["message"]) for e in evs if e["involvedObject"]["name"] == "lively"]
                if killing in mine:
                    break
                await asyncio.sleep(0.05)
            assert killing in mine
            assert any(r == "Unhealthy" and m.startswith("Liveness probe failed") for r, m in mine)
            for name in ("probed", "lively"):
                await a.api.delete(PODS, name, "default", grace_period_seconds=0)
                await a.wait_gone(name)
    run(main())


def test_pod_deleted_while_its_sandbox_is_made_is_cleaned_up(server, tmp_path, monkeypatch):
    async def main():
        fake = FakeRuntime()
        fake.sandbox_delay = 1.0
        async with running_agent(server, fake, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("midway", ["sleep", "1d"]))
            await asyncio.wait_for(fake.sandbox_started.wait(), 10)
            await a.api.delete(PODS, "midway", "default")      # graceful, while RunPodSandbox runs
            await a.wait_gone("midway")
            assert not fake.sandboxes and not fake.containers
            assert not any(c[0] == "create_container" for c in fake.calls)
            assert [c[0] for c in fake.calls].count("remove_pod_sandbox") == 1
    run(main())


def test_sandbox_failure_is_reported_and_retried(server, tmp_path, monkeypatch):
    async def main():
        fake = FakeRuntime()
        fake.fail_sandbox = ('failed to setup network for sandbox "x": failed to allocate for range 0: '
                             "no IP addresses available in range set: 10.244.0.1-10.244.0.254")
        async with running_agent(server, fake, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("nonet", ["sleep", "1d"]))
            p = await a.wait_pod("nonet", lambda p: condition(p, "PodReadyToStartContainers")
                                 .get("status") == "False")
            assert cstatus(p)["state"]["waiting"]["reason"] == "ContainerCreating"
            async def failed_event():
                evs = (await a.api.list(EVENTS, "default"))["items"]
                return [e for e in evs if e["reason"] == "FailedCreatePodSandBox"
                        and e["involvedObject"]["name"] == "nonet"]
            for _ in range(100):
                if await failed_event():
                    break
                await asyncio.sleep(0.05)
            assert "no IP addresses available in range set: " in (await failed_event())[0]["message"]
            fake.fail_sandbox = None                           # the cause goes away: it recovers
            await a.wait_pod("nonet", lambda p: phase(p) == "Running", timeout=20)
            await a.api.delete(PODS, "nonet", "default", grace_period_seconds=0)
            await a.wait_gone("nonet")
    run(main())


def test_volumes_configmap_secret_downward_emptydir(server, tmp_path, monkeypatch):
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.api.create(CONFIGMAPS, {"metadata": {"name": "vcfg"}, "data": {
                "app.conf": "color=blue\n", "other": "x"}}, "default")
            await a.api.create(SECRETS, {"metadata": {"name": "vsec"}, "data": {
                "token": base64.b64encode(b"s3cret").decode()}}, "default")
            body = pod("vols", ["sleep", "1d"], volumeMounts=[
                {"name": "cfg", "mountPath": "/etc/app", "readOnly": True},
                {"name": "sec", "mountPath": "/var/run/sec"},
                {"name": "info", "mountPath": "/etc/podinfo"},
                {"name": "scratch", "mountPath": "/scratch", "subPath": "a/b"}])
            body["metadata"]["labels"] = {"app": "v"}
            body["spec"]["volumes"] = [
                {"name": "cfg", "configMap": {"name": "vcfg", "items": [{"key": "app.conf", "path": "app.conf"}]}},
                {"name": "sec", "secret": {"secretName": "vsec", "defaultMode": 0o400}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"name": "scratch", "emptyDir": {}}]
            await a.create_pod(body)
            await a.wait_pod("vols", lambda p: phase(p) == "Running")
            cfg = config_of(a.fake, "vols")
            m = {x.container_path: x for x in cfg.mounts}
            # API data is read-only even where the volumeMount does not say so (as the kubelet's)
            assert m["/etc/app"].readonly and m["/var/run/sec"].readonly and not m["/scratch"].readonly
            from pathlib import Path
            assert Path(m["/etc/app"].host_path, "app.conf").read_text() == "color=blue\n"
            assert not Path(m["/etc/app"].host_path, "other").exists()     # only the items asked for
            tok = Path(m["/var/run/sec"].host_path, "token")
            assert tok.read_bytes() == b"s3cret" and (tok.stat().st_mode & 0o777) == 0o400
            assert Path(m["/etc/podinfo"].host_path, "labels").read_text() == 'app="v"'
            assert Path(m["/etc/podinfo"].host_path, "name").read_text() == "vols"
            assert m["/scratch"].host_path.endswith("scratch/a/b") and Path(m["/scratch"].host_path).is_dir()
            pod_dir = Path(m["/scratch"].host_path).parents[4]

            # a ConfigMap that does not exist: FailedMount, and the containers wait
            bad = pod("novol", ["sleep", "1d"], volumeMounts=[{"name": "c", "mountPath": "/c"}])
            bad["spec"]["volumes"] = [{"name": "c", "configMap": {"name": "nope"}}]
            await a.create_pod(bad)
            p = await a.wait_pod("novol", lambda p: cstatus(p).get("state", {}).get("waiting"))
            assert cstatus(p)["state"]["waiting"]["reason"] == "ContainerCreating"
            for _ in range(100):
                evs = (await a.api.list(EVENTS, "default"))["items"]
                msgs = [e["message"] for e in evs if e["reason"] == "FailedMount"
                        and e["involvedObject"]["name"] == "novol"]
                if msgs:
                    break
                await asyncio.sleep(0.05)
            assert msgs == ['MountVolume.SetUp failed for volume "c" : configmap "nope" not found']
            for name in ("vols", "novol"):
                await a.api.delete(PODS, name, "default", grace_period_seconds=0)
                await a.wait_gone(name)
            await a.wait_for(lambda: not pod_dir.exists(), what="the pod's directory removed")
    run(main())


def test_soft_eviction_after_its_grace_period_with_the_max_pod_grace(server, tmp_path, monkeypatch):
    """A soft threshold every machine is under: MemoryPressure at once; after the 1 s grace period
    the pod is stopped with min(--eviction-max-pod-grace-period 5, its own 30) and reported
    Failed/Evicted with the kubelet's message, naming the container that uses more than it asked."""
    from nodeagent.eviction import parse_config
    monkeypatch.setattr("nodeagent.eviction.manager.MONITORING_INTERVAL", 0.1)
    cfg = parse_config(["memory.available<1Ki"], ["memory.available<1000Ti"],
                       ["memory.available=1s"], max_pod_grace=5)

    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch,
                                 eviction=cfg) as a:
            await a.create_pod(pod("hog", ["sleep", "1d"], grace=30,
                                   resources={"requests": {"memory": "1Mi"}}))
            p = await a.wait_pod("hog", lambda p: (p.get("status") or {}).get("reason") == "Evicted")
            assert phase(p) == "Failed"
            msg = p["status"]["message"]
            assert msg.startswith("The node was low on resource: memory. Threshold quantity: "
                                  "1000Ti, available: ") and msg.endswith(
                "Container main was using 2Mi, request is 1Mi, has larger consumption of memory. ")
            assert condition(p, "DisruptionTarget")["reason"] == "TerminationByKubelet"
            assert [c[2] for c in a.fake.calls if c[0] == "stop_container"][0] == 5.0
            node = await a.api.get(NODES, NODE)
            mp = next(c for c in node["status"]["conditions"] if c["type"] == "MemoryPressure")
            assert (mp["status"], mp["reason"]) == ("True", "KubeletHasInsufficientMemory")
    run(main())


def test_image_update_restarts_the_container(server, tmp_path, monkeypatch):
    """`kubectl set image pod/...` (the one container field a pod may change): the kubelet sees
    the container's definition changed, kills it and starts one from the new image — whatever
    the restart policy — and the status names the image each instance runs."""
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("img", ["sleep", "1d"], policy="Never", grace=3))
            p = await a.wait_pod("img", lambda p: "running" in cstatus(p).get("state", {}))
            first = cstatus(p)["containerID"]
            await a.api.patch(PODS, "img", {"spec": {"containers": [
                {"name": "main", "image": "localhost/busybox:2"}]}}, "default", type="strategic")
            p = await a.wait_pod("img", lambda p: "running" in cstatus(p).get("state", {}) and
                                 cstatus(p)["containerID"] != first)
            cs = cstatus(p)
            assert cs["image"] == "localhost/busybox:2" and cs["restartCount"] == 1
            assert phase(p) == "Running"
            created = [c for c in a.fake.containers.values() if c.metadata.name == "main"]
            assert sorted(c.image for c in created)[-1] == "localhost/busybox:2"
            for _ in range(100):
                evs = (await a.api.list(EVENTS, "default", field_selector="involvedObject.name=img"))["items"]
                if any(e["reason"] == "Killing" for e in evs):
                    break
                await asyncio.sleep(0.05)
            killing = [e for e in evs if e["reason"] == "Killing"]
            assert killing and killing[0]["message"] == "Container main definition changed, will be restarted"
            await a.api.delete(PODS, "img", "default", grace_period_seconds=0)
            await a.wait_gone("img")
    run(main())


def test_first_status_is_container_creating_before_the_sandbox_is_up(server, tmp_path, monkeypatch):
    """SyncPod writes the pod's status before it makes anything (generateAPIPodStatus, then the
    runtime's SyncPod): `kubectl get pods` shows ContainerCreating while the sandbox is made."""
    async def main():
        fake = FakeRuntime()
        fake.sandbox_delay = 2.0
        async with running_agent(server, fake, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("slow", ["sleep", "1d"]))
            p = await a.wait_pod("slow", lambda p: cstatus(p).get("state"), timeout=1.8)
            assert phase(p) == "Pending"
            assert cstatus(p)["state"] == {"waiting": {"reason": "ContainerCreating"}}
            assert condition(p, "PodReadyToStartContainers")["status"] == "False"
            await a.wait_pod("slow", lambda p: "running" in cstatus(p).get("state", {}))
            await a.api.delete(PODS, "slow", "default", grace_period_seconds=0)
            await a.wait_gone("slow")
    run(main())


def test_ephemeral_container_runs_once_and_reports_its_status(server, tmp_path, monkeypatch):
    """`kubectl debug -it POD --image=...` adds an ephemeral container (pods/ephemeralcontainers):
    the kubelet starts it in the pod's sandbox with its stdin and tty, reports it under
    ephemeralContainerStatuses, and never restarts it when it ends."""
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(pod("dbg", ["sleep", "1d"]))
            p = await a.wait_pod("dbg", lambda p: "running" in cstatus(p).get("state", {}))
            p["spec"]["ephemeralContainers"] = [{
                "name": "debugger", "image": "localhost/busybox:1", "command": ["sh"],
                "stdin": True, "tty": True, "targetContainerName": "main",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}]
            await a.api.update(PODS, p, "default", subresource="ephemeralcontainers")

            def eph(p):
                return ((p.get("status") or {}).get("ephemeralContainerStatuses") or [{}])[0]
            p = await a.wait_pod("dbg", lambda p: "running" in eph(p).get("state", {}))
            es = eph(p)
            assert es["name"] == "debugger" and es["containerID"].startswith("fakecri://")
            assert es["image"] == "localhost/busybox:1" and not es["ready"] and es["restartCount"] == 0
            cid = es["containerID"].split("://")[1]
            cfg = a.fake.configs[cid]
            assert cfg.stdin and cfg.tty and cfg.command == ("sh",)
            assert a.fake.containers[cid].pod_sandbox_id == a.fake.containers[
                cstatus(p)["containerID"].split("://")[1]].pod_sandbox_id
            a.fake.exit(cid, 0)
            p = await a.wait_pod("dbg", lambda p: "terminated" in eph(p).get("state", {}))
            await asyncio.sleep(1.0)       # a restart would have happened by now
            p = await a.get("dbg")
            assert "terminated" in eph(p)["state"] and phase(p) == "Running"
            assert [c.metadata.name for c in a.fake.containers.values()].count("debugger") == 1
            evs = (await a.api.list(EVENTS, "default", field_selector="involvedObject.name=dbg"))["items"]
            assert any(e["reason"] == "Started" and
                       e["involvedObject"].get("fieldPath") == "spec.ephemeralContainers{debugger}"
                       for e in evs)
            await a.api.delete(PODS, "dbg", "default", grace_period_seconds=0)
            await a.wait_gone("dbg")
    run(main())
