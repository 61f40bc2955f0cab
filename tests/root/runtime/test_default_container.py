"""What a process sees inside a default container (acceptance: capabilities, seccomp, /proc, /dev, fds).

Each test runs a real container through the CLI (`nodeagent run --rm`) on the busybox rootfs and
looks from the inside, as a user would. One test, which looks at everything in a single container,
is marked vm as well: the same must hold on the VM's kernel with cgroup v2 (container starts are
slow under TCG emulation, so the VM gets one).
"""

from __future__ import annotations

import pytest


def _status(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_default_capabilities_and_runtime_default_seccomp(rt):
    out = rt.run("--rm", str(rt.rootfs), "cat", "/proc/self/status")
    assert out.returncode == 0, out.stderr
    status = _status(out.stdout)
    assert status["CapEff"] == "00000000a80425fb"
    assert status["CapPrm"] == "00000000a80425fb"
    assert status["CapBnd"] == "00000000a80425fb"
    assert status["CapInh"] == "0000000000000000"   # CVE-2022-24769: never inheritable by default
    assert status["CapAmb"] == "0000000000000000"
    assert status["Seccomp"] == "2"
    assert status["NoNewPrivs"] == "0"               # Kubernetes' default allowPrivilegeEscalation


def test_proc_sys_is_read_only_and_kcore_is_masked(rt):
    # /proc/kcore exists only on kernels built with CONFIG_PROC_KCORE (the VM's; not this host's).
    # Every masked file that exists on the host must read empty inside.
    import os

    masked_files = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts",
                                "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats")
                    if os.path.exists(p)]
    script = ("(echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1; echo write=$?; "
              + "".join(f"echo {p}=$(wc -c < {p}); " for p in masked_files)
              + "ls /sys/firmware | wc -l; "
              "grep -E ' /proc/(sys|bus|fs|irq|sysrq-trigger) ' /proc/self/mountinfo | grep -c ' ro,'")
    out = rt.run("--rm", str(rt.rootfs), "sh", "-c", script)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "Read-only file system" in lines[0]
    assert lines[1] == "write=1"
    assert lines[2:2 + len(masked_files)] == [f"{p}=0" for p in masked_files]
    assert "/proc/keys" in masked_files
    rest = lines[2 + len(masked_files):]
    assert rest[0] == "0"       # /sys/firmware: an empty tmpfs
    assert int(rest[1]) >= 4    # /proc/sys, bus, fs, sysrq-trigger (+ irq): read-only mounts


def test_dev_holds_only_the_listed_nodes(rt):
    out = rt.run("--rm", str(rt.rootfs), "sh", "-c",
                 "ls -A /dev; echo --; ls -l /dev | grep '^c' | awk '{print $5 $6, $NF}'; "
                 "readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin")
    assert out.returncode == 0, out.stderr
    listing, rest = out.stdout.split("--\n")
    assert sorted(listing.split()) == sorted(
        ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue",
         "fd", "stdin", "stdout", "stderr"])
    nodes = dict(reversed(line.split()) for line in rest.splitlines()[:6])
    assert nodes == {"null": "1,3", "zero": "1,5", "full": "1,7", "random": "1,8",
                     "urandom": "1,9", "tty": "5,0"}
    assert rest.splitlines()[6:] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0"]


def test_no_fd_above_2_reaches_the_container(rt):
    # ls opens the directory it lists: that is the one extra fd (3) it shows.
    out = rt.run("--rm", str(rt.rootfs), "ls", "/proc/self/fd")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "1", "2", "3"]


def test_namespaces_differ_from_the_host_and_pid_is_1(rt):
    import os

    out = rt.run("--rm", str(rt.rootfs), "sh", "-c",
                 "echo $$; for n in mnt uts ipc net pid cgroup; do readlink /proc/self/ns/$n; done; "
                 "hostname; cat /proc/self/cgroup")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "1"
    for ns, inside in zip(("mnt", "uts", "ipc", "net", "pid", "cgroup"), lines[1:7]):
        assert inside != os.readlink(f"/proc/self/ns/{ns}"), ns
    assert lines[7].startswith("na-")
    assert all(line.endswith(":/") for line in lines[8:]), lines[8:]  # the cgroup ns root


def test_seccomp_denies_namespaces_and_mount_and_clone3_is_enosys(rt):
    out = rt.run("--rm", str(rt.rootfs), "sh", "-c",
                 "unshare -n true 2>&1; echo unshare=$?; mount -t tmpfs x /tmp 2>&1; echo mount=$?")
    assert out.returncode == 0, out.stderr
    assert "unshare=1" in out.stdout and "mount=1" in out.stdout
    assert "Operation not permitted" in out.stdout


def test_the_rootfs_directory_is_never_written(rt):
    out = rt.run("--rm", str(rt.rootfs), "sh", "-c",
                 "echo x > /written; rm /bin/ls; cat /written; test -e /bin/ls; echo ls=$?")
    assert out.stdout.split() == ["x", "ls=1"]   # gone inside: the overlay recorded a whiteout
    assert not (rt.rootfs / "written").exists()
    assert (rt.rootfs / "bin/ls").is_symlink()


@pytest.mark.vm
def test_default_container_in_one_look(rt):
    script = ("grep -E '^(CapEff|CapInh|CapAmb|Seccomp):' /proc/self/status; "
              "(echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null; echo write=$?; "
              "ls -A /dev | tr '\\n' ' '; echo; ls /proc/self/fd | tr '\\n' ' '; echo; "
              "ls /sys/fs/cgroup | wc -l")
    out = rt.run("--rm", str(rt.rootfs), "sh", "-c", script)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[-1] for line in lines[:4]] == ["0000000000000000", "00000000a80425fb",
                                                        "0000000000000000", "2"]
    assert lines[4] == "write=1"
    assert sorted(lines[5].split()) == sorted(
        ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue",
         "fd", "stdin", "stdout", "stderr"])
    assert lines[6].split() == ["0", "1", "2", "3"]
    assert int(lines[7]) > 0        # the container's own cgroup is visible at /sys/fs/cgroup
