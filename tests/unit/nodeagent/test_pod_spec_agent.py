"""Pod-spec features that need the whole kubelet side (pod workers, status manager, events) with
the fake runtime (fakecri.py) and a real API server: activeDeadlineSeconds and native sidecars."""

import asyncio

import pytest

from apiclient import EVENTS, PODS
from tests.apiserver import start_server
from tests.unit.nodeagent.agentkit import condition, cstatus, phase, pod, running_agent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("apiserver") / "data")
    yield srv
    srv.stop()


async def _events(a, name):
    evs = (await a.api.list(EVENTS, "default", field_selector=f"involvedObject.name={name}"))["items"]
    return [(e["type"], e["reason"], e["message"]) for e in evs]


def test_active_deadline_fails_the_pod_with_deadline_exceeded(server, tmp_path, monkeypatch):
    """active_deadline.go: once startTime + activeDeadlineSeconds has passed, the pod is Failed
    with reason DeadlineExceeded, its containers are killed, and a Normal event says why."""
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            body = pod("deadline", ["ignore-term"], grace=3)
            body["spec"]["activeDeadlineSeconds"] = 1
            await a.create_pod(body)
            p = await a.wait_pod("deadline", lambda p: phase(p) == "Failed", timeout=10)
            msg = "Pod was active on the node longer than the specified deadline"
            assert (p["status"]["reason"], p["status"]["message"]) == ("DeadlineExceeded", msg)
            assert "running" in cstatus(p)["state"]       # Failed at once, still in its grace period
            p = await a.wait_pod("deadline", lambda p: "terminated" in cstatus(p)["state"], timeout=10)
            assert p["status"]["reason"] == "DeadlineExceeded"
            assert condition(p, "Ready")["status"] == "False"
            for _ in range(100):
                if ("Normal", "DeadlineExceeded", msg) in await _events(a, "deadline"):
                    break
                await asyncio.sleep(0.05)
            assert ("Normal", "DeadlineExceeded", msg) in await _events(a, "deadline")
            await a.api.delete(PODS, "deadline", "default", grace_period_seconds=0)
            await a.wait_gone("deadline")
    asyncio.run(main())


def _with_sidecar(name, app_command, policy):
    body = pod(name, app_command, policy=policy, grace=0)
    body["spec"]["initContainers"] = [
        {"name": "side", "image": "localhost/busybox:1", "command": ["sleep", "1d"],
         "restartPolicy": "Always"},
        {"name": "one", "image": "localhost/busybox:1", "command": ["exit", "0"]}]
    return body


def test_sidecar_init_container_runs_beside_the_app_and_is_restarted(server, tmp_path, monkeypatch):
    """KEP-753 (GA 1.33): an init container with restartPolicy Always is started, and the next
    init container follows once it has *started* (not exited); it keeps running beside the app
    containers, is restarted whenever it exits whatever the pod's restartPolicy, and counts in
    Ready."""
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(_with_sidecar("sc", ["sleep", "1d"], "Never"))
            p = await a.wait_pod("sc", lambda p: condition(p, "Ready").get("status") == "True")
            assert [c[1] for c in a.fake.calls if c[0] == "create_container"] == ["side", "one", "main"]
            side = cstatus(p, "side", init=True)
            assert "running" in side["state"] and side["started"] is True and side["ready"] is True
            assert cstatus(p, "one", init=True)["state"]["terminated"]["reason"] == "Completed"
            assert condition(p, "Initialized")["status"] == "True" and phase(p) == "Running"
            cid = side["containerID"].split("://")[1]
            a.fake.exit(cid, 1)
            p = await a.wait_pod("sc", lambda p: cstatus(p, "side", init=True).get("restartCount") == 1
                                 and "running" in cstatus(p, "side", init=True)["state"])
            assert phase(p) == "Running" and "running" in cstatus(p)["state"]
            await a.api.delete(PODS, "sc", "default", grace_period_seconds=0)
            await a.wait_gone("sc")
    asyncio.run(main())


def test_pod_with_a_sidecar_completes_when_its_app_containers_do(server, tmp_path, monkeypatch):
    """A sidecar does not keep a restartPolicy Never pod alive: once every regular container has
    exited the kubelet stops the sidecars and the phase follows the regular containers."""
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            await a.create_pod(_with_sidecar("scdone", ["exit", "0"], "Never"))
            p = await a.wait_pod("scdone", lambda p: phase(p) == "Succeeded")
            assert "terminated" in cstatus(p, "side", init=True)["state"]
            assert cstatus(p)["state"]["terminated"]["exitCode"] == 0
            await a.api.delete(PODS, "scdone", "default", grace_period_seconds=0)
            await a.wait_gone("scdone")
    asyncio.run(main())


def test_a_sidecars_startup_probe_holds_back_what_follows(server, tmp_path, monkeypatch):
    """The next init container waits for the sidecar's startupProbe to succeed (started), and a
    sidecar's readinessProbe decides its `ready` and the pod's Ready."""
    async def main():
        async with running_agent(server, tmp_path=tmp_path, monkeypatch=monkeypatch) as a:
            probe = {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 1}
            a.fake.healthy["side"] = False
            body = _with_sidecar("scprobe", ["sleep", "1d"], "Always")
            body["spec"]["initContainers"][0].update(startupProbe=dict(probe, failureThreshold=60),
                                                     readinessProbe=probe)
            await a.create_pod(body)
            p = await a.wait_pod("scprobe", lambda p: "running" in cstatus(p, "side", init=True)
                                 .get("state", {}))
            await asyncio.sleep(1.5)                  # a probe period or so: still not started
            p = await a.get("scprobe")
            assert cstatus(p, "side", init=True)["started"] is False
            assert [c[1] for c in a.fake.calls if c[0] == "create_container"] == ["side"]
            a.fake.healthy["side"] = True
            p = await a.wait_pod("scprobe", lambda p: condition(p, "Ready").get("status") == "True")
            assert cstatus(p, "side", init=True)["ready"] is True
            a.fake.healthy["side"] = False
            p = await a.wait_pod("scprobe", lambda p: condition(p, "Ready").get("status") == "False")
            assert condition(p, "ContainersReady")["message"] == "containers with unready status: [side]"
            await a.api.delete(PODS, "scprobe", "default", grace_period_seconds=0)
            await a.wait_gone("scprobe")
    asyncio.run(main())
