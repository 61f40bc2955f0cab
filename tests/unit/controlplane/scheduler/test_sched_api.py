"""The scheduler process against a real API server, driven with the real kubectl: placement by
resources, taints, selectors and affinities, host ports, zones; what `kubectl describe` shows."""

import json
import re

POD = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {app}}}}}
spec:
  containers:
  - name: main
    image: busybox
    resources: {{requests: {{cpu: "{cpu}", memory: 64Mi}}}}
{extra}
"""


def pod_yaml(name, cpu="100m", app="x", extra=""):
    return POD.format(name=name, cpu=cpu, app=app, extra=extra)


def test_resources_and_unschedulable_message_in_describe(cluster, kubectl):
    cluster.node("small", cpu="1")
    cluster.node("medium", cpu="2")
    cluster.node("tainted", cpu="8", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    kubectl("apply", "-f", "-", input=pod_yaml("fits-medium", cpu="1500m"))
    assert cluster.bound("fits-medium") == "medium"
    kubectl("apply", "-f", "-", input=pod_yaml("too-big", cpu="3"))
    cond = cluster.scheduled_condition("too-big")
    want = ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. "
            "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
            "2 No preemption victims found for incoming pod..")
    assert (cond["reason"], cond["message"]) == ("Unschedulable", want)
    cluster.wait(lambda: ("Warning", "FailedScheduling", want) in cluster.events("too-big"), 10, "the event")
    out = kubectl("describe", "pod", "too-big")
    assert re.search(r"^  Warning\s+FailedScheduling\s+\S+\s+default-scheduler\s+" + re.escape(want) + "$",
                     out, re.M), out
    assert re.search(r"^  PodScheduled\s+False\s*$", out, re.M), out
    assert ("Normal", "Scheduled", "Successfully assigned default/fits-medium to medium") in \
        cluster.wait(lambda: cluster.events("fits-medium"), 10, "the Scheduled event")
    # a bigger node joins: the waiting pod is retried and lands there
    cluster.node("large", cpu="4")
    assert cluster.bound("too-big") == "large"


def test_taints_tolerations_selectors_affinity(cluster, kubectl):
    cluster.node("gpu", labels={"accel": "gpu"}, taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    cluster.node("ssd", labels={"disk": "ssd", "topology.kubernetes.io/zone": "z1"})
    cluster.node("hdd", labels={"disk": "hdd", "topology.kubernetes.io/zone": "z2"})
    kubectl("apply", "-f", "-", input=pod_yaml("tolerant", extra="""
  tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]
  nodeSelector: {accel: gpu}"""))
    kubectl("apply", "-f", "-", input=pod_yaml("on-ssd", app="db", extra="""
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{matchExpressions: [{key: disk, operator: In, values: [ssd]}]}]"""))
    kubectl("apply", "-f", "-", input=pod_yaml("near-db", extra="""
  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - {labelSelector: {matchLabels: {app: db}}, topologyKey: topology.kubernetes.io/zone}"""))
    kubectl("apply", "-f", "-", input=pod_yaml("away-from-db", extra="""
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - {labelSelector: {matchLabels: {app: db}}, topologyKey: kubernetes.io/hostname}
    nodeAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - {weight: 10, preference: {matchExpressions: [{key: disk, operator: Exists}]}}"""))
    assert cluster.bound("tolerant") == "gpu"
    assert cluster.bound("on-ssd") == "ssd"
    assert cluster.bound("near-db") == "ssd"
    assert cluster.bound("away-from-db") == "hdd"
    kubectl("apply", "-f", "-", input=pod_yaml("nowhere", extra="  nodeSelector: {accel: tpu}"))
    # each node gives the reason of the first filter that rejects it (taints before affinity)
    assert cluster.scheduled_condition("nowhere")["message"] == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't "
        "match Pod's node affinity/selector. preemption: 0/3 nodes are available: "
        "3 Preemption is not helpful for scheduling..")


def test_host_port_conflict(cluster, kubectl):
    cluster.node("a")
    cluster.node("b")
    port = "    ports: [{containerPort: 80, hostPort: 8080}]"
    for name in ("web1", "web2", "web3"):
        kubectl("apply", "-f", "-", input=pod_yaml(name).rstrip() + "\n" + port + "\n")
    assert {cluster.bound("web1"), cluster.bound("web2")} == {"a", "b"}
    assert cluster.scheduled_condition("web3")["message"].startswith(
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports.")
    kubectl("delete", "pod", "web1", "--grace-period=0", "--force")
    assert cluster.bound("web3") in ("a", "b")  # the freed port wakes it


def test_topology_spread_over_three_zones(cluster, kubectl):
    for i in range(6):
        cluster.node(f"n{i}", labels={"topology.kubernetes.io/zone": f"zone-{i % 3}"})
    spread = """
  topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule,
     labelSelector: {matchLabels: {app: spread}}}"""
    docs = "---".join(pod_yaml(f"s{i}", app="spread", extra=spread) for i in range(9))
    kubectl("apply", "-f", "-", input=docs)
    zones = [int(cluster.bound(f"s{i}")[1:]) % 3 for i in range(9)]
    assert sorted(zones.count(z) for z in range(3)) == [3, 3, 3]


def test_other_scheduler_name_and_gates_left_alone(cluster, kubectl):
    cluster.node("a")
    kubectl("apply", "-f", "-", input=pod_yaml("custom", extra="  schedulerName: my-scheduler"))
    kubectl("apply", "-f", "-", input=pod_yaml("gated", extra="  schedulingGates: [{name: example.com/hold}]"))
    cond = cluster.scheduled_condition("gated")
    assert cond["reason"] == "SchedulingGated"
    kubectl("patch", "pod", "gated", "--type=json", "-p", json.dumps([{"op": "remove", "path": "/spec/schedulingGates"}]))
    assert cluster.bound("gated") == "a"
    assert not cluster.pod("custom")["spec"].get("nodeName")
    assert cluster.events("custom") == []


def test_waiting_pods_retried_on_node_changes_and_terminated_pods(cluster, kubectl):
    cluster.node("cordoned", unschedulable=True)
    cluster.node("tainted", taints=[{"key": "maintenance", "value": "yes", "effect": "NoSchedule"}])
    kubectl("apply", "-f", "-", input=pod_yaml("waits-for-uncordon", cpu="3"))
    assert cluster.scheduled_condition("waits-for-uncordon")["message"].startswith(
        "0/2 nodes are available: 1 node(s) had untolerated taint {maintenance: yes}, "
        "1 node(s) were unschedulable.")
    kubectl("uncordon", "cordoned")
    assert cluster.bound("waits-for-uncordon") == "cordoned"
    kubectl("apply", "-f", "-", input=pod_yaml("waits-for-untaint", cpu="3"))
    cluster.scheduled_condition("waits-for-untaint")
    kubectl("taint", "node", "tainted", "maintenance=yes:NoSchedule-")
    assert cluster.bound("waits-for-untaint") == "tainted"
    # both nodes are full now; a pod that finishes (the kubelet reports Succeeded) frees its cpu
    kubectl("apply", "-f", "-", input=pod_yaml("waits-for-room", cpu="2"))
    assert "2 Insufficient cpu" in cluster.scheduled_condition("waits-for-room")["message"]
    cluster.call("PATCH", "/api/v1/namespaces/default/pods/waits-for-untaint/status",
                 {"status": {"phase": "Succeeded"}}, "application/merge-patch+json")
    assert cluster.bound("waits-for-room") == "tainted"


def test_unreadable_pod_gets_one_line_naming_the_field(cluster, kubectl):
    cluster.node("a")
    # upstream's API server answers 422 for this; where ours lets it through, the scheduler must
    # still say what is wrong instead of leaving the pod Pending without a word
    p = kubectl.run("apply", "-f", "-", input=pod_yaml("bad-quantity", cpu="lots"), check=False)
    if p.returncode != 0:
        assert "spec.containers[0].resources.requests" in p.stderr, p.stderr
    else:
        cond = cluster.scheduled_condition("bad-quantity")
        assert (cond["reason"], cond["message"]) == (
            "SchedulerError", "spec.containers[0].resources.requests.cpu: 'lots' is not a quantity")
    kubectl("apply", "-f", "-", input=pod_yaml("fine"))
    assert cluster.bound("fine") == "a"
