"""Label/field selectors, Table cells, defaults and validation: what users see, on plain dicts."""

import pytest

from controlplane.apiserver import defaults, tables, validation
from controlplane.apiserver.errors import APIError
from controlplane.apiserver.selectors import parse_field_selector, parse_label_selector


@pytest.mark.parametrize("sel,labels,want", [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),  # != also matches objects without the label
    ("tier in (fe, be)", {"tier": "be"}, True),
    ("tier notin (fe,be)", {"tier": "be"}, False),
    ("canary", {"canary": ""}, True),
    ("!canary", {"canary": "1"}, False),
    ("app=web,!canary,tier in (fe)", {"app": "web", "tier": "fe"}, True),
])
def test_label_selectors(sel, labels, want):
    assert parse_label_selector(sel).matches(labels) is want


def test_bad_selectors_are_400():
    with pytest.raises(APIError) as e:
        parse_label_selector("app in web")
    assert e.value.code == 400
    with pytest.raises(APIError) as e:
        parse_field_selector("spec.nope=1", "Pod", "v1")
    assert e.value.code == 400 and "spec.nope" in e.value.message


def test_field_selectors():
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Failed", "Pod", "v1").matches(pod)
    assert not parse_field_selector("spec.nodeName=", "Pod", "v1").matches(pod)
    ev = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p", "uid": "u"}}
    assert parse_field_selector("involvedObject.name=p,involvedObject.kind=Pod", "Event", "v1").matches(ev)


def test_human_duration_like_kubectl():
    assert [tables.human_duration(s) for s in (5, 119, 150, 600, 3600 * 5 + 60, 86400 * 3 + 3600, 86400 * 400)] == \
        ["5s", "119s", "2m30s", "10m", "5h1m", "3d1h", "400d"]


def test_pod_row_status_and_restarts():
    pod = {"metadata": {"name": "p", "creationTimestamp": "2020-01-01T00:00:00Z"},
           "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
           "status": {"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [
               {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
               {"name": "b", "ready": False, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    cells = tables.row("Pod", pod)["cells"]
    assert cells[:4] == ["p", "1/2", "CrashLoopBackOff", "3"]
    assert cells[5:7] == ["10.0.0.5", "n1"]
    pod["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    assert tables.row("Pod", pod)["cells"][2] == "Terminating"


def test_node_row():
    node = {"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.37.0", "osImage": "Debian"},
                       "addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]}}
    cells = tables.row("Node", node)["cells"]
    assert cells[1:3] == ["Ready,SchedulingDisabled", "control-plane"] and cells[4] == "v1.37.0"
    assert cells[5] == "192.0.2.10"


def test_image_pull_policy_defaults():
    assert [defaults.image_pull_policy(i) for i in ("nginx", "nginx:latest", "nginx:1.25",
                                                    "reg:5000/nginx", "nginx@sha256:abc")] == \
        ["Always", "Always", "IfNotPresent", "Always", "IfNotPresent"]


def test_validation_reports_every_field_path():
    pod = {"metadata": {"name": "ok", "namespace": "default"},
           "spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000}]},
                                   {"name": "a"}], "restartPolicy": "Sometimes"}}
    errs = {(e.field, e.type) for e in validation.validate("Pod", pod, True)}
    assert errs == {("spec.containers[0].ports[0].containerPort", "FieldValueInvalid"),
                    ("spec.containers[1].name", "FieldValueDuplicate"),
                    ("spec.containers[1].image", "FieldValueRequired"),
                    ("spec.restartPolicy", "FieldValueNotSupported")}
