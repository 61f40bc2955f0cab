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
            body = pod("deadline", ["sleep", "1d"], grace=0)
            body["spec"]["activeDeadlineSeconds"] = 1
            await a.create_pod(body)
            p = await a.wait_pod("deadline", lambda p: phase(p) == "Failed", timeout=10)
            msg = "Pod was active on the node longer than the specified deadline"
            assert (p["status"]["reason"], p["status"]["message"]) == ("DeadlineExceeded", msg)
            assert "terminated" in cstatus(p)["state"]
            assert condition(p, "Ready")["status"] == "False"
            for _ in range(100):
                if ("Normal", "DeadlineExceeded", msg) in await _events(a, "deadline"):
                    break
                await asyncio.sleep(0.05)
            assert ("Normal", "DeadlineExceeded", msg) in await _events(a, "deadline")
            await a.api.delete(PODS, "deadline", "default", grace_period_seconds=0)
            await a.wait_gone("deadline")
    asyncio.run(main())
