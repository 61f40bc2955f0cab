"""apiclient against a real API server: typed errors, CAS retry, watch, informer with 410 re-list."""

import asyncio

import pytest

from apiclient import (CONFIGMAPS, PODS, AlreadyExists, ApiClient, Conflict, Expired, Informer,
                       Invalid, NotFound, Unauthorized, load_kubeconfig)


def cm(name, **data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def run(coro):
    return asyncio.run(coro)


def test_crud_and_typed_errors(server):
    async def main():
        cfg = load_kubeconfig(server.kubeconfig)
        async with ApiClient(cfg) as api:
            created = await api.create(CONFIGMAPS, cm("a", k="1"), "default")
            with pytest.raises(AlreadyExists):
                await api.create(CONFIGMAPS, cm("a"), "default")
            with pytest.raises(NotFound):
                await api.get(CONFIGMAPS, "missing", "default")
            with pytest.raises(Invalid) as e:
                await api.create(PODS, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}, "default")
            assert e.value.causes[0]["field"] == "spec.containers[0].image"
            stale = dict(created)
            await api.patch(CONFIGMAPS, "a", {"data": {"k": "2"}}, "default")
            with pytest.raises(Conflict):
                await api.update(CONFIGMAPS, {**stale, "data": {"k": "3"}}, "default")

            def bump(obj):
                obj["data"]["k"] = str(int(obj["data"]["k"]) + 1)
                return obj
            results = await asyncio.gather(*(api.update_with_retry(CONFIGMAPS, "a", bump, "default")
                                             for _ in range(5)))
            assert len(results) == 5
            assert (await api.get(CONFIGMAPS, "a", "default"))["data"]["k"] == "7"  # no lost update
            items, rv = await api.list_all(CONFIGMAPS, "default", page=1)
            assert "a" in [i["metadata"]["name"] for i in items] and int(rv) > 0
            await api.delete(CONFIGMAPS, "a", "default")
        from dataclasses import replace
        async with ApiClient(replace(cfg, token="wrong")) as api:
            with pytest.raises(Unauthorized):
                await api.list(CONFIGMAPS, "default")
    run(main())


def test_watch_expired_raises(server):
    async def main():
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api:
            _, rv = await api.list_all(CONFIGMAPS, "default")
            for i in range(25):  # beyond the 20-event window
                await api.create(CONFIGMAPS, cm(f"x{i}"), "default")
            with pytest.raises(Expired):
                async for _ in api.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=2):
                    pass
            for i in range(25):
                await api.delete(CONFIGMAPS, f"x{i}", "default")
    run(main())


@pytest.mark.parametrize("watch_list", [True, False])
def test_informer_follows_changes_and_relists_after_410(server, watch_list):
    async def main():
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api, \
                ApiClient(load_kubeconfig(server.kubeconfig)) as writer:
            seen = []
            inf = Informer(api, CONFIGMAPS, "default", label_selector="inf=1", watch_timeout=1,
                           watch_list=watch_list)
            inf.add_handler(lambda t, o, old: seen.append((t, o["metadata"]["name"])))
            task = asyncio.create_task(inf.run())
            await asyncio.wait_for(inf.wait_synced(), 10)
            obj = cm("i1")
            obj["metadata"]["labels"] = {"inf": "1"}
            await writer.create(CONFIGMAPS, obj, "default")
            for _ in range(100):
                if inf.get("i1", "default"):
                    break
                await asyncio.sleep(0.05)
            assert ("ADDED", "i1") in seen
            # Rewind the informer's position out of the server's window: its next watch (the
            # current one ends within watch_timeout) gets 410, and it re-lists and carries on.
            inf.resource_version = "1"
            for _ in range(100):
                if inf.relists:
                    break
                await asyncio.sleep(0.05)
            await writer.delete(CONFIGMAPS, "i1", "default")
            for _ in range(200):
                if ("DELETED", "i1") in seen:
                    break
                await asyncio.sleep(0.05)
            task.cancel()
            assert ("DELETED", "i1") in seen and inf.get("i1", "default") is None
            assert inf.relists >= 1
    run(main())


def test_concurrent_service_creates_get_distinct_cluster_ips_and_put_keeps_them(server):
    from apiclient import SERVICES

    def svc(name):
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80}]}}

    async def main():
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api:
            made = await asyncio.gather(*(api.create(SERVICES, svc(f"s{i}"), "default") for i in range(20)))
            ips = [s["spec"]["clusterIP"] for s in made]
            ports = [s["spec"]["ports"][0]["nodePort"] for s in made]
            assert len(set(ips)) == 20 and len(set(ports)) == 20
            assert all(30000 <= p <= 32767 for p in ports)
            # A PUT of the manifest without the allocated values keeps them (not "immutable").
            cur = await api.get(SERVICES, "s0", "default")
            body = svc("s0")
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            body["spec"]["selector"] = {"app": "changed"}
            new = await api.update(SERVICES, body, "default")
            assert new["spec"]["clusterIP"] == ips[0] and new["spec"]["ports"][0]["nodePort"] == ports[0]
            for i in range(20):
                await api.delete(SERVICES, f"s{i}", "default")
    run(main())


def test_node_agent_style_watch_sees_pods_enter_and_leave_its_field_selector(server):
    """A node agent watches spec.nodeName=<me>: a pod appears (ADDED) when it is bound, not when
    created; a label-selected watch sees an object that stops matching as DELETED."""
    from apiclient import ApiClient as C

    async def main():
        async with C(load_kubeconfig(server.kubeconfig)) as api, C(load_kubeconfig(server.kubeconfig)) as w:
            _, rv = await api.list_all(PODS, "default")
            events = []

            async def watch(**sel):
                async for ev in w.watch(PODS, "default", resource_version=rv, timeout_seconds=3, **sel):
                    if ev.type != "BOOKMARK":
                        events.append((sel and next(iter(sel.values())), ev.type, ev.object["metadata"]["name"]))

            tasks = [asyncio.create_task(watch(field_selector="spec.nodeName=node-x")),
                     asyncio.create_task(watch(label_selector="team=a"))]
            await asyncio.sleep(0.3)
            pod = {"metadata": {"name": "np", "labels": {"team": "a"}},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
            await api.create(PODS, pod, "default")
            await api.create(PODS, {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "np"},
                                    "target": {"kind": "Node", "name": "node-x"}}, "default",
                             subresource="binding", name="np")
            await api.patch(PODS, "np", {"metadata": {"labels": {"team": "b"}}}, "default")
            await api.delete(PODS, "np", "default", grace_period_seconds=0)
            await asyncio.gather(*tasks)
            node = [(t, n) for s, t, n in events if s == "spec.nodeName=node-x"]
            label = [(t, n) for s, t, n in events if s == "team=a"]
            assert node == [("ADDED", "np"), ("MODIFIED", "np"), ("DELETED", "np")]
            assert label == [("ADDED", "np"), ("MODIFIED", "np"), ("DELETED", "np")]
    run(main())
