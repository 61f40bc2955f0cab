"""What the OCI runtime spec asks and runc does, checked without the OCI validation suite itself
(scripts/oci-validation.sh runs that one where it is installed): seccomp rules with several
conditions on one argument, the filter as the last step before execve, stdio passed through by
`create`, absolute cgroup paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.busybox import REPO


def _edit(bundle: Path, change) -> Path:
    """Apply `change(config)` to the bundle's config.json (the way a user writes one by hand)."""
    path = bundle / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))
    return bundle


def _wait_stopped(rt, cid: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = rt.state(cid)
        if state["status"] == "stopped" or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def _run(rt, bundle: Path, cid: str | None = None) -> subprocess.CompletedProcess:
    return rt.runtime("run", "-b", str(bundle), cid or rt.name())


# --- seccomp --------------------------------------------------------------------------------------

def _personality_profile(values):
    # Docker's profile allows personality(2) for a few values of arg 0 only; here the same shape
    # (several SCMP_CMP_EQ on arg 0 in one rule) denies the values given.
    def change(config: dict) -> None:
        config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                          "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"} for v in values]}]}
    return change


@pytest.mark.parametrize("values, seen", [
    ((0, 8), "linux32=1 linux64=1"),              # each condition denies its own value
    ((8, 0x20000), "linux32=1 linux64=0"),        # ... and only those
])
def test_several_conditions_on_one_argument_match_if_any_holds(rt, values, seen):
    # linux32 asks personality(2) for PER_LINUX32 (8), linux64 for PER_LINUX (0).
    script = "linux32 true; echo linux32=$?; linux64 true; echo linux64=$?"
    bundle = _edit(rt.bundle(["sh", "-c", script]), _personality_profile(values))
    out = _run(rt, bundle)
    assert out.returncode == 0, out.stderr
    assert " ".join(out.stdout.split()) == seen


@pytest.mark.vm
def test_the_filter_does_not_judge_the_runtime_own_last_steps(rt):
    # An allowlist without close_range (older profiles have none), and no_new_privs off: the
    # runtime's own close_range must not meet the filter, which goes in right before execve.
    def allowlist(config):
        import errno
        names = ["execve", "brk", "arch_prctl", "set_tid_address", "exit_group", "write",
                 "getpid", "rt_sigaction", "rt_sigprocmask", "mmap", "munmap", "prlimit64",
                 "getuid", "geteuid", "set_robust_list", "rseq", "getrandom", "mprotect", "prctl",
                 "readlink"]
        config["process"]["noNewPrivileges"] = False
        config["process"]["args"] = ["/bin/echo", "still here"]
        config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EPERM,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}
    bundle = _edit(rt.bundle(["true"]), allowlist)
    out = _run(rt, bundle)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "still here\n"


def test_without_no_new_privs_the_program_still_gets_only_its_capabilities(rt):
    # CAP_SYS_ADMIN is kept for the filter until execve, and must end there.
    def change(config):
        config["process"]["noNewPrivileges"] = False
    bundle = _edit(rt.bundle(["grep", "-E", "^(CapEff|CapPrm|Seccomp):", "/proc/self/status"]), change)
    out = _run(rt, bundle)
    assert out.returncode == 0, out.stderr
    fields = dict(line.split(":\t") for line in out.stdout.splitlines())
    assert fields == {"CapPrm": "00000000a80425fb", "CapEff": "00000000a80425fb", "Seccomp": "2"}


# --- stdio ----------------------------------------------------------------------------------------

