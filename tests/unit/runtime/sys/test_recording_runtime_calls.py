"""The calls the runtime added to the Syscalls protocol, on the recording fake."""

from __future__ import annotations

import errno

import pytest

from runtime.sys import RecordingSyscalls, SyscallError, Syscalls
from runtime.sys.consts import CLOSE_RANGE_CLOEXEC, RESOLVE_IN_ROOT


def test_new_calls_are_recorded_with_their_arguments():
    s = RecordingSyscalls()
    assert isinstance(s, Syscalls)
    fd = s.openat2(5, "etc/hosts", 0, RESOLVE_IN_ROOT)
    s.mknod("/dev/null", 0o20666, 259)
    s.close_range(3, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
    s.setgroups([1, 2])
    s.setresgid(2, 2, 2)
    s.set_keepcaps(True)
    s.setresuid(1, 1, 1)
    s.ambient_raise(5)
    s.setrlimit(7, 10, 20)
    s.seccomp_set_filter(b"\0" * 8)
    s.execve("/bin/sh", ["sh"], ["A=1"])
    assert fd >= 1000
    assert [c.name for c in s.calls] == ["openat2", "mknod", "close_range", "setgroups", "setresgid",
                                         "set_keepcaps", "setresuid", "ambient_raise", "setrlimit",
                                         "seccomp_set_filter", "execve"]
    assert s.calls_to("setgroups")[0].args == ((1, 2),)
    assert s.calls_to("execve")[0].args == ("/bin/sh", ("sh",), ("A=1",))
    assert s.get_seccomp() == 2


def test_failures_can_be_injected_into_the_new_calls():
    s = RecordingSyscalls()
    s.fail("openat2", errno.ELOOP, when=lambda c: c.args[1] == "proc")
    s.openat2(5, "dev", 0)
    with pytest.raises(SyscallError) as e:
        s.openat2(5, "proc", 0)
    assert e.value.errno == errno.ELOOP
