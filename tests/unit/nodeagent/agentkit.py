"""The agent against a real API server process and the fake runtime (fakecri.py), in one loop.

    async with running_agent(server, fake) as agent:
        await agent.create_pod(pod("web", ["sleep", "1d"]))
        p = await agent.wait_pod("web", lambda p: phase(p) == "Running")

The agent is `nodeagent.node.run_node_agent` itself, with the fake runtime and no cgroups; the
API server is `nodeagent server` (tests/apiserver.py). Back-off is shortened (0.3 s doubling to
1.2 s) so restart sequences take a second, not minutes — the doubling and the reasons are the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time

from apiclient import PODS, ApiClient, load_kubeconfig
from nodeagent import backoff as backoff_mod
from tests.unit.nodeagent.fakecri import FakeRuntime, NullCgroups

NODE = "node-a"


def pod(name: str, command: list[str], *, policy: str = "Always", grace: int | None = 30,
        **container) -> dict:
    spec = {"nodeName": NODE, "restartPolicy": policy,
            "containers": [{"name": "main", "image": "localhost/busybox:1", "command": command,
                            **container}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": spec}


def phase(p: dict) -> str | None:
    return (p.get("status") or {}).get("phase")


def cstatus(p: dict, name: str = "main", init: bool = False) -> dict:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next((c for c in (p.get("status") or {}).get(key) or [] if c["name"] == name), {})


def condition(p: dict, type_: str) -> dict:
    return next((c for c in (p.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


class Agent:
    def __init__(self, api: ApiClient, fake: FakeRuntime, cgroups: NullCgroups, task: asyncio.Task):
        self.api, self.fake, self.cgroups, self.task = api, fake, cgroups, task

    async def create_pod(self, body: dict) -> dict:
        return await self.api.create(PODS, body, "default")

    async def get(self, name: str) -> dict | None:
        from apiclient import NotFound
        try:
            return await self.api.get(PODS, name, "default")
        except NotFound:
            return None

    async def wait_pod(self, name: str, until, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.task.done():
                self.task.result()          # the agent died: show why
            last = await self.get(name)
            if last is not None and until(last):
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"pod {name} not there in {timeout} s; last status: "
                             f"{(last or {}).get('status')}")

    async def wait_gone(self, name: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.get(name) is None:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"pod {name} still in the API after {timeout} s")

    async def wait_for(self, cond, timeout: float = 15, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what} not met in {timeout} s")


@contextlib.asynccontextmanager
async def running_agent(server, fake: FakeRuntime | None = None, tmp_path=None, monkeypatch=None,
                        eviction=None):
    from nodeagent.node import AgentConfig, run_node_agent

    if monkeypatch is not None:
        for where in ("nodeagent.kuberuntime.manager.Backoff", "nodeagent.kuberuntime.images.Backoff"):
            monkeypatch.setattr(where, functools.partial(backoff_mod.Backoff, 0.3, 1.2))
    fake = fake or FakeRuntime()
    cgroups = NullCgroups()
    api = ApiClient(load_kubeconfig(server.kubeconfig))
    cfg = AgentConfig(data_dir=str(tmp_path), node_name=NODE, node_ip="127.0.0.1",
                      pod_cidr="10.244.0.0/24", kubelet_port=None, eviction=eviction)
    task = asyncio.create_task(run_node_agent(cfg, api, runtime=fake, images=fake, cm=cgroups))
    try:
        yield Agent(api, fake, cgroups, task)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await api.close()