def test_create_passes_its_own_stdio_to_the_container(rt, tmp_path):
    # As runc: the container writes to the files `create` was given, after `create` has exited.
    bundle = rt.bundle(["sh", "-c", "echo to-stdout; echo to-stderr >&2; read line; echo got $line"])
    cid = rt.name()
    out, err, inp = tmp_path / "out", tmp_path / "err", tmp_path / "in"
    inp.write_text("input-line\n")
    with open(out, "w") as o, open(err, "w") as e, open(inp) as i:
        code = subprocess.run([sys.executable, "-m", "nodeagent", "runtime", "--root", str(rt.root),
                               "create", "-b", str(bundle), cid], stdin=i, stdout=o, stderr=e,
                              cwd=REPO, timeout=60).returncode
    assert code == 0, err.read_text()
    assert out.read_text() == ""                       # nothing yet: it has not started
    assert rt.runtime("start", cid).returncode == 0
    assert _wait_stopped(rt, cid)["status"] == "stopped"
    assert out.read_text() == "to-stdout\ngot input-line\n"
    assert err.read_text() == "to-stderr\n"
    assert not (rt.root / cid / "container.log").exists()
    assert rt.runtime("delete", cid).returncode == 0


def test_create_with_log_still_writes_a_cri_log(rt):
    bundle = rt.bundle(["echo", "logged"])
    cid = rt.name()
    log = rt.base / "c.log"
    assert rt.runtime("create", "--log", str(log), "-b", str(bundle), cid).returncode == 0
    assert rt.runtime("start", cid).returncode == 0
    _wait_stopped(rt, cid)
    assert log.read_text().split(" ", 3)[1:] == ["stdout", "F", "logged\n"]


# --- cgroups --------------------------------------------------------------------------------------

def test_an_absolute_cgroups_path_is_relative_to_the_hierarchy_root(rt):
    # Run inside a cgroup namespace whose root is a cgroup of ours (with the memory hierarchy
    # mounted again in a private mount namespace), so that "/" below is ours, not the host's.
    own = [line.split(":", 2) for line in Path("/proc/self/cgroup").read_text().splitlines()]
    memory = next(p for _, c, p in own if c == "memory")
    sandbox = Path("/sys/fs/cgroup/memory") / memory.lstrip("/") / f"oci-abs-{os.getpid()}"
    sandbox.mkdir()
    cid = rt.name()
    bundle = _edit(rt.bundle(["true"]), lambda c: c["linux"].update(cgroupsPath=f"/abs-{cid}"))
    runtime = f"{sys.executable} -m nodeagent runtime --root {rt.root}"
    inner = (f"umount /sys/fs/cgroup/memory && mount -t cgroup -o memory cgroup /sys/fs/cgroup/memory "
             f"&& {runtime} create -b {bundle} {cid} </dev/null >/dev/null "
             f"&& cat /sys/fs/cgroup/memory/abs-{cid}/cgroup.procs "
             f"&& {runtime} delete --force {cid} && test ! -e /sys/fs/cgroup/memory/abs-{cid}")
    script = f"echo 0 > {sandbox}/cgroup.procs && unshare -C -m --propagation private sh -c '{inner}'"
    try:
        out = subprocess.run(["sh", "-c", script], capture_output=True, stdin=subprocess.DEVNULL,
                             text=True, cwd=REPO, timeout=60)
        assert out.returncode == 0, out.stderr
        assert len(out.stdout.split()) == 1            # the container's init was in it
    finally:
        rt.runtime("delete", "--force", cid)
        for d in (sandbox / f"abs-{cid}", sandbox):
            if d.exists():
                d.rmdir()


# --- resources: applied, or refused by name ------------------------------------------------------

def _created_dirs(rt, resources: dict, args=("sleep", "30")) -> tuple[str, dict]:
    bundle = _edit(rt.bundle(list(args)), lambda c: c["linux"].update(resources=resources))
    cid = rt.name()
    out = rt.runtime("create", "-b", str(bundle), cid)
    assert out.returncode == 0, out.stderr
    record = json.loads((rt.root / cid / "state.json").read_text())
    return cid, {k: Path(v) for k, v in record["cgroup"]["dirs"].items()}


@pytest.mark.vm
def test_cpuset_cpus_and_mems_are_applied(rt):
    bundle = _edit(rt.bundle(["grep", "-E", "^(Cpus|Mems)_allowed_list", "/proc/self/status"]),
                   lambda c: c["linux"].update(resources={"cpu": {"cpus": "0", "mems": "0"}}))
    out = _run(rt, bundle)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Cpus_allowed_list:", "0", "Mems_allowed_list:", "0"]


