"""Pod-spec rules of the kubelet checked as pure functions, against what upstream's code does
(kubelet_pods.go, kuberuntime_sandbox.go, sysctl/, images/): the environment, /etc/hosts, the
hostname, sysctl admission, volume ownership."""

import asyncio

from nodeagent.envvars import environment


def run(coro):
    return asyncio.run(coro)


def _pod(**spec):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", **spec},
            "status": {}}


async def _no_objects(kind, ns, name):
    return None


def test_field_refs_to_ips_come_from_the_sandbox_and_node_not_the_stale_status():
    """The kubelet gives a container its pod's IPs from the sandbox it is started in, and the
    node's IPs (podFieldSelectorRuntimeValue): the pod's status has neither yet at first start."""
    c = {"name": "c", "env": [
        {"name": "PODIP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "PODIPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
        {"name": "HOSTIP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "HOSTIPS", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}},
        {"name": "X", "value": "$(PODIP)/$(HOSTIP)"}]}
    env = dict(run(environment(_pod(containers=[c]), c, _no_objects, {}, [],
                               pod_ips=("10.244.0.7", "fd00::7"), host_ips=("192.168.1.5",))))
    assert env["PODIP"] == "10.244.0.7" and env["PODIPS"] == "10.244.0.7,fd00::7"
    assert env["HOSTIP"] == "192.168.1.5" and env["HOSTIPS"] == "192.168.1.5"
    assert env["X"] == "10.244.0.7/192.168.1.5"


def test_env_from_passes_every_key_as_the_1_37_kubelet_does():
    """RelaxedEnvironmentVariableValidation is GA (1.34): makeEnvironmentVariables no longer skips
    keys that are not C identifiers, and no InvalidEnvironmentVariableNames event is recorded."""
    async def lookup(kind, ns, name):
        return {"data": {"1bad": "1", "a.b": "2", "ok": "3"}} if name == "cm" else None
    c = {"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}},
                                  {"configMapRef": {"name": "cm"}, "prefix": "P_"}]}
    env = dict(run(environment(_pod(containers=[c]), c, lookup, {}, [])))
    assert {k: env[k] for k in ("1bad", "a.b", "ok", "P_1bad", "P_a.b", "P_ok")} == {
        "1bad": "1", "a.b": "2", "ok": "3", "P_1bad": "1", "P_a.b": "2", "P_ok": "3"}
