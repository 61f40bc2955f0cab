"""The defaults of an unprivileged container, against the numbers users check."""

from __future__ import annotations

import pytest

from runtime.spec.defaults import (DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS,
                                   default_capabilities, default_spec)
from runtime.spec.runtime_default import NAMESPACE_CLONE_FLAGS, runtime_default_seccomp
from runtime.sys.caps import mask_of
from runtime.sys.consts import (CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS,
                                CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS)


def test_the_14_default_capabilities_are_capeff_a80425fb():
    caps = default_capabilities()
    assert len(caps.effective) == 14
    assert mask_of(caps.effective) == mask_of(caps.permitted) == mask_of(caps.bounding) == 0xA80425FB
    assert caps.inheritable == () and caps.ambient == ()


def test_add_and_drop():
    caps = default_capabilities(add=("SYS_ADMIN",), drop=("net_raw",))
    assert mask_of(caps.effective) == (0xA80425FB | 1 << 21) & ~(1 << 13)
    assert default_capabilities(drop=("ALL",)).effective == ()
    with pytest.raises(ValueError, match="CAP_NOPE"):
        default_capabilities(add=("NOPE",))


def test_masked_and_readonly_paths_are_the_documented_lists():
    assert set(DEFAULT_MASKED_PATHS) == {
        "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
        "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware"}
    assert set(DEFAULT_READONLY_PATHS) == {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                           "/proc/sysrq-trigger"}


def test_default_spec_has_every_namespace_but_user_and_runtime_default_seccomp():
    spec = default_spec(("true",), "/r")
    assert {n.type for n in spec.linux.namespaces} == {"pid", "network", "ipc", "uts", "mount", "cgroup"}
    assert spec.linux.seccomp == runtime_default_seccomp(spec.process.capabilities.bounding)
    assert spec.process.no_new_privileges is False


def _rules(profile, name):
    return [r for r in profile.syscalls if name in r.names]


def test_runtime_default_gates_namespace_syscalls_on_cap_sys_admin():
    plain = runtime_default_seccomp(default_capabilities().bounding)
    assert plain.default_action == "SCMP_ACT_ERRNO" and plain.default_errno_ret == 1
    for name in ("mount", "unshare", "setns", "bpf", "perf_event_open", "umount2"):
        assert _rules(plain, name) == [], name
    (clone,) = _rules(plain, "clone")
    assert clone.args[0].op == "SCMP_CMP_MASKED_EQ" and clone.args[0].value_two == 0
    assert NAMESPACE_CLONE_FLAGS == (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC
                                     | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)
    (clone3,) = _rules(plain, "clone3")
    assert (clone3.action, clone3.errno_ret) == ("SCMP_ACT_ERRNO", 38)   # ENOSYS: glibc falls back
    admin = runtime_default_seccomp(default_capabilities(add=("SYS_ADMIN",)).bounding)
    for name in ("mount", "unshare", "setns", "bpf", "perf_event_open", "clone", "clone3"):
        assert any(r.action == "SCMP_ACT_ALLOW" and not r.args for r in _rules(admin, name)), name
    for name in ("read", "write", "execve", "openat2", "close_range", "pidfd_open"):
        assert _rules(plain, name)[0].action == "SCMP_ACT_ALLOW"
