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


# --- /etc/hosts and the hostname (kubelet_pods.go: managedHostsFileContent, GeneratePodHostNameAndDomain)
def _node(tmp_path, **kw):
    from nodeagent.kuberuntime.config import NodeFacts
    return NodeFacts("n1", "nodehost", 2**30, pods_dir=str(tmp_path / "pods"), **kw)


def test_hosts_file_has_the_fqdn_with_a_subdomain_and_the_host_aliases(tmp_path):
    from nodeagent.kuberuntime.config import managed_hosts
    p = _pod(hostname="web", subdomain="svc1",
             hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]},
                          {"ip": "10.1.2.4", "hostnames": ["baz"]}])
    assert managed_hosts(p, _node(tmp_path), ("10.244.0.9",)) == (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
        "10.244.0.9\tweb.svc1.ns.svc.cluster.local\tweb\n"
        "\n# Entries added by HostAliases.\n"
        "10.1.2.3\tfoo.local\tbar.local\n10.1.2.4\tbaz\n")
    assert managed_hosts(_pod(), _node(tmp_path), ("10.244.0.9",)).endswith("fe00::2\tip6-allrouters\n"
                                                                               "10.244.0.9\tp\n")


def test_hosts_file_of_a_host_network_pod_is_the_nodes_with_the_aliases(tmp_path):
    from nodeagent.kuberuntime.config import managed_hosts
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n192.168.1.5 nodehost\n")
    p = _pod(hostNetwork=True, hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo"]}])
    assert managed_hosts(p, _node(tmp_path, hosts_file=str(hosts)), ()) == (
        "# Kubernetes-managed hosts file (host network).\n"
        "127.0.0.1 localhost\n192.168.1.5 nodehost\n"
        "\n# Entries added by HostAliases.\n10.1.2.3\tfoo\n")


def test_container_config_mounts_the_hosts_file_unless_the_container_brings_its_own(tmp_path):
    from nodeagent.kuberuntime.config import container_config
    p = _pod(hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo"]}])
    node = _node(tmp_path)

    async def make(c, volumes=None):
        return await container_config(p, c, attempt=0, init=False, node=node, lookup=_no_objects,
                                      image=None, volumes=volumes or {}, pod_ips=("10.244.0.9",))
    cfg = run(make({"name": "c"}))
    hosts = [m for m in cfg.mounts if m.container_path == "/etc/hosts"]
    assert len(hosts) == 1 and not hosts[0].readonly
    assert hosts[0].host_path == str(tmp_path / "pods" / "u1" / "etc-hosts")
    assert "10.1.2.3\tfoo\n" in open(hosts[0].host_path).read()
    (tmp_path / "v").mkdir()
    own = run(make({"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/etc/hosts"}]},
                   {"v": str(tmp_path / "v")}))
    assert [m.host_path for m in own.mounts if m.container_path == "/etc/hosts"] == [str(tmp_path / "v")]


def test_set_hostname_as_fqdn_makes_the_kernel_hostname_the_fqdn(tmp_path):
    import pytest

    from nodeagent.envvars import ConfigError
    from nodeagent.kuberuntime.config import kernel_hostname
    node = _node(tmp_path)
    assert kernel_hostname(_pod(hostname="web", subdomain="s"), node) == "web"
    assert kernel_hostname(_pod(hostname="web", subdomain="s", setHostnameAsFQDN=True), node) == \
        "web.s.ns.svc.cluster.local"
    assert kernel_hostname(_pod(hostname="web", setHostnameAsFQDN=True), node) == "web"   # no domain
    with pytest.raises(ConfigError, match=r"FQDN w+\.s\.ns\.svc\.cluster\.local is too long \(64 characters is the max, 73 characters requested\)"):
        kernel_hostname(_pod(hostname="w" * 50, subdomain="s", setHostnameAsFQDN=True), node)


# --- images (images/image_manager.go; kuberuntime_container.go's startContainer) ----------------------
class _Recorder:
    def __init__(self):
        self.events = []

    def event(self, obj, type_, reason, message, field_path=""):
        self.events.append((type_, reason, message))


class _Images:
    def __init__(self, fail=None):
        self.fail = fail

    async def image_status(self, ref):
        return None

    async def pull_image(self, ref, auth):
        from nodeagent.cri.api import ImagePullError
        raise ImagePullError(self.fail)