def test_memory_swappiness_and_disable_oom_killer_are_applied(rt):
    from runtime.cgroups.layout import current
    if "memory" not in current().v1:
        pytest.skip("cgroup v2 has neither: there they are refused (the next test's kind)")
    cid, dirs = _created_dirs(rt, {"memory": {"swappiness": 7, "disableOOMKiller": True}})
    assert (dirs["memory"] / "memory.swappiness").read_text().strip() == "7"
    assert "oom_kill_disable 1" in (dirs["memory"] / "memory.oom_control").read_text()
    assert rt.runtime("delete", "--force", cid).returncode == 0


@pytest.mark.vm
@pytest.mark.parametrize("resources, field", [
    ({"network": {"classID": 1048577}}, "linux.resources.network.classID"),
    ({"rdma": {"mlx5_1": {"hcaHandles": 3}}}, "linux.resources.rdma"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}]}},
     "linux.resources.blockIO.throttleReadBpsDevice"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
    ({"memory": {"kernel": 50593792}}, "linux.resources.memory.kernel"),
    ({"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]}, "linux.resources.hugepageLimits[0].pageSize"),
])
def test_a_setting_that_cannot_be_applied_is_refused_by_name(rt, resources, field):
    from runtime.cgroups.layout import current
    if field == "linux.resources.network.classID" and "net_cls" in current().v1:
        pytest.skip("this host has net_cls: the class id is applied")
    release = tuple(int(x) for x in os.uname().release.split(".")[:2])
    if field == "linux.resources.memory.kernel" and release < (5, 16):
        pytest.skip("kernels before 5.16 still apply kernel memory limits")
    bundle = _edit(rt.bundle(["true"]), lambda c: c["linux"].update(resources=resources))
    cid = rt.name()
    out = rt.runtime("create", "-b", str(bundle), cid)
    assert out.returncode == 1
    assert field in out.stderr and len(out.stderr.splitlines()) == 1
    assert not (rt.root / cid).exists()


