"""Pod-spec features on a whole node, compared with what the real kubelet does: the downward
API's IPs, /etc/hosts and the FQDN hostname, native sidecars, activeDeadlineSeconds, sysctl
admission, volume ownership and read-only API data, subPathExpr, hostPath types, and pulls from
a registry that wants basic auth (imagePullSecrets, right and wrong).

One node serves the module (tests/nodekit.py), driven with the real kubectl; pods name the node
in spec.nodeName. The registry runs inside the node's network namespace, on its 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import warnings

import pytest

from tests.nodekit import Node, busybox_node, container_status, create_pod, running
from tests.registryfix import free_port, registry_available


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = busybox_node(tmp_path_factory.mktemp("node"), "spec")
    yield n
    if n.running:
        n.down()


def logs(node: Node, name: str, *extra: str) -> str:
    return node.kubectl("logs", name, *extra).stdout


def event_reasons(node: Node, name: str) -> dict[str, str]:
    out = node.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
    return {e["reason"]: e["message"] for e in json.loads(out.stdout)["items"]}


def wait_event(node: Node, name: str, reason: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = event_reasons(node, name)
        if reason in got:
            return got[reason]
        time.sleep(0.3)
    raise AssertionError(f"no {reason} event for {name}: {event_reasons(node, name)}")


def delete(node: Node, *names: str) -> None:
    node.kubectl("delete", "pod", *names, "--grace-period=0", "--force", "--wait=false")


def test_ips_hosts_file_and_fqdn_hostname(node):
    create_pod(node, "names", [{"name": "c", "command": ["sh", "-c", "hostname; cat /etc/hosts; echo;"
                                                         "echo ip=$MYIP ips=$MYIPS host=$HOSTIP; sleep 600"],
                                "env": [{"name": "MYIP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                                        {"name": "MYIPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
                                        {"name": "HOSTIP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}]}],
               hostname="web", subdomain="grp", setHostnameAsFQDN=True,
               hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}])
    pod = node.wait_pod("names", lambda p: running(p) and "ip=" in logs(node, "names"))
    ip, host_ip = pod["status"]["podIP"], pod["status"]["hostIP"]
    out = logs(node, "names")
    fqdn = "web.grp.default.svc.cluster.local"
    assert out.startswith(fqdn + "\n# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert f"\n{ip}\t{fqdn}\tweb\n\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n" in out
    assert f"ip={ip} ips={ip} host={host_ip}\n" in out
    delete(node, "names")


def test_native_sidecar_runs_beside_the_app_and_the_pod_completes(node):
    share = [{"name": "v", "mountPath": "/shared"}]
    create_pod(node, "sidecar", [{"name": "app", "command": ["sh", "-c", "cat /shared/s"], "volumeMounts": share}],
               policy="Never", grace=2,
               initContainers=[
                   {"name": "side", "image": "localhost/busybox:1", "imagePullPolicy": "Never",
                    "restartPolicy": "Always", "volumeMounts": share,
                    "command": ["sh", "-c", "echo from-sidecar > /shared/s; exec sleep 600"]},
                   {"name": "init", "image": "localhost/busybox:1", "imagePullPolicy": "Never",
                    "command": ["test", "-s", "/shared/s"], "volumeMounts": share}],
               volumes=[{"name": "v", "emptyDir": {}}])
    pod = node.wait_pod("sidecar", lambda p: p["status"].get("phase") == "Succeeded")
    assert logs(node, "sidecar", "-c", "app") == "from-sidecar\n"
    side = next(s for s in pod["status"]["initContainerStatuses"] if s["name"] == "side")
    assert "terminated" in side["state"]          # stopped once the app container was done
    delete(node, "sidecar")


def test_active_deadline_and_unsafe_sysctl(node):
    create_pod(node, "deadline", [{"name": "c", "command": ["sleep", "600"]}], grace=0,
               activeDeadlineSeconds=2)
    create_pod(node, "sysctl", [{"name": "c", "command": ["sleep", "600"]}],
               securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]})
    create_pod(node, "safe", [{"name": "c", "command": ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]}],
               policy="Never", securityContext={"sysctls": [
                   {"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}]})
    pod = node.wait_pod("deadline", lambda p: p["status"].get("phase") == "Failed")
    assert (pod["status"]["reason"], pod["status"]["message"]) == (
        "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
    assert wait_event(node, "deadline", "DeadlineExceeded") == pod["status"]["message"]
    pod = node.wait_pod("sysctl", lambda p: p["status"].get("phase") == "Failed")
    assert (pod["status"]["reason"], pod["status"]["message"]) == (
        "SysctlForbidden", 'Pod was rejected: forbidden sysctl: "kernel.msgmax" not allowlisted')
    node.wait_pod("safe", lambda p: p["status"].get("phase") == "Succeeded")
    assert logs(node, "safe") == "80\n"
    delete(node, "deadline", "sysctl", "safe")


def test_fs_group_read_only_api_data_sub_path_expr_and_host_path_types(node, tmp_path):
    node.kubectl("create", "configmap", "vcm", "--from-literal=k=v")
    node.kubectl("create", "secret", "generic", "vsec", "--from-literal=s=x")
    script = ("id -G; stat -c '%a %g' /ed /cm/k; touch /ed/f; stat -c '%g' /ed/f; "
              "touch /cm/x 2>&1 | grep -o 'Read-only file system'; "
              "grep -o ' /sec tmpfs ro' /proc/mounts; ls /logs; sleep 600")
    create_pod(node, "vols", [{"name": "c", "command": ["sh", "-c", script],
                               "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                               "volumeMounts": [{"name": "ed", "mountPath": "/ed"},
                                                {"name": "cm", "mountPath": "/cm"},
                                                {"name": "sec", "mountPath": "/sec"},
                                                {"name": "ed", "mountPath": "/logs", "subPathExpr": "$(POD)"}]}],
               securityContext={"fsGroup": 2000},
               volumes=[{"name": "ed", "emptyDir": {}},
                        {"name": "cm", "configMap": {"name": "vcm", "defaultMode": 0o400}},
                        {"name": "sec", "secret": {"secretName": "vsec"}}])
    a_file = tmp_path / "file"
    a_file.write_text("x")
    create_pod(node, "badhost", [{"name": "c", "command": ["sleep", "600"],
                                  "volumeMounts": [{"name": "h", "mountPath": "/h"}]}],
               volumes=[{"name": "h", "hostPath": {"path": str(a_file), "type": "Directory"}}])
    node.wait_pod("vols", lambda p: running(p) and "tmpfs" in logs(node, "vols"))
    assert logs(node, "vols").splitlines() == ["0 2000", "2777 2000", "440 2000", "2000",
                                               "Read-only file system", " /sec tmpfs ro"]
    assert node.kubectl("exec", "vols", "--", "ls", "/ed").stdout == "f\nvols\n"
    msg = wait_event(node, "badhost", "FailedMount")
    assert msg == (f'MountVolume.SetUp failed for volume "h" : hostPath type check failed: '
                   f'{a_file} is not a directory')
    assert container_status(node.get("pod", "badhost"), "c")["state"]["waiting"]["reason"] == \
        "ContainerCreating"
    delete(node, "vols", "badhost")
    node.kubectl("delete", "configmap", "vcm")
    node.kubectl("delete", "secret", "vsec")


@pytest.mark.skipif(registry_available() is not None, reason=str(registry_available()))
def test_pull_secrets_against_a_registry_with_basic_auth(node, tmp_path):
    """docker-registry with htpasswd auth on the node's own 127.0.0.1 (plain HTTP: loopback)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt          # deprecated, but the only bcrypt at hand for an htpasswd file
    port = free_port()
    (tmp_path / "htpasswd").write_text(
        "alice:" + crypt.crypt("wonderland", crypt.mksalt(crypt.METHOD_BLOWFISH)) + "\n")
    (tmp_path / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: 0123456789abcdef\n"
        f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {tmp_path / 'htpasswd'}\n")
    reg = subprocess.Popen(["nsenter", f"--net={node.netns}", "docker-registry", "serve",
                            str(tmp_path / "config.yml")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        image = f"127.0.0.1:{port}/private/bb:1"
        deadline = time.monotonic() + 20
        while node.sh("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds",
                      "alice:wonderland", f"oci:{node.base / 'oci'}:1", f"docker://{image}",
                      timeout=120).returncode != 0:
            assert time.monotonic() < deadline, "could not push to the registry"
            time.sleep(0.3)
        for name, password in (("good", "wonderland"), ("bad", "nope")):
            node.kubectl("create", "secret", "docker-registry", name, f"--docker-server=127.0.0.1:{port}",
                         "--docker-username=alice", f"--docker-password={password}")
        for name in ("good", "bad"):
            create_pod(node, f"pull-{name}", [{"name": "c", "image": image, "imagePullPolicy": "Always",
                                               "command": ["sleep", "600"]}],
                       imagePullSecrets=[{"name": name}])
        node.wait_pod("pull-good", running)
        pod = node.wait_pod("pull-bad", lambda p: container_status(p, "c")["state"].get("waiting", {})
                            .get("reason") == "ImagePullBackOff")
        # the waiting message carries the last pull's error (image_manager.go's prevPullErrMsg)
        assert container_status(pod, "c")["state"]["waiting"]["message"].startswith(
            f'Back-off pulling image "{image}": ErrImagePull: ')
        got = event_reasons(node, "pull-bad")
        assert got["BackOff"] == f'Back-off pulling image "{image}"'
        assert got["Failed"] in ("Error: ErrImagePull", "Error: ImagePullBackOff")
        delete(node, "pull-good", "pull-bad")
    finally:
        reg.send_signal(signal.SIGTERM)     # the nsenter we started; it passes the signal on
        try:
            reg.wait(10)
        except subprocess.TimeoutExpired:
            reg.kill()
            reg.wait()


def test_share_process_namespace_has_a_pause_pid_1(node):
    """shareProcessNamespace: the containers see each other's processes, pid 1 is the pod's pause
    process, and it goes with the pod."""
    def pauses() -> set[str]:
        return set(subprocess.run(["pgrep", "-x", "pause"], capture_output=True, text=True).stdout.split())
    before = pauses()
    create_pod(node, "shared", [{"name": "a", "command": ["sleep", "601"]},
                                {"name": "b", "command": ["sleep", "602"]}],
               shareProcessNamespace=True, grace=0)
    node.wait_pod("shared", running)
    ps = node.kubectl("exec", "shared", "-c", "b", "--", "ps", "-o", "pid,args").stdout
    lines = [line.split(None, 1) for line in ps.splitlines()[1:]]
    assert lines[0][0] == "1" and "pause" in lines[0][1]
    assert {"sleep 601", "sleep 602"} <= {args for _, args in lines}
    ours = pauses() - before
    assert len(ours) == 1
    node.kubectl("delete", "pod", "shared")
    deadline = time.monotonic() + 30
    while ours & pauses():
        assert time.monotonic() < deadline, "the pause process outlived its pod"
        time.sleep(0.2)