def test_image_failures_record_error_events_and_the_runtime_message():
    """Every EnsureImageExists failure is also a Warning `Failed` event "Error: <reason>"
    (startContainer), and ErrImagePull's waiting message is the runtime's error itself."""
    import pytest

    from nodeagent.kuberuntime.images import ImageError, ImagePuller
    rec = _Recorder()
    puller = ImagePuller(_Images("pull access denied"), rec)
    p = _pod()
    c = {"name": "c", "image": "127.0.0.1:5000/app:1", "imagePullPolicy": "IfNotPresent"}
    with pytest.raises(ImageError) as e:
        run(puller.ensure(p, c, "spec.containers{c}", _no_objects))
    assert (e.value.reason, e.value.message) == ("ErrImagePull", "pull access denied")
    assert rec.events == [
        ("Normal", "Pulling", 'Pulling image "127.0.0.1:5000/app:1"'),
        ("Warning", "Failed", 'Failed to pull image "127.0.0.1:5000/app:1": pull access denied'),
        ("Warning", "Failed", "Error: ErrImagePull")]
    rec.events.clear()
    with pytest.raises(ImageError) as e:
        run(puller.ensure(p, c, "spec.containers{c}", _no_objects))
    # the waiting message wraps the last pull's error (image_manager.go's prevPullErrMsg)
    assert (e.value.reason, e.value.message) == (
        "ImagePullBackOff",
        'Back-off pulling image "127.0.0.1:5000/app:1": ErrImagePull: pull access denied')
    assert rec.events == [("Normal", "BackOff", 'Back-off pulling image "127.0.0.1:5000/app:1"'),
                          ("Warning", "Failed", "Error: ImagePullBackOff")]
    rec.events.clear()
    with pytest.raises(ImageError) as e:
        run(puller.ensure(p, dict(c, imagePullPolicy="Never"), "spec.containers{c}", _no_objects))
    assert rec.events == [
        ("Warning", "ErrImageNeverPull",
         'Container image "127.0.0.1:5000/app:1" is not present with pull policy of Never'),
        ("Warning", "Failed", "Error: ErrImageNeverPull")]


