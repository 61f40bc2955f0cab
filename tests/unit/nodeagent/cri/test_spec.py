"""The pure rules of nodeagent/cri/spec.py: Kubernetes' command/args merge, env, user, resources
→ cgroup values, namespaces joined by path, the sandbox's /etc files and volumes as mounts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nodeagent.cri.api import (ContainerConfig, ContainerMetadata, CreateContainerError,
                               LinuxContainerResources, Mount, SecurityContext)
from nodeagent.cri.spec import SandboxView, build_spec, map_resources, merge_argv, merge_env
from runtime.spec.model import Resources


# --- command and args (kubernetes.io: "Define a Command and Arguments for a Container") --------
@pytest.mark.parametrize("entrypoint, cmd, command, args, want", [
    (("/ep",), ("foo", "bar"), (), (), ("/ep", "foo", "bar")),              # neither: image's
    (("/ep",), ("foo", "bar"), ("/cmd",), (), ("/cmd",)),                   # command: drops both
    (("/ep",), ("foo", "bar"), (), ("zoo", "boo"), ("/ep", "zoo", "boo")),  # args: replace Cmd
    (("/ep",), ("foo", "bar"), ("/cmd",), ("zoo",), ("/cmd", "zoo")),       # both: the pod's
    ((), ("sh",), (), ("-c", "x"), ("-c", "x")),                            # no Entrypoint
    ((), (), (), (), ()),                                                   # nothing at all
])
def test_command_and_args_follow_the_kubernetes_table(entrypoint, cmd, command, args, want):
    assert merge_argv(entrypoint, cmd, command, args) == want


def test_env_image_first_then_the_containers_replacing_in_place():
    env = merge_env(("A=1", "PATH=/bin", "B=2"), (("B", "two"), ("C", "3"), ("A", "one")), "/def")
    assert env == ("A=one", "PATH=/bin", "B=two", "C=3")
    assert merge_env((), (("X", "y=z"),), "/def") == ("PATH=/def", "X=y=z")
    with pytest.raises(CreateContainerError, match="not a valid variable name"):
        merge_env((), (("", "v"),), "/def")


# --- resources -------------------------------------------------------------------------------------
def test_resources_map_to_cgroup_values_without_swap():
    r, adj = map_resources(LinuxContainerResources(cpu_shares=512, cpu_quota=50_000,
                                                   cpu_period=100_000, memory_limit_in_bytes=64 << 20,
                                                   pids_limit=100, oom_score_adj=999), Resources())
    assert (r.cpu.shares, r.cpu.quota, r.cpu.period) == (512, 50_000, 100_000)
    assert (r.memory.limit, r.memory.swap) == (64 << 20, 64 << 20)     # memory+swap = memory
    assert r.pids.limit == 100 and adj == 999


def test_unset_and_zero_resources_leave_the_base_alone():
    base = Resources()
    r, adj = map_resources(LinuxContainerResources(cpu_shares=0, memory_limit_in_bytes=0), base)
    assert r == base and adj is None
    r, _ = map_resources(LinuxContainerResources(cpu_quota=20_000), base)
    assert r.cpu.period == 100_000                                     # a quota needs a period


@pytest.mark.parametrize("res, field_", [
    (LinuxContainerResources(cpu_shares=1), "cpu_shares=1"),
    (LinuxContainerResources(cpu_shares=300_000), "cpu_shares=300000"),
    (LinuxContainerResources(cpu_quota=10), "cpu_quota=10"),
    (LinuxContainerResources(cpu_period=10), "cpu_period=10"),
    (LinuxContainerResources(memory_limit_in_bytes=-5), "memory_limit_in_bytes=-5"),
    (LinuxContainerResources(memory_limit_in_bytes=100), "memory_limit_in_bytes=100"),
    (LinuxContainerResources(pids_limit=-7), "pids_limit=-7"),
    (LinuxContainerResources(oom_score_adj=1001), "oom_score_adj=1001"),
])
def test_values_no_kernel_takes_are_refused_naming_the_field(res, field_):
    with pytest.raises(CreateContainerError, match=field_.replace("=", "=")) as e:
        map_resources(res, Resources())
    assert e.value.reason == "CreateContainerError"


# --- the whole spec ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FakeImageConfig:
    entrypoint: tuple = ()
    cmd: tuple = ("sh",)
    env: tuple = ("FROM_IMAGE=1",)
    working_dir: str = "/srv"
    user: str = ""
    stop_signal: str = ""


@dataclass(frozen=True)
class FakeImage:
    config: FakeImageConfig = FakeImageConfig()
    lowerdirs: tuple = field(default=())


def image_with_passwd(tmp_path: Path, **kw) -> FakeImage:
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True, exist_ok=True)
    (layer / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home:/bin/sh\n")
    (layer / "etc/group").write_text("root:x:0:\napp:x:1001:\nstaff:x:50:\n")
    return FakeImage(FakeImageConfig(**kw), (layer,))


SANDBOX = SandboxView(namespaces={"network": "/pins/net", "ipc": "/pins/ipc", "uts": "/pins/uts"},
                      etc_files={"/etc/hosts": "/sb/hosts", "/etc/hostname": "/sb/hostname",
                                 "/etc/resolv.conf": "/sb/resolv.conf"},
                      cgroup_parent="kubepods/burstable/poduid")


def config(**kw) -> ContainerConfig:
    return ContainerConfig(metadata=ContainerMetadata("c"), image="img", **kw)


def test_spec_joins_the_sandbox_namespaces_and_mounts_its_etc_files(tmp_path):
    spec = build_spec("cid1", config(), SANDBOX, image_with_passwd(tmp_path), "/st/cid1/rootfs")
    ns = {n.type: n.path for n in spec.linux.namespaces}
    assert ns == {"mount": None, "cgroup": None, "pid": None, "network": "/pins/net",
                  "ipc": "/pins/ipc", "uts": "/pins/uts"}
    assert spec.hostname is None                       # the pinned uts namespace has it
    binds = {m.destination: m.source for m in spec.mounts if m.type == "bind"}
    assert binds == {"/etc/hosts": "/sb/hosts", "/etc/hostname": "/sb/hostname",
                     "/etc/resolv.conf": "/sb/resolv.conf"}
    assert spec.linux.cgroups_path == "kubepods/burstable/poduid/cid1"
    assert spec.process.args == ("sh",) and spec.process.cwd == "/srv"
    assert "FROM_IMAGE=1" in spec.process.env
    assert spec.root.layers == (str(tmp_path / "layer"),)


def test_host_network_leaves_out_net_and_uts_and_a_kubelet_mount_replaces_etc_hosts(tmp_path):
    sandbox = SandboxView(namespaces={"ipc": "/pins/ipc"}, etc_files=SANDBOX.etc_files,
                          cgroup_parent="p")
    own_hosts = tmp_path / "hosts"
    own_hosts.write_text("")
    spec = build_spec("c2", config(mounts=(Mount("/etc/hosts", str(own_hosts), readonly=True),)),
                      sandbox, image_with_passwd(tmp_path), "/r")
    assert {n.type for n in spec.linux.namespaces} == {"mount", "cgroup", "pid", "ipc"}
    hosts = [m for m in spec.mounts if m.destination == "/etc/hosts"]
    assert len(hosts) == 1 and hosts[0].source == str(own_hosts) and "ro" in hosts[0].options


def test_user_from_the_image_or_the_security_context(tmp_path):
    img = image_with_passwd(tmp_path, user="app")
    assert build_spec("c", config(), SANDBOX, img, "/r").process.user.uid == 1000
    assert build_spec("c", config(), SANDBOX, img, "/r").process.user.gid == 1001
    sec = SecurityContext(run_as_user=1000, run_as_group=50, supplemental_groups=(7,))
    u = build_spec("c", config(security=sec), SANDBOX, img, "/r").process.user
    assert (u.uid, u.gid, u.additional_gids) == (1000, 50, (7,))
    u = build_spec("c", config(security=SecurityContext(run_as_user=4242)), SANDBOX, img, "/r").process.user
    assert (u.uid, u.gid) == (4242, 0)                 # not in the image's passwd: group 0
    for bad in (-1, 2147483648):
        with pytest.raises(CreateContainerError, match="runAsUser"):
            build_spec("c", config(security=SecurityContext(run_as_user=bad)), SANDBOX, img, "/r")
    with pytest.raises(CreateContainerError, match="ghost"):
        build_spec("c", config(), SANDBOX, image_with_passwd(tmp_path, user="ghost"), "/r")


def test_no_command_anywhere_is_refused(tmp_path):
    with pytest.raises(CreateContainerError, match="no command specified"):
        build_spec("c", config(), SANDBOX, image_with_passwd(tmp_path, cmd=()), "/r")
    spec = build_spec("c", config(command=("/bin/true",)), SANDBOX,
                      image_with_passwd(tmp_path, cmd=()), "/r")
    assert spec.process.args == ("/bin/true",)


def test_a_volume_must_exist_and_propagation_maps_to_mount_options(tmp_path):
    with pytest.raises(CreateContainerError, match="/data: host path /nope does not exist"):
        build_spec("c", config(mounts=(Mount("/data", "/nope"),)), SANDBOX,
                   image_with_passwd(tmp_path), "/r")
    spec = build_spec("c", config(mounts=(Mount("/data", str(tmp_path), propagation="rslave"),)),
                      SANDBOX, image_with_passwd(tmp_path), "/r")
    data = next(m for m in spec.mounts if m.destination == "/data")
    assert data.options == ("rbind", "rslave")


def test_share_process_namespace_joins_the_sandbox_pid_namespace(tmp_path):
    """shareProcessNamespace: the sandbox pins a pid namespace (held by its pause process) and
    every container joins it by path instead of making its own."""
    sandbox = SandboxView(namespaces={**SANDBOX.namespaces, "pid": "/pins/pid"},
                          etc_files=SANDBOX.etc_files, cgroup_parent="p")
    spec = build_spec("c3", config(), sandbox, image_with_passwd(tmp_path), "/r")
    assert {n.type: n.path for n in spec.linux.namespaces}["pid"] == "/pins/pid"


def test_a_privileged_container_gets_the_hosts_devices(tmp_path):
    """privileged: every device node of the host's /dev is created in the container's (runc's
    HostDevices, as containerd asks for them), beside the default ones; others get none."""
    from runtime.rootfs.devices import host_devices
    from runtime.spec.model import Device

    found = host_devices("/dev")
    paths = {d.path for d in found}
    assert not paths & {"/dev/null", "/dev/tty", "/dev/ptmx"}    # the defaults are made anyway
    assert not any(p.startswith(("/dev/pts/", "/dev/shm/", "/dev/mqueue/")) for p in paths)
    assert all(d.type in ("c", "b") for d in found)
    kmsg = Device("/dev/kmsg", "c", 1, 11)
    priv = config(security=SecurityContext(privileged=True))
    spec = build_spec("c4", priv, SANDBOX, image_with_passwd(tmp_path), "/r", host_devices=(kmsg,))
    assert spec.linux.devices == (kmsg,)
    plain = build_spec("c5", config(), SANDBOX, image_with_passwd(tmp_path), "/r", host_devices=(kmsg,))
    assert plain.linux.devices == ()


def test_a_tty_container_gets_term_xterm_unless_it_sets_term(tmp_path):
    """containerd's WithTTY: TERM=xterm, under the image's and the container's own env."""
    img = image_with_passwd(tmp_path)
    env = build_spec("t1", config(tty=True), SANDBOX, img, "/r").process.env
    assert "TERM=xterm" in env
    own = build_spec("t2", config(tty=True, envs=(("TERM", "vt100"),)), SANDBOX, img, "/r").process.env
    assert "TERM=vt100" in own and "TERM=xterm" not in own
    assert not any(e.startswith("TERM=") for e in build_spec("t3", config(), SANDBOX, img, "/r").process.env)


