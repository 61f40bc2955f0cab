"""The kubelet's rules as pure functions: quantities and QoS, cgroup values, $(VAR) expansion,
back-off, DNS config, phase — each checked against the numbers upstream's code produces."""

import pytest

from nodeagent.backoff import Backoff
from nodeagent.envvars import expand
from nodeagent.kuberuntime.config import NodeFacts, dns_config, hostname, security_context
from nodeagent.kuberuntime.images import default_policy
from nodeagent.kuberuntime.manager import go_duration, should_restart
from nodeagent.podstatus import phase
from nodeagent.resources import (
    QuantityError, bytes_of, container_resources, millicpu, oom_score_adj, pod_limits, qos_class,
    quota, shares)


def pod(*containers, init=()):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"containers": list(containers), "initContainers": list(init)}}


def c(name="a", req=None, lim=None, **kw):
    return {"name": name, "resources": {"requests": req or {}, "limits": lim or {}}, **kw}


def test_quantities():
    assert millicpu("100m") == 100 and millicpu("1.5") == 1500 and millicpu(2) == 2000
    assert bytes_of("64Mi") == 64 * 2**20 and bytes_of("1G") == 10**9 and bytes_of("129e6") == 129 * 10**6
    assert bytes_of("1Ki") == 1024
    with pytest.raises(QuantityError, match="'12 apples'"):
        bytes_of("12 apples")


def test_qos_classes():
    assert qos_class(pod(c())) == "BestEffort"
    assert qos_class(pod(c(lim={"cpu": "1", "memory": "1Gi"}))) == "Guaranteed"   # requests default to limits
    assert qos_class(pod(c(req={"cpu": "1", "memory": "1Gi"}, lim={"cpu": "2", "memory": "1Gi"}))) == "Burstable"
    assert qos_class(pod(c(lim={"cpu": "1", "memory": "1Gi"}), c("b"))) == "Burstable"
    assert qos_class(pod(c(req={"memory": "1Mi"}))) == "Burstable"


def test_cgroup_values_match_the_kubelet():
    assert shares(None) == 2 and shares(0) == 2 and shares(1) == 2 and shares(250) == 256
    assert shares(1000) == 1024
    assert quota(None) is None and quota(250) == 25_000 and quota(1) == 1_000   # min quota period
    p = pod(c(lim={"cpu": "500m", "memory": "64Mi"}))
    r = container_resources(p, p["spec"]["containers"][0], 8 * 2**30)
    assert (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes, r.oom_score_adj) == \
        (512, 50_000, 100_000, 64 * 2**20, -997)
    assert container_resources(p, p["spec"]["containers"][0], 8 * 2**30, min_oom_score_adj=0).oom_score_adj == 0


def test_oom_score_adj_by_class():
    assert oom_score_adj(pod(c()), c(), 2**30) == 1000
    burst = c(req={"memory": str(2**29)})
    assert oom_score_adj(pod(burst), burst, 2**30) == 500
    big = c(req={"memory": str(2**30)})
    assert oom_score_adj(pod(big), big, 2**30) == 3         # never as low as Guaranteed
    tiny = c(req={"memory": "1"})
    assert oom_score_adj(pod(tiny), tiny, 2**30) == 999     # never as high as BestEffort


def test_pod_limits_need_every_container_limited():
    p = pod(c("a", lim={"cpu": "1", "memory": "100Mi"}), c("b", lim={"cpu": "500m", "memory": "50Mi"}))
    lim = pod_limits(p)
    assert (lim.cpu_shares, lim.cpu_quota, lim.memory_limit) == (1536, 150_000, 150 * 2**20)
    lim = pod_limits(pod(c("a", lim={"memory": "100Mi"}), c("b")))
    assert lim.memory_limit is None and lim.cpu_quota is None
    # an init container bigger than all app containers together sets the pod's ceiling
    lim = pod_limits(pod(c("a", lim={"cpu": "1", "memory": "100Mi"}),
                         init=[c("i", lim={"cpu": "1", "memory": "300Mi"})]))
    assert lim.memory_limit == 300 * 2**20
    assert pod_limits(pod(c())).cpu_shares == 2


def test_dollar_expansion():
    env = {"A": "x", "EMPTY": ""}.get
    assert expand("$(A)", env) == "x"
    assert expand("$(B)", env) == "$(B)"                     # undefined: left as written
    assert expand("$$(A)", env) == "$(A)"                    # escaped
    assert expand("a$$b", env) == "a$b"
    assert expand("$(EMPTY)-$(A", env) == "-$(A"             # unterminated: literal
    assert expand("$x$", env) == "$x$"


def test_backoff_doubles_to_the_cap_and_resets_after_ten_minutes():
    now = [1000.0]
    b = Backoff(clock=lambda: now[0])
    key = "uid/c"
    assert not b.in_backoff_since(key, now[0])
    delays = []
    for _ in range(7):
        b.next(key)
        delays.append(b.delay(key))
        now[0] += 1
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    assert b.in_backoff_since(key, now[0] - 1)
    assert not b.in_backoff_since(key, now[0] - 301)
    now[0] += 601                                            # quiet for more than 2 × 300 s
    b.next(key)
    assert b.delay(key) == 10
    assert go_duration(10) == "10s" and go_duration(80) == "1m20s" and go_duration(300) == "5m0s"


