"""Cascading deletion as upstream: background (default), orphan and foreground propagation by
ownerReferences and blockOwnerDeletion, across kinds; a bad propagationPolicy is a 422."""

import asyncio
import json

import pytest

from apiclient import ApiClient, Invalid, load_kubeconfig
from tests.unit.controlplane.controllers.conftest import get_json, items, wait_until


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=replicaset,deployment,garbagecollector")


def names(kubectl, kind, selector):
    return sorted(o["metadata"]["name"] for o in items(kubectl, kind, "-l", selector))


def owned_cm(name, owner):
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "ownerReferences": [
        {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
         "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}]}})


def test_background_deletes_dependents_across_kinds(kubectl):
    kubectl("create", "deployment", "bg", "--image=busybox", "--replicas=2")
    wait_until(lambda: len(names(kubectl, "pods", "app=bg")) == 2, what="2 pods")
    d = get_json(kubectl, "get", "deploy", "bg")
    kubectl("apply", "-f", "-", input=owned_cm("bg-config", d))
    kubectl("delete", "deployment", "bg")
    wait_until(lambda: not names(kubectl, "rs", "app=bg") and not names(kubectl, "pods", "app=bg"),
               what="ReplicaSet and pods collected")
    wait_until(lambda: kubectl.run("get", "cm", "bg-config", check=False).returncode == 1,
               what="the owned ConfigMap collected")


def test_orphan_keeps_dependents_and_drops_references(kubectl):
    kubectl("create", "deployment", "orph", "--image=busybox", "--replicas=2")
    wait_until(lambda: len(names(kubectl, "pods", "app=orph")) == 2, what="2 pods")
    pods_before = names(kubectl, "pods", "app=orph")
    kubectl("delete", "deployment", "orph", "--cascade=orphan")  # waits until it is gone
    assert kubectl.run("get", "deploy", "orph", check=False).returncode == 1
    rss = items(kubectl, "rs", "-l", "app=orph")
    assert len(rss) == 1 and not rss[0]["metadata"].get("ownerReferences")
    assert names(kubectl, "pods", "app=orph") == pods_before  # still owned by the ReplicaSet


def test_foreground_waits_for_blocking_dependents(kubectl):
    kubectl("create", "deployment", "fg", "--image=busybox", "--replicas=2")
    pods = wait_until(lambda: len(n := names(kubectl, "pods", "app=fg")) == 2 and n, what="2 pods")
    kubectl("patch", "pod", pods[0], "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    kubectl("delete", "deployment", "fg", "--cascade=foreground", "--wait=false")
    # the Deployment waits (deletionTimestamp + foregroundDeletion) while its ReplicaSet waits for the held pod
    wait_until(lambda: names(kubectl, "pods", "app=fg") == [pods[0]], what="the unheld pod deleted")
    d = get_json(kubectl, "get", "deploy", "fg")
    assert d["metadata"]["deletionTimestamp"] and "foregroundDeletion" in d["metadata"]["finalizers"]
    rs = items(kubectl, "rs", "-l", "app=fg")[0]
    assert rs["metadata"]["deletionTimestamp"] and "foregroundDeletion" in rs["metadata"]["finalizers"]
    kubectl("patch", "pod", pods[0], "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    kubectl("wait", "--for=delete", "deployment/fg", "--timeout=30s")
    assert not names(kubectl, "rs", "app=fg") and not names(kubectl, "pods", "app=fg")


def test_dangling_reference_collected_and_live_owner_kept(kubectl):
    kubectl("create", "configmap", "owner")
    owner = get_json(kubectl, "get", "cm", "owner")
    kubectl("apply", "-f", "-", input=owned_cm("kept", owner))
    ghost = {**owner, "metadata": {**owner["metadata"], "name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"}}
    kubectl("apply", "-f", "-", input=owned_cm("orphaned", ghost))
    wait_until(lambda: kubectl.run("get", "cm", "orphaned", check=False).returncode == 1,
               what="the dependent of a missing owner collected")
    assert kubectl.run("get", "cm", "kept", check=False).returncode == 0


def test_bad_propagation_policy_is_422(server, kubectl):
    kubectl("create", "configmap", "pp")

    async def main():
        async with ApiClient(load_kubeconfig(server.kubeconfig)) as api:
            with pytest.raises(Invalid) as e:
                await api.request("DELETE", "/api/v1/namespaces/default/configmaps/pp",
                                  {"propagationPolicy": "Sideways"})
            return e.value
    err = asyncio.run(main())
    assert err.causes[0]["field"] == "propagationPolicy"
    assert 'Unsupported value: "Sideways"' in err.message
    assert kubectl.run("get", "cm", "pp", check=False).returncode == 0