def test_the_users_groups_in_the_image_are_added_before_supplemental_groups(tmp_path):
    """containerd's WithAdditionalGIDs (SupplementalGroupsPolicy Merge, the default): the groups
    of the image's /etc/group that list the user as a member — not the one named after it —
    then the pod's supplementalGroups (and fsGroup)."""
    img = image_with_passwd(tmp_path, user="app")
    (tmp_path / "layer/etc/group").write_text(
        "root:x:0:\napp:x:1001:app\nstaff:x:50:root,app\nwheel:x:10:root\naudio:x:29:bob\n")
    assert build_spec("c", config(), SANDBOX, img, "/r").process.user.additional_gids == (50,)
    sec = SecurityContext(run_as_user=0, supplemental_groups=(7,))
    assert build_spec("c", config(security=sec), SANDBOX, img, "/r").process.user.additional_gids == \
        (50, 10, 7)
    sec = SecurityContext(run_as_user=4242, supplemental_groups=(7,))    # not in the image's passwd
    assert build_spec("c", config(security=sec), SANDBOX, img, "/r").process.user.additional_gids == (7,)


def test_every_container_gets_hostname_in_its_env(tmp_path):
    """containerd sets HOSTNAME to the sandbox's hostname, under the image's and the pod's env."""
    import dataclasses
    img = image_with_passwd(tmp_path)
    sandbox = dataclasses.replace(SANDBOX, hostname="web-1")
    assert "HOSTNAME=web-1" in build_spec("h1", config(), sandbox, img, "/r").process.env
    own = build_spec("h2", config(envs=(("HOSTNAME", "mine"),)), sandbox, img, "/r").process.env
    assert "HOSTNAME=mine" in own and "HOSTNAME=web-1" not in own