def test_restart_policy_and_pull_policy_defaults():
    assert should_restart("Always", 0) and should_restart("OnFailure", 1)
    assert not should_restart("OnFailure", 0) and not should_restart("Never", 1)
    assert default_policy("busybox") == "Always" and default_policy("busybox:latest") == "Always"
    assert default_policy("busybox:1.36") == "IfNotPresent"
    assert default_policy("localhost:5000/busybox") == "Always"
    assert default_policy("busybox@sha256:" + "a" * 64) == "IfNotPresent"


def test_dns_config_by_policy(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n")
    node = NodeFacts("n", "host", 2**30, resolv_conf=str(resolv), cluster_dns=("10.96.0.10",))
    p = {"metadata": {"name": "p", "namespace": "web"}, "spec": {}}
    d = dns_config(p, node)
    assert d.servers == ("10.96.0.10",)
    assert d.searches == ("web.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example")
    assert d.options == ("ndots:5",)
    p["spec"] = {"dnsPolicy": "Default"}
    assert dns_config(p, node).servers == ("192.0.2.53",)
    p["spec"] = {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "options": [
        {"name": "ndots", "value": "2"}, {"name": "rotate"}]}}
    d = dns_config(p, node)
    assert d.servers == ("1.1.1.1",) and d.options == ("ndots:2", "rotate")
    no_cluster_dns = NodeFacts("n", "host", 2**30, resolv_conf=str(resolv))
    p["spec"] = {}
    assert dns_config(p, no_cluster_dns).servers == ("192.0.2.53",)   # ClusterFirst falls back
    assert hostname({"metadata": {"name": "x" * 70}, "spec": {}}, node) == "x" * 63
    assert hostname({"metadata": {"name": "p"}, "spec": {"hostname": "h"}}, node) == "h"


def test_security_context_merge_and_run_as_non_root():
    from nodeagent.cri.api import Image
    from nodeagent.envvars import ConfigError
    p = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
         "spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                                      "supplementalGroups": [4000],
                                      "seccompProfile": {"type": "RuntimeDefault"}}}}
    sc = security_context(p, {"name": "c", "securityContext": {
        "runAsUser": 2000, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}, None)
    assert (sc.run_as_user, sc.run_as_group, sc.supplemental_groups) == (2000, 3000, (4000, 2000))
    assert sc.no_new_privs and sc.readonly_rootfs and sc.seccomp == "RuntimeDefault"
    assert sc.add_capabilities == ("NET_ADMIN",) and sc.drop_capabilities == ("ALL",)
    assert security_context({"metadata": {}, "spec": {}}, {"name": "c"}, None).seccomp == "Unconfined"
    root_image = Image("sha256:x", (), (), 0, uid=0, username="root")
    nonroot = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
               "spec": {"securityContext": {"runAsNonRoot": True}}}
    with pytest.raises(ConfigError, match="runAsNonRoot and image will run as root"):
        security_context(nonroot, {"name": "c"}, root_image)
    ok = security_context(nonroot, {"name": "c"}, Image("sha256:x", (), (), 0, uid=65534))
    assert ok.run_as_user is None


def _cs(name, state, last=None):
    return {"name": name, "state": state, "lastState": last or {}}


RUN = {"running": {}}
OK = {"terminated": {"exitCode": 0}}
BAD = {"terminated": {"exitCode": 2}}
WAIT = {"waiting": {"reason": "ContainerCreating"}}


@pytest.mark.parametrize("policy,statuses,inits,want", [
    ("Always", [_cs("a", RUN)], [], "Running"),
    ("Always", [_cs("a", WAIT)], [], "Pending"),
    ("Always", [_cs("a", {"waiting": {"reason": "CrashLoopBackOff"}}, BAD)], [], "Running"),
    ("Always", [_cs("a", OK)], [], "Running"),
    ("OnFailure", [_cs("a", OK)], [], "Succeeded"),
    ("OnFailure", [_cs("a", BAD)], [], "Running"),
    ("Never", [_cs("a", OK), _cs("b", BAD)], [], "Failed"),
    ("Never", [_cs("a", OK), _cs("b", RUN)], [], "Running"),
    ("Never", [_cs("a", WAIT)], [_cs("i", BAD)], "Failed"),
    ("Always", [_cs("a", WAIT)], [_cs("i", RUN)], "Pending"),
    ("Always", [_cs("a", RUN)], [_cs("i", OK)], "Running"),
])
def test_phase(policy, statuses, inits, want):
    assert phase({"spec": {"restartPolicy": policy}}, inits, statuses) == want


