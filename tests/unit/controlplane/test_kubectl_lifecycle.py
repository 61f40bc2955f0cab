"""kubectl apply/patch/label/delete/wait/describe/explain and dry-run against our server."""

import json

from tests.waits import Lines


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  containers:
  - name: main
    image: {image}
"""


def test_apply_created_unchanged_configured(kubectl):
    m = POD.format(name="ap", image="nginx:1.25")
    assert "pod/ap created" in kubectl("apply", "-f", "-", input=m)
    assert "pod/ap unchanged" in kubectl("apply", "-f", "-", input=m)
    assert "pod/ap configured" in kubectl("apply", "-f", "-", input=m.replace("1.25", "1.26"))
    pod = json.loads(kubectl("get", "pod", "ap", "-o", "json"))
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert "kubectl.kubernetes.io/last-applied-configuration" in pod["metadata"]["annotations"]
    kubectl("delete", "pod", "ap")


def test_patch_types_label_annotate(kubectl):
    kubectl("apply", "-f", "-", input=POD.format(name="pt", image="busybox:1.36"))
    kubectl("patch", "pod", "pt", "-p", '{"metadata":{"labels":{"tier":"fe"}}}')  # strategic
    kubectl("patch", "pod", "pt", "--type=merge", "-p", '{"metadata":{"annotations":{"a":"1"}}}')
    kubectl("patch", "pod", "pt", "--type=json", "-p",
            '[{"op":"replace","path":"/spec/containers/0/image","value":"busybox:1.37"}]')
    kubectl("label", "pod", "pt", "owner=me")
    kubectl("annotate", "pod", "pt", "note=hello")
    pod = json.loads(kubectl("get", "pod", "pt", "-o", "json"))
    assert pod["metadata"]["labels"] == {"app": "pt", "tier": "fe", "owner": "me"}
    annotations = pod["metadata"]["annotations"]
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration")
    assert annotations == {"a": "1", "note": "hello"}
    assert pod["spec"]["containers"][0]["image"] == "busybox:1.37"
    kubectl("patch", "pod", "pt", "--subresource=status", "--type=merge", "-p",
            '{"status":{"phase":"Running"}}')
    assert kubectl("get", "pod", "pt", "-o", "jsonpath={.status.phase}") == "Running"
    p = kubectl.run("patch", "pod", "pt", "-p", '{"spec":{"restartPolicy":"Never"}}', check=False)
    assert p.returncode != 0 and "Forbidden" in p.stderr  # pod specs are (mostly) immutable
    kubectl("delete", "pod", "pt")


def test_strategic_merge_on_deployment_containers(kubectl):
    kubectl("create", "deployment", "smp", "--image=nginx:1.25")
    kubectl("patch", "deploy", "smp", "-p", json.dumps({"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "env": [{"name": "A", "value": "1"}]},
        {"name": "side", "image": "busybox"}]}}}}))
    cs = json.loads(kubectl("get", "deploy", "smp", "-o", "json"))["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in cs] == [("nginx", "nginx:1.25"), ("side", "busybox")]
    assert cs[0]["env"] == [{"name": "A", "value": "1"}]
    kubectl("patch", "deploy", "smp", "-p", json.dumps({"spec": {"template": {"spec": {"containers": [
        {"name": "side", "$patch": "delete"}]}}}}))
    cs = json.loads(kubectl("get", "deploy", "smp", "-o", "json"))["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["nginx"]
    kubectl("delete", "deploy", "smp")


def test_unknown_field_and_bad_value_are_refused_with_the_path(kubectl):
    bad = POD.format(name="bad", image="busybox").replace("    image: busybox", "    image: busybox\n    imagePulPolicy: Always")
    p = kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert p.returncode != 0 and 'unknown field "spec.containers[0].imagePulPolicy"' in p.stderr
    bad = POD.format(name="bad", image="busybox") + "  restartPolicy: Sometimes\n"
    p = kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert p.returncode != 0 and "spec.restartPolicy" in p.stderr and "Unsupported value" in p.stderr
    bad = POD.format(name="bad", image="busybox") + "  terminationGracePeriodSeconds: soon\n"
    p = kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert p.returncode != 0 and "spec.terminationGracePeriodSeconds" in p.stderr
    nameless = "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: a}]}\n"
    p = kubectl.run("create", "-f", "-", input=nameless, check=False)
    assert "metadata.name" in p.stderr and "spec.containers[0].image: Required value" in p.stderr
    assert kubectl.run("get", "pod", "bad", check=False).returncode == 1  # nothing stored


def test_dry_run_server_stores_nothing(kubectl):
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=POD.format(name="dry", image="busybox"))
    assert "created (server dry run)" in out
    assert kubectl.run("get", "pod", "dry", check=False).returncode == 1
    kubectl("create", "deployment", "dryd", "--image=nginx", "--dry-run=server")
    assert kubectl.run("get", "deploy", "dryd", check=False).returncode == 1


def test_delete_blocks_while_a_finalizer_remains(kubectl):
    m = POD.format(name="fin", image="busybox").replace("  labels:", "  finalizers: [example.com/hold]\n  labels:")
    kubectl("apply", "-f", "-", input=m)
    p = kubectl.run("delete", "pod", "fin", "--timeout=2s", check=False)
    assert p.returncode != 0  # timed out waiting: the object is still there
    pod = json.loads(kubectl("get", "pod", "fin", "-o", "json"))
    assert pod["metadata"]["deletionTimestamp"]
    # -v=6 logs each request once answered: the watch's line means it is in place.
    waiter = kubectl.popen("wait", "--for=delete", "pod/fin", "--timeout=30s", "-v=6")
    Lines(waiter.stderr).wait_for(_is_watch)
    kubectl("patch", "pod", "fin", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    assert waiter.wait(30) == 0
    assert kubectl.run("get", "pod", "fin", check=False).returncode == 1


def test_graceful_pod_deletion_and_binding(kubectl, server):
    import urllib.request
    kubectl("apply", "-f", "-", input=POD.format(name="gr", image="busybox"))
    req = urllib.request.Request(
        f"{server.url}/api/v1/namespaces/default/pods/gr/binding", method="POST",
        data=json.dumps({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "gr"},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    assert urllib.request.urlopen(req, context=server.ssl_context()).status == 201
    assert kubectl("get", "pod", "gr", "-o", "jsonpath={.spec.nodeName}") == "node-1"
    # A scheduled pod waits for its node to confirm: delete marks it, with the grace period.
    kubectl("delete", "pod", "gr", "--wait=false")
    pod = json.loads(kubectl("get", "pod", "gr", "-o", "json"))
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 30
    assert "Terminating" in kubectl("get", "pod", "gr")
    kubectl("delete", "pod", "gr", "--grace-period=0", "--force")  # what the node agent confirms with
    assert kubectl.run("get", "pod", "gr", check=False).returncode == 1


def test_wait_for_condition_and_describe_events(kubectl):
    kubectl("apply", "-f", "-", input=POD.format(name="wt", image="busybox"))
    uid = kubectl("get", "pod", "wt", "-o", "jsonpath={.metadata.uid}")
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "wt.1"},
             "involvedObject": {"kind": "Pod", "namespace": "default", "name": "wt", "uid": uid,
                                "apiVersion": "v1"},
             "reason": "Scheduled", "message": "Successfully assigned default/wt to node-1",
             "type": "Normal", "source": {"component": "default-scheduler"}, "count": 1,
             "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"}
    kubectl("create", "-f", "-", input=json.dumps(event))
    waiter = kubectl.popen("wait", "--for=condition=Ready", "pod/wt", "--timeout=30s", "-v=6")
    log = Lines(waiter.stderr)
    log.wait_for(_is_watch)
    kubectl("patch", "pod", "wt", "--subresource=status", "--type=merge", "-p",
            '{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}')
    assert waiter.wait(30) == 0, log.text
    desc = kubectl("describe", "pod", "wt")
    assert "Events:" in desc and "Scheduled" in desc and "Successfully assigned default/wt" in desc
    ev = kubectl("get", "events")
    assert "pod/wt" in ev and "Scheduled" in ev
    kubectl("delete", "pod", "wt")
    kubectl("delete", "event", "wt.1")


def test_explain(kubectl):
    out = kubectl("explain", "pod.spec.containers")
    assert "FIELD: containers <[]Container>" in out and "imagePullPolicy" in out
    out = kubectl("explain", "deployment.spec.replicas")
    assert "replicas <integer>" in out


def test_get_watch_prints_changes_as_they_happen(kubectl):
    kubectl("apply", "-f", "-", input=POD.format(name="wa", image="busybox"))
    w = kubectl.popen("get", "pods", "wa", "-w", "--request-timeout=20s", "-v=6")
    table, log = Lines(w.stdout), Lines(w.stderr)
    table.wait_for(lambda line: line.split()[:3] == ["wa", "0/1", "Pending"])
    log.wait_for(_is_watch)                  # the list is printed before the watch starts
    kubectl("patch", "pod", "wa", "--subresource=status", "--type=merge", "-p", '{"status":{"phase":"Running"}}')
    table.wait_for(lambda line: line.split()[:3] == ["wa", "0/1", "Running"])
    kubectl("delete", "pod", "wa")
    w.terminate()
    w.wait(30)
    out = table.text
    lines = [l.split() for l in out.splitlines()]
    assert lines[0][:3] == ["NAME", "READY", "STATUS"] and sum(1 for l in lines if l[0] == "NAME") == 1
    assert ["wa", "0/1", "Pending"] == lines[1][:3]
    assert any(l[:3] == ["wa", "0/1", "Running"] for l in lines[2:])


def test_namespace_deletion_without_controllers_stays_terminating(kubectl):
    """Emptying a namespace is the namespace controller's job (controllers/test_namespace.py);
    with no controllers running it stays Terminating, as on a cluster whose
    kube-controller-manager is down, and takes no new content."""
    kubectl("create", "namespace", "gone")
    kubectl("create", "configmap", "x", "-n", "gone", "--from-literal=a=b")
    kubectl("delete", "namespace", "gone", "--wait=false")
    ns = json.loads(kubectl("get", "ns", "gone", "-o", "json"))
    assert ns["status"]["phase"] == "Terminating" and ns["spec"]["finalizers"] == ["kubernetes"]
    assert ns["metadata"]["deletionTimestamp"]
    p = kubectl.run("create", "configmap", "y", "-n", "gone", check=False)
    assert p.returncode != 0 and "because it is being terminated" in p.stderr


def test_field_validation_warn_and_ignore(kubectl):
    m = POD.format(name="fv", image="busybox").replace("    image: busybox", "    image: busybox\n    bogus: 1")
    p = kubectl.run("apply", "--validate=warn", "-f", "-", input=m)
    assert 'unknown field "spec.containers[0].bogus"' in p.stderr and "Warning" in p.stderr
    spec = json.loads(kubectl("get", "pod", "fv", "-o", "json"))["spec"]
    assert "bogus" not in spec["containers"][0]  # dropped, as the Go decoder does
    kubectl("delete", "pod", "fv")
    p = kubectl.run("apply", "--validate=false", "-f", "-", input=m)
    assert "Warning" not in p.stderr
    kubectl("delete", "pod", "fv")


def _is_watch(line: str) -> bool:
    """kubectl -v=6's line for an answered watch request."""
    return "watch=true" in line and "200 OK" in line