# --- sysctls (sysctl/allowlist.go, safe_sysctls.go: the kubelet's SysctlForbidden admission) --------
def test_unsafe_sysctls_are_rejected_at_admission_with_sysctl_forbidden():
    from nodeagent.admission import admit

    def with_sysctls(*names, **spec):
        return _pod(containers=[{"name": "c"}], securityContext={
            "sysctls": [{"name": n, "value": "1"} for n in names]}, **spec)
    assert admit(with_sysctls("kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                              "net.ipv4.tcp_rmem", "net/ipv4/ping_group_range"), []) is None
    r = admit(with_sysctls("kernel.shm_rmid_forced", "kernel.msgmax"), [])
    assert r.status("BestEffort") == {
        "phase": "Failed", "reason": "SysctlForbidden", "qosClass": "BestEffort",
        "message": 'Pod was rejected: forbidden sysctl: "kernel.msgmax" not allowlisted'}
    r = admit(with_sysctls("net.ipv4.tcp_syncookies", hostNetwork=True), [])
    assert (r.reason, r.message) == (
        "SysctlForbidden", 'forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled')
    r = admit(with_sysctls("kernel.shm_rmid_forced", hostIPC=True), [])
    assert r.message == 'forbidden sysctl: "kernel.shm_rmid_forced" not allowed with host ipc enabled'


# --- volumes: read-only API data, fsGroup ownership (volume_linux.go SetVolumeOwnership) -------------
def test_api_data_volumes_are_mounted_read_only_whatever_the_mount_says(tmp_path):
    """configMap, secret, downwardAPI and projected volumes are read-only mounts
    (the mounter's ReadOnly attribute: mustMountRO in makeMounts)."""
    from nodeagent.kuberuntime.config import container_config
    vols = [{"name": "cm", "configMap": {"name": "x"}}, {"name": "s", "secret": {"secretName": "y"}},
            {"name": "d", "downwardAPI": {"items": []}}, {"name": "pj", "projected": {"sources": []}},
            {"name": "e", "emptyDir": {}}]
    c = {"name": "c", "volumeMounts": [{"name": v["name"], "mountPath": f"/{v['name']}"} for v in vols]}
    paths = {}
    for v in vols:
        (tmp_path / v["name"]).mkdir()
        paths[v["name"]] = str(tmp_path / v["name"])
    cfg = run(container_config(_pod(containers=[c], volumes=vols), c, attempt=0, init=False,
                               node=_node(tmp_path), lookup=_no_objects, image=None, volumes=paths))
    assert {m.container_path: m.readonly for m in cfg.mounts if m.container_path != "/dev/termination-log"} \
        == {"/cm": True, "/s": True, "/d": True, "/pj": True, "/e": False}


def test_fs_group_owns_the_volumes_files_with_group_access(tmp_path):
    """With fsGroup, a volume's files get that group and g+r (read-only API data: 0440 added),
    its directories setgid so what the containers create there gets the group too; an emptyDir
    is drwxrwsrwx."""
    import os
    import stat

    from nodeagent.volumes import make
    gid = os.getegid()
    planned = {"cm": ("configMap", {"a": (b"1", 0o400), "sub/b": (b"2", 0o600)}),
               "e": ("emptyDir", None)}
    paths = make(str(tmp_path), "u1", planned, fs_group=gid)
    a, b = os.stat(os.path.join(paths["cm"], "a")), os.stat(os.path.join(paths["cm"], "sub/b"))
    assert (stat.S_IMODE(a.st_mode), a.st_gid) == (0o440, gid)
    assert (stat.S_IMODE(b.st_mode), b.st_gid) == (0o640, gid)
    for d in (paths["cm"], os.path.join(paths["cm"], "sub")):
        st = os.stat(d)
        assert st.st_gid == gid and st.st_mode & stat.S_ISGID and stat.S_IMODE(st.st_mode) & 0o050 == 0o050
    e = os.stat(paths["e"])
    assert (stat.S_IMODE(e.st_mode), e.st_gid) == (0o2777, gid)
    no_group = make(str(tmp_path), "u2", {"cm": ("configMap", {"a": (b"1", 0o400)})})
    assert stat.S_IMODE(os.stat(os.path.join(no_group["cm"], "a")).st_mode) == 0o400


def test_sub_path_expr_is_expanded_from_the_containers_env(tmp_path):
    """makeMounts: subPathExpr expands $(VAR) with the container's env (ExpandContainerVolumeMounts);
    an unset or empty variable is "missing value for X"; subPath must be relative, without '..'."""
    import pytest

    from nodeagent.envvars import ConfigError
    from nodeagent.kuberuntime.config import container_config
    (tmp_path / "v").mkdir()
    p = _pod(volumes=[{"name": "v", "emptyDir": {}}])

    def make(mount, env=()):
        c = {"name": "c", "env": list(env), "volumeMounts": [dict(mount, name="v", mountPath="/data")]}
        return run(container_config(p, c, attempt=0, init=False, node=_node(tmp_path),
                                    lookup=_no_objects, image=None, volumes={"v": str(tmp_path / "v")}))
    pod_name = {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    cfg = make({"subPathExpr": "logs/$(POD)"}, [pod_name])
    data = next(m for m in cfg.mounts if m.container_path == "/data")
    assert data.host_path == str(tmp_path / "v" / "logs" / "p") and (tmp_path / "v/logs/p").is_dir()
    with pytest.raises(ConfigError, match="^missing value for EMPTY, NOPE$"):
        make({"subPathExpr": "$(NOPE)/$(EMPTY)/$(POD)"}, [pod_name, {"name": "EMPTY", "value": ""}])
    with pytest.raises(ConfigError, match="^error SubPath `/abs` must not be an absolute path$"):
        make({"subPath": "/abs"})
    with pytest.raises(ConfigError, match="^unable to provision SubPath `a/../../b`: must not contain '..'$"):
        make({"subPath": "a/../../b"})


def test_missing_pull_secrets_are_reported_once_per_attempt():
    """getPullSecretsForPod: a Warning FailedToRetrieveImagePullSecret names the secrets that
    could not be read; the pull goes on without them."""
    import pytest

    from nodeagent.kuberuntime.images import ImageError, ImagePuller
    rec = _Recorder()
    p = _pod(imagePullSecrets=[{"name": "gone"}, {"name": ""}, {"name": "also-gone"}])
    c = {"name": "c", "image": "127.0.0.1:5000/app:1", "imagePullPolicy": "Always"}
    with pytest.raises(ImageError):
        run(ImagePuller(_Images("denied"), rec).ensure(p, c, "spec.containers{c}", _no_objects))
    assert ("Warning", "FailedToRetrieveImagePullSecret",
            "Unable to retrieve some image pull secrets (gone, also-gone); attempting to pull the "
            "image may not succeed.") in rec.events


def test_host_path_types_are_checked_with_the_kubelets_messages(tmp_path):
    """hostpath's checkType: the kind of the path, not only that it exists; an untyped path
    that is missing is made a directory, as containerd makes a missing bind-mount source."""
    import socket

    import pytest

    from nodeagent.volumes import VolumeError, make
    f = tmp_path / "file"
    f.write_text("x")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        def check(path, type_):
            return make(str(tmp_path / "pods"), "u1", {"v": ("hostPath", {"path": str(path), "type": type_})})
        for path, type_, what in ((f, "Directory", "a directory"), (tmp_path, "File", "a file"),
                                  (f, "Socket", "a socket file"), (f, "CharDevice", "a character device"),
                                  (f, "BlockDevice", "a block device"), (f, "DirectoryOrCreate", "a directory"),
                                  (tmp_path, "FileOrCreate", "a file"), (tmp_path / "no", "Directory", "a directory")):
            with pytest.raises(VolumeError) as e:
                check(path, type_)
            assert str(e.value) == (f'MountVolume.SetUp failed for volume "v" : hostPath type check '
                                    f'failed: {path} is not {what}')
        check(tmp_path / "sock", "Socket")
        check("/dev/null", "CharDevice")
        check(f, "File")
        check(tmp_path / "made" / "deep", "")
        assert (tmp_path / "made" / "deep").is_dir()
    finally:
        sock.close()


def test_run_as_non_root_with_an_image_user_named_root_cannot_be_verified():
    """verifyRunAsNonRoot: an image User that is a name — "root" too — is a non-numeric user
    (containerd's ImageStatus reports names, not uids); no User at all runs as root."""
    import pytest

    from nodeagent.cri.api import Image
    from nodeagent.envvars import ConfigError
    from nodeagent.kuberuntime.config import security_context
    p = _pod(securityContext={"runAsNonRoot": True})
    with pytest.raises(ConfigError, match=r'^container has runAsNonRoot and image has non-numeric user '
                                          r'\(root\), cannot verify user is non-root \(pod: "p_ns\(u1\)", '
                                          r'container: c\)$'):
        security_context(p, {"name": "c"}, Image("sha256:x", (), (), 0, uid=None, username="root"))
    with pytest.raises(ConfigError, match=r"^container has runAsNonRoot and image will run as root"):
        security_context(p, {"name": "c"}, Image("sha256:x", (), (), 0, uid=None, username=""))
    with pytest.raises(ConfigError, match=r"^container's runAsUser breaks non-root policy"):
        security_context(p, {"name": "c", "securityContext": {"runAsUser": 0}}, None)


def test_node_resolv_conf_is_read_as_parse_resolv_conf_reads_it(tmp_path):
    from nodeagent.kuberuntime.config import NodeFacts, dns_config
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("domain corp.example\nnameserver 192.0.2.53\nsearch a.example. b.example\n"
                      "options edns0\nnameserver 192.0.2.54\noptions rotate\n# comment\n")
    d = dns_config(_pod(dnsPolicy="Default"), NodeFacts("n", "h", 2**30, resolv_conf=str(resolv)))
    assert (d.servers, d.searches, d.options) == (("192.0.2.53", "192.0.2.54"),
                                                 ("a.example", "b.example"), ("rotate",))


def test_sandbox_config_asks_for_a_shared_pid_namespace(tmp_path):
    from nodeagent.kuberuntime.config import sandbox_config
    node = _node(tmp_path)
    assert sandbox_config(_pod(shareProcessNamespace=True), node, 0, "").share_pid
    assert not sandbox_config(_pod(), node, 0, "").share_pid
    assert not sandbox_config(_pod(shareProcessNamespace=True, hostPID=True), node, 0, "").share_pid


def test_labels_and_annotations_files_quote_values_as_go_does():
    """fieldpath.FormatMap: sorted `key=%q` lines — Go's quoting of `"`, `\\`, newlines, tabs."""
    from nodeagent.envvars import field_value
    p = {"metadata": {"annotations": {"b": 'say "hi"\n\tnow \\ é\x01'}, "labels": {"z": "1", "a": "x"}}}
    assert field_value(p, "metadata.labels") == 'a="x"\nz="1"'
    assert field_value(p, "metadata.annotations") == 'b="say \\"hi\\"\\n\\tnow \\\\ é\\x01"'


def test_a_terminated_status_the_runtime_no_longer_knows_is_kept():
    """convertToAPIContainerStatuses: a container the runtime has no record of keeps its old
    terminated state (a finished pod after the node's containers were removed), or at least its
    restartCount and lastState — not "waiting: ContainerCreating" from scratch."""
    from nodeagent.kuberuntime.manager import PodRuntimeState, SyncResult
    from nodeagent.podstatus import generate
    done = {"terminated": {"exitCode": 0, "reason": "Completed", "containerID": "nodeagent://x"}}
    p = _pod(containers=[{"name": "c", "image": "i"}, {"name": "d", "image": "i"}])
    p["status"] = {"phase": "Succeeded", "startTime": "2026-12-06T07:00:00Z", "containerStatuses": [
        {"name": "c", "state": done, "lastState": {}, "restartCount": 2, "ready": False, "image": "i"},
        {"name": "d", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 3,
         "lastState": done, "ready": False, "image": "i"}]}
    st = generate(p, PodRuntimeState("u1"), SyncResult(), host_ip="10.0.0.1", runtime_name="nodeagent",
                  now=0.0)
    c, d = st["containerStatuses"]
    assert c["state"] == done and c["restartCount"] == 2
    assert d["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert (d["restartCount"], d["lastState"]) == (3, done)
    assert st["phase"] == "Succeeded"


def test_image_names_are_parsed_as_the_kubelet_parses_them():
    """parsers.ParseImageName (distribution's ParseNormalizedNamed): the kubelet's own words for a
    reference it cannot use, before any runtime is asked."""
    from nodeagent.kuberuntime.images import image_name_error
    for ok in ("busybox", "busybox:1.36", "UPPER/case:1", "127.0.0.1:5000/a/b:1", "localhost/x",
               "a.b/c_d__e-f/g:TAG_1.x", "busybox@sha256:" + "a" * 64, "[::1]:5000/x:1"):
        assert image_name_error(ok) is None, ok
    assert image_name_error("lower/UPPER:1") == \
        'couldn\'t parse image name "lower/UPPER:1": invalid reference format: repository name ' \
        '(lower/UPPER) must be lowercase'
    assert image_name_error("Busybox") == 'couldn\'t parse image name "Busybox": invalid reference ' \
                                          'format: repository name (library/Busybox) must be lowercase'
    for bad in ("busybox:", "bad image", "busybox@sha256:abc", "-x/y", "a//b", "x:1:2"):
        assert image_name_error(bad) == f'couldn\'t parse image name "{bad}": invalid reference format', bad
    assert image_name_error("a" * 64) == (f'couldn\'t parse image name "{"a" * 64}": invalid repository '
                                          f'name ({"a" * 64}), cannot specify 64-byte hexadecimal strings')


def test_dns_config_limits_duplicates_and_cluster_first_with_host_net(tmp_path):
    """GetPodDNS: ClusterFirstWithHostNet is ClusterFirst on the pod network too; duplicates go
    (omitDuplicates); more than 3 nameservers, or search paths over the limits, are cut with a
    DNSConfigForming warning; an option with an empty value is the bare name."""
    from nodeagent.kuberuntime.config import NodeFacts, dns_config
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\nsearch svc.cluster.local corp.example\n")
    node = NodeFacts("n", "h", 2**30, resolv_conf=str(resolv), cluster_dns=("10.96.0.10",))
    warnings = []
    d = dns_config(_pod(dnsPolicy="ClusterFirstWithHostNet", dnsConfig={
        "nameservers": ["1.1.1.1", "10.96.0.10", "8.8.8.8", "9.9.9.9"],
        "searches": ["corp.example", "x" * 254, "y.example"],
        "options": [{"name": "ndots", "value": ""}, {"name": "rotate"}]}), node, warnings.append)
    assert d.servers == ("10.96.0.10", "1.1.1.1", "8.8.8.8")
    assert d.searches == ("ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example",
                          "y.example")
    assert set(d.options) == {"ndots", "rotate"}
    assert warnings == [
        "Nameserver limits were exceeded, some nameservers have been omitted, the applied "
        "nameserver line is: 10.96.0.10 1.1.1.1 8.8.8.8",
        "Search Line limits were exceeded, some search paths have been omitted, the applied search "
        "line is: ns.svc.cluster.local svc.cluster.local cluster.local corp.example y.example"]


def test_host_users_false_is_refused_not_ignored(tmp_path):
    """No user-namespace mappings are made for pods here: `hostUsers: false` is refused the way
    the kubelet refuses it on a runtime without user namespaces — never run with the host's ids."""
    import pytest

    from nodeagent.envvars import ConfigError
    from nodeagent.kuberuntime.config import sandbox_config
    with pytest.raises(ConfigError, match=r"^can't set `spec.hostUsers: false`, runtime does not "
                                          r"support user namespaces$"):
        sandbox_config(_pod(hostUsers=False), _node(tmp_path), 0, "")
    assert sandbox_config(_pod(hostUsers=True), _node(tmp_path), 0, "")


def test_pull_durations_read_as_go_prints_them():
    """The Pulled event's durations are Go's time.Duration.String of a millisecond-truncated
    value ("280ms", "1.234s", "1m2.5s")."""
    from nodeagent.kuberuntime.images import go_millis
    assert [go_millis(t) for t in (0.0, 0.2809, 1.0, 1.2345, 62.5, 3600.0)] == \
        ["0s", "280ms", "1s", "1.234s", "1m2.5s", "1h0m0s"]
