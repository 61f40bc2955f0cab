"""The node's pod admission (nodeagent/admission.py): the NodePorts check, as the scheduler's
HostPortInfo.CheckConflict decides it."""

from nodeagent.admission import admit


def pod(*ports: dict) -> dict:
    return {"spec": {"containers": [{"name": "c", "ports": list(ports)}]}}


def test_same_host_port_is_rejected_with_the_kubelets_reason_and_message():
    r = admit(pod({"containerPort": 80, "hostPort": 8080}), [pod({"containerPort": 81, "hostPort": 8080})])
    assert r is not None and r.reason == "NodePorts"
    assert r.status("BestEffort") == {
        "phase": "Failed", "reason": "NodePorts", "qosClass": "BestEffort",
        "message": "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports "
                   "for the requested pod ports"}


def test_protocol_and_host_ip_decide_what_conflicts():
    tcp = {"containerPort": 80, "hostPort": 8080}
    udp = {"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}
    on_a = {"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}
    on_b = {"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.2"}
    assert admit(pod(udp), [pod(tcp)]) is None                 # another protocol
    assert admit(pod(on_a), [pod(on_b)]) is None               # another address
    assert admit(pod(on_a), [pod(tcp)]) is not None            # 0.0.0.0 takes every address
    assert admit(pod(tcp), [pod(on_b)]) is not None
    assert admit(pod({"containerPort": 80}), [pod({"containerPort": 80})]) is None   # no hostPort
    assert admit(pod(tcp), []) is None