def test_service_environment_variables():
    from nodeagent.envvars import service_env
    svc = {"metadata": {"name": "my-db"}, "spec": {"clusterIP": "10.96.0.7", "ports": [
        {"name": "pg", "port": 5432, "protocol": "TCP"}, {"name": "metrics-x", "port": 9187}]}}
    headless = {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}
    env = service_env([svc, headless])
    assert env["MY_DB_SERVICE_HOST"] == "10.96.0.7" and env["MY_DB_SERVICE_PORT"] == "5432"
    assert env["MY_DB_SERVICE_PORT_PG"] == "5432" and env["MY_DB_SERVICE_PORT_METRICS_X"] == "9187"
    assert env["MY_DB_PORT"] == "tcp://10.96.0.7:5432"
    assert env["MY_DB_PORT_9187_TCP_ADDR"] == "10.96.0.7" and env["MY_DB_PORT_5432_TCP_PROTO"] == "tcp"
    assert not any(k.startswith("H_") for k in env)


def test_image_pull_secrets_become_auth_configs():
    import asyncio
    import base64
    import json

    from nodeagent.kuberuntime.images import pull_secrets

    def b64(d):
        return base64.b64encode(json.dumps(d).encode()).decode()
    secrets = {
        "new": {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64(
            {"auths": {"registry.example:5000": {"username": "u", "password": "p", "auth": "dTpw"}}})}},
        "old": {"type": "kubernetes.io/dockercfg", "data": {".dockercfg": b64(
            {"other.example": {"username": "o", "password": "q"}})}},
    }

    async def lookup(kind, ns, name):
        assert (kind, ns) == ("secrets", "team")
        return secrets.get(name)
    p = {"metadata": {"namespace": "team"},
         "spec": {"imagePullSecrets": [{"name": "new"}, {"name": "missing"}, {"name": "old"}]}}
    auths = asyncio.run(pull_secrets(p, lookup))
    assert [(a.server, a.username, a.password, a.auth) for a in auths] == [
        ("registry.example:5000", "u", "p", "dTpw"), ("other.example", "o", "q", "")]


def test_status_keeps_a_terminated_container_the_runtime_no_longer_has():
    """convertToAPIContainerStatuses: a container whose runtime record is gone (removed with the
    finished pod's sandbox, or by `nodeagent down` before a restart) keeps its old terminated
    status — a Completed Job pod must not turn back into ContainerCreating — and a waiting one
    keeps its restart count and last state."""
    from nodeagent.kuberuntime.manager import PodRuntimeState, SyncResult
    from nodeagent.podstatus import generate
    term = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-01-01T00:00:00Z",
                           "finishedAt": "2026-01-01T00:00:01Z", "containerID": "x://1"}}
    old_cs = {"name": "c", "image": "img", "imageID": "sha256:ab", "containerID": "x://1", "ready": False,
              "restartCount": 0, "started": False, "state": term, "lastState": {}}
    pod = {"metadata": {"name": "p", "namespace": "d", "uid": "u"},
           "spec": {"nodeName": "n", "restartPolicy": "Never", "containers": [{"name": "c", "image": "img"}]},
           "status": {"phase": "Succeeded", "containerStatuses": [old_cs]}}
    st = generate(pod, PodRuntimeState("u"), SyncResult(), host_ip="1.2.3.4", runtime_name="x", now=0)
    assert st["phase"] == "Succeeded" and st["containerStatuses"] == [old_cs]
    # a container restarted before (Always) and now gone: waiting, but its count and last exit stay
    last = {"terminated": {**term["terminated"], "exitCode": 1, "reason": "Error"}}
    pod["spec"]["restartPolicy"] = "Always"
    pod["status"] = {"phase": "Running", "containerStatuses": [
        {**old_cs, "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}}, "restartCount": 3,
         "lastState": last}]}
    cs = generate(pod, PodRuntimeState("u"), SyncResult(), host_ip="1.2.3.4", runtime_name="x",
                  now=0)["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert cs["restartCount"] == 3 and cs["lastState"] == last


def test_conditions_in_the_kubelets_order():
    """generateAPIPodStatus: others' conditions first, then PodReadyToStartContainers, Initialized,
    Ready, ContainersReady, and the scheduler's PodScheduled last — the order `kubectl describe`
    and `-o yaml` show."""
    from nodeagent.kuberuntime.manager import PodRuntimeState, SyncResult
    from nodeagent.podstatus import generate
    sched = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
             "lastTransitionTime": "2026-01-01T00:00:00Z"}
    gate = {"type": "example.com/gate", "status": "False"}
    pod = {"metadata": {"name": "p", "namespace": "d", "uid": "u"},
           "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "img"}]},
           "status": {"phase": "Pending", "conditions": [sched, gate]}}
    st = generate(pod, PodRuntimeState("u"), SyncResult(), host_ip="1.2.3.4", runtime_name="x", now=0)
    assert [c["type"] for c in st["conditions"]] == [
        "example.com/gate", "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
        "PodScheduled"]
    assert st["conditions"][-1] == sched
