"""The official `kubernetes` Python client (37.x), unmodified, against our server."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException



def api_client(server):
    c = config.new_client_from_config(config_file=str(server.kubeconfig))
    assert c.configuration.client_side_validation  # the default: the client validates too
    return c


def pod(name, labels=None):
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")]))


def test_create_list_patch_delete(server):
    v1 = client.CoreV1Api(api_client(server))
    created = v1.create_namespaced_pod("default", pod("py-1", {"app": "py"}))
    assert created.metadata.uid and created.spec.restart_policy == "Always"
    v1.create_namespaced_pod("default", pod("py-2", {"app": "other"}))
    names = [p.metadata.name for p in v1.list_namespaced_pod("default", label_selector="app=py").items]
    assert names == ["py-1"]
    patched = v1.patch_namespaced_pod("py-1", "default", {"metadata": {"labels": {"x": "y"}}})
    assert patched.metadata.labels == {"app": "py", "x": "y"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    # Optimistic concurrency: a replace with a stale resourceVersion is a 409 Conflict.
    stale = created
    stale.metadata.labels = {"app": "stale"}
    with pytest.raises(ApiException) as e:
        v1.replace_namespaced_pod("py-1", "default", stale)
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "Conflict"
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_pod("nope", "default")
    assert e.value.status == 404 and json.loads(e.value.body)["details"]["kind"] == "pods"
    v1.delete_namespaced_pod("py-1", "default")
    v1.delete_namespaced_pod("py-2", "default")
    assert v1.list_namespaced_pod("default", label_selector="app in (py,other)").items == []


def test_apps_and_scale(server):
    apps = client.AppsV1Api(api_client(server))
    d = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="pyd"),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels={"app": "pyd"}),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "pyd"}),
                                              spec=pod("x").spec)))
    apps.create_namespaced_deployment("default", d)
    scale = apps.read_namespaced_deployment_scale("pyd", "default")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=pyd"
    apps.patch_namespaced_deployment_scale("pyd", "default", {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("pyd", "default").spec.replicas == 4
    bad = client.V1Deployment(metadata=client.V1ObjectMeta(name="bad"), spec=client.V1DeploymentSpec(
        selector=client.V1LabelSelector(match_labels={"app": "a"}),
        template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "b"}),
                                          spec=pod("x").spec)))
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment("default", bad)
    body = json.loads(e.value.body)
    assert e.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    apps.delete_namespaced_deployment("pyd", "default")


def test_watch_streams_changes(server):
    v1 = client.CoreV1Api(api_client(server))
    rv = v1.list_namespaced_config_map("default").metadata.resource_version
    seen = []

    def consume():
        w = watch.Watch()
        for ev in w.stream(v1.list_namespaced_config_map, "default", resource_version=rv,
                           timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="wcm"), data={"a": "1"}))
    v1.patch_namespaced_config_map("wcm", "default", {"data": {"a": "2"}})
    v1.delete_namespaced_config_map("wcm", "default")
    t.join(15)
    assert seen == [("ADDED", "wcm"), ("MODIFIED", "wcm"), ("DELETED", "wcm")]


def test_watch_410_then_relist_and_continue(server_factory):
    srv = server_factory(None, None, "--default-watch-cache-size", "5")
    v1 = client.CoreV1Api(api_client(srv))
    old_rv = v1.list_namespaced_config_map("default").metadata.resource_version
    for i in range(10):  # push old_rv out of the 5-event window
        v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"c{i}")))
    with pytest.raises(ApiException) as e:
        for _ in watch.Watch().stream(v1.list_namespaced_config_map, "default",
                                      resource_version=old_rv, timeout_seconds=5):
            pass
    assert e.value.status == 410
    # The informer pattern: re-list, then watch from the list's revision.
    listed = v1.list_namespaced_config_map("default")
    assert len(listed.items) == 10
    v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="after")))
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, "default",
                       resource_version=listed.metadata.resource_version, timeout_seconds=5):
        assert (ev["type"], ev["object"].metadata.name) == ("ADDED", "after")
        w.stop()


def _stream(server, path):
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {server.token}"})
    return urllib.request.urlopen(req, context=server.ssl_context(), timeout=10)


def test_watch_list_ends_initial_state_with_annotated_bookmark(server):
    v1 = client.CoreV1Api(api_client(server))
    for n in ("wl-a", "wl-b"):
        v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=n, labels={"wl": "1"})))
    resp = _stream(server, "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true"
                           "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
                           "&labelSelector=wl%3D1&timeoutSeconds=3")
    events = [json.loads(resp.readline()) for _ in range(3)]
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events[:2]] == \
        [("ADDED", "wl-a"), ("ADDED", "wl-b")]
    bm = events[2]
    assert bm["type"] == "BOOKMARK" and bm["object"]["kind"] == "ConfigMap"
    assert bm["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bm["object"]["metadata"]["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in events[:2])
    # Without resourceVersionMatch=NotOlderThan the request is refused, never silently served.
    with pytest.raises(urllib.error.HTTPError) as e:
        _stream(server, "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true")
    assert e.value.code == 422
    v1.delete_collection_namespaced_config_map("default", label_selector="wl=1")


def test_progress_bookmarks_move_a_quiet_watch_forward(server):
    """A watch on a quiet namespace still learns newer revisions (BOOKMARK), so it can resume
    from a recent point instead of an old one that may have left the window."""
    v1 = client.CoreV1Api(api_client(server))
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="quiet")))
    rv = v1.list_namespaced_config_map("quiet").metadata.resource_version
    resp = _stream(server, f"/api/v1/namespaces/quiet/configmaps?watch=1&resourceVersion={rv}"
                           f"&allowWatchBookmarks=true&timeoutSeconds=8")
    v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="elsewhere")))
    ev = json.loads(resp.readline())
    assert ev["type"] == "BOOKMARK" and int(ev["object"]["metadata"]["resourceVersion"]) > int(rv)
    assert "annotations" not in ev["object"]["metadata"]
    v1.delete_namespaced_config_map("elsewhere", "default")