@pytest.mark.vm
def test_hugepage_limits_are_applied_where_the_host_has_hugetlb_else_refused(rt):
    from runtime.cgroups.layout import CgroupMode, current
    layout = current()
    applied = "hugetlb" in layout.v1 or (layout.mode is CgroupMode.V2 and "hugetlb" in layout.unified.controllers)
    bundle = _edit(rt.bundle(["sleep", "30"]), lambda c: c["linux"].update(
        resources={"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}))
    cid = rt.name()
    out = rt.runtime("create", "-b", str(bundle), cid)
    if not applied:
        assert out.returncode == 1
        assert "linux.resources.hugepageLimits: the hugetlb cgroup controller is not available" in out.stderr
        return
    assert out.returncode == 0, out.stderr
    dirs = json.loads((rt.root / cid / "state.json").read_text())["cgroup"]["dirs"]
    name = "hugetlb.2MB.limit_in_bytes" if "hugetlb" in layout.v1 else "hugetlb.2MB.max"
    assert any((Path(d) / name).exists() and (Path(d) / name).read_text().strip() == "4194304"
               for d in dirs.values())
    assert rt.runtime("delete", "--force", cid).returncode == 0


# --- mounts ----------------------------------------------------------------------------------------

def test_a_shared_root_propagation_survives_pivot_root(rt):
    def host_root() -> str:
        line = next(l for l in Path("/proc/self/mountinfo").read_text().splitlines()
                    if l.split()[4] == "/")
        return line.partition(" - ")[0]
    before = host_root()
    bundle = _edit(rt.bundle(["awk", '$5 == "/" { print $7 }', "/proc/self/mountinfo"]),
                   lambda c: c["linux"].update(rootfsPropagation="shared"))
    out = _run(rt, bundle)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("shared:")
    assert host_root() == before          # the host's own root mount kept its propagation


# --- devices and namespaces -------------------------------------------------------------------------

def test_a_fifo_device_is_created(rt):
    bundle = _edit(rt.bundle(["stat", "-c", "%F %a", "/dev/queue"]), lambda c: c["linux"].update(
        devices=[{"path": "/dev/queue", "type": "p", "fileMode": 0o620}]))
    out = _run(rt, bundle)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "fifo 620\n"


def _in_private_mount_namespace(rt, argv: list[str], watch: str) -> subprocess.CompletedProcess:
    """Run the CLI in a mount namespace of its own (unshare -m): a container that shares its
    creator's mount namespace then shares this throw-away one, never the host's. Prints how many
    mounts lie below `watch` before and after (only those: mounts elsewhere can vanish from a
    copied namespace when another process on the host removes their mount point)."""
    script = " ".join(f"'{a}'" for a in argv)
    count = f"awk '$5 ~ \"^{watch}(/|$)\"' /proc/self/mountinfo | wc -l"
    inner = (f"{count}; {sys.executable} -m nodeagent runtime --root {rt.root} {script} </dev/null; "
             f"echo rc=$?; {count}")
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_without_a_mount_namespace_the_container_shares_its_creators_and_leaves_no_mount(rt):
    bundle = _edit(rt.bundle(["sh", "-c", "readlink /proc/$$/ns/mnt; ls /; "
                                          "awk '$5 == \"/proc\"' /proc/self/mountinfo | wc -l"]),
                   lambda c: c["linux"].update(
                       namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "mount"]))
    out = _in_private_mount_namespace(rt, ["run", "-b", str(bundle), rt.name()], str(rt.rootfs))
    assert out.returncode == 0, out.stderr
    before, ns, *listing, mounted, rc, after = out.stdout.split()
    assert rc == "rc=0", out.stderr
    assert ns != os.readlink("/proc/self/ns/mnt")      # the unshare's namespace, not ours...
    assert "bin" in listing and "tmp" in listing          # ... with the container's root (chroot)
    assert mounted == "1"                                 # its /proc, mounted in that namespace
    assert before == after == "0"                         # and detached by --rm


def test_a_mount_namespace_given_by_path_is_joined(rt):
    holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "60"])
    try:
        path = f"/proc/{holder.pid}/ns/mnt"
        deadline = time.monotonic() + 10
        while os.readlink(path) == os.readlink("/proc/self/ns/mnt") and time.monotonic() < deadline:
            time.sleep(0.01)                             # until unshare has made it
        bundle = _edit(rt.bundle(["readlink", "/proc/self/ns/mnt"]), lambda c: c["linux"].update(
            namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "mount"]
            + [{"type": "mount", "path": path}]))
        out = _run(rt, bundle)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == os.readlink(path)
    finally:
        holder.kill()
        holder.wait()


# --- user namespaces ----------------------------------------------------------------------------------

def _userns(config: dict) -> None:
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]


@pytest.fixture
def userns_bundle(rt):
    """A bundle whose root the container's root (host uid 100000) can reach: pytest's own temp
    directories are root's alone (0700), as a container image's directory is not."""
    import shutil
    import tempfile

    from tests.busybox import make_rootfs

    top = Path(tempfile.mkdtemp(prefix="nodeagent-userns-"))
    top.chmod(0o755)
    rootfs = make_rootfs(top / "rootfs")

    def make(args: list[str]) -> Path:
        bundle = _edit(rt.bundle(args), _userns)
        return _edit(bundle, lambda c: c["root"].update(path=str(rootfs)))
    yield make
    shutil.rmtree(top)


def test_a_user_namespace_maps_the_containers_root_to_an_unprivileged_host_id(rt, userns_bundle):
    cid = rt.name()
    out = rt.runtime("create", "-b", str(userns_bundle(["true"])), cid)
    assert out.returncode == 0, out.stderr
    status = Path(f"/proc/{rt.state(cid)['pid']}/status").read_text().splitlines()
    uid_line = next(l for l in status if l.startswith("Uid:"))
    gid_line = next(l for l in status if l.startswith("Gid:"))
    assert uid_line.split()[1:] == ["100000"] * 4          # root inside, nobody special outside
    assert gid_line.split()[1:] == ["200000"] * 4
    assert rt.runtime("delete", cid).returncode == 0


@pytest.mark.vm
def test_a_user_namespace_container_sees_its_maps_and_is_root_inside(rt, userns_bundle):
    script = ("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; echo pid=$$; "
              "echo x > /dev/null && echo null-ok; mknod /dev/sda b 8 0 2>&1 | sed 's/.*: //'")
    bundle = userns_bundle(["sh", "-c", script])
    out = _run(rt, bundle)
    assert out.returncode == 0, out.stderr
    lines = [" ".join(l.split()) for l in out.stdout.splitlines()]
    assert lines == ["0 100000 65536", "0 200000 65536", "0", "0", "pid=1", "null-ok",
                     "Operation not permitted"]   # a device node is the host's root's to make


def test_exec_joins_the_user_namespace_too(rt, userns_bundle):
    bundle = userns_bundle(["sleep", "30"])
    cid = rt.name()
    assert rt.runtime("run", "-d", "-b", str(bundle), cid).returncode == 0
    out = rt.runtime("exec", cid, "sh", "-c", "cat /proc/self/uid_map; id -u; echo $$")
    assert out.returncode == 0, out.stderr
    mapping, uid, pid = out.stdout.splitlines()
    assert mapping.split() == ["0", "100000", "65536"] and uid == "0"
    assert int(pid) > 1                                    # in the container's pid namespace
    assert rt.runtime("delete", "--force", cid).returncode == 0


@pytest.mark.parametrize("change, problem", [
    (lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 10}]),
     "linux.uidMappings: ID mappings need a new user namespace in linux.namespaces"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}),
     "linux.uidMappings: a new user namespace needs uidMappings and gidMappings"),
])
def test_user_namespace_mistakes_are_one_line_naming_the_field(rt, change, problem):
    bundle = _edit(rt.bundle(["true"]), change)
    out = rt.runtime("create", "-b", str(bundle), rt.name())
    assert out.returncode == 1
    assert out.stderr.strip().endswith(problem)


def test_console_socket_receives_the_terminal(rt, tmp_path):
    import socket

    bundle = _edit(rt.bundle(["sh", "-c", "tty; read line; echo got $line"]),
                   lambda c: c["process"].update(terminal=True))
    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(30)
    cid = rt.name()
    try:
        out = rt.runtime("create", "--console-socket", path, "-b", str(bundle), cid)
        assert out.returncode == 0, out.stderr
        conn, _ = listener.accept()
        with conn:
            name, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        assert name.decode().startswith("/dev/pts/") and len(fds) == 1
        master = fds[0]
        assert rt.runtime("start", cid).returncode == 0
        os.write(master, b"typed\n")
        seen = b""
        deadline = time.monotonic() + 15
        while b"got typed" not in seen and time.monotonic() < deadline:
            try:
                seen += os.read(master, 1024)
            except OSError:                              # EIO: the container closed its side
                break
        os.close(master)
        assert name.decode().encode() in seen             # `tty` printed the name we were sent
        assert b"got typed" in seen
    finally:
        listener.close()


def test_a_capability_the_runtime_lacks_is_named(rt):
    held = int(next(l for l in open("/proc/self/status") if l.startswith("CapBnd:")).split()[1], 16)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    missing = [bit for bit in range(last + 1) if not held >> bit & 1]
    if not missing:
        pytest.skip("this process holds every capability: none to be missing")
    from runtime.sys.caps import names_of
    name = names_of(1 << missing[0])[0]
    bundle = _edit(rt.bundle(["true"]), lambda c: [c["process"]["capabilities"][k].append(name)
                                                   for k in ("bounding", "effective", "permitted")])
    out = rt.runtime("run", "-b", str(bundle), rt.name())
    assert out.returncode == 1
    assert f"process.capabilities: {name}: not held by the runtime itself" in out.stderr
