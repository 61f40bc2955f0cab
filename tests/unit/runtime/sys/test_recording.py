"""The recording fake: what unit tests of the runtime will lean on, so it must be faithful."""

from __future__ import annotations

import errno
import signal

import pytest

from runtime.sys import CapSets, RecordingSyscalls, SyscallError, Syscalls
from runtime.sys.consts import (CLONE_NEWNS, CLONE_NEWPID, MNT_DETACH, MS_NODEV, MS_NOEXEC,
                                MS_NOSUID, MS_PRIVATE, MS_REC)


def test_is_a_syscalls_and_records_calls_in_order_with_their_arguments():
    s = RecordingSyscalls()
    assert isinstance(s, Syscalls)
    s.unshare(CLONE_NEWNS | CLONE_NEWPID)
    s.mount(None, "/", None, MS_REC | MS_PRIVATE)
    s.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    s.pivot_root(".", ".")
    s.umount2(".", MNT_DETACH)
    assert s.names() == ["unshare", "mount", "mount", "pivot_root", "umount2"]
    assert s.calls_to("mount")[1].args == ("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    assert s.calls_to("unshare")[0].args == (CLONE_NEWNS | CLONE_NEWPID,)


def test_chroot_fd_is_recorded_with_its_fd():
    s = RecordingSyscalls()
    s.chroot_fd(9)
    assert s.calls_to("chroot_fd")[0].args == (9,)


def test_defaults_are_recorded_so_assertions_see_the_full_call():
    s = RecordingSyscalls()
    s.setns(7)
    s.umount2("/x")
    s.pidfd_open(42)
    assert [c.args for c in s.calls] == [(7, 0), ("/x", 0), (42, 0)]


def test_injected_failure_raises_syscall_error_and_is_still_recorded():
    s = RecordingSyscalls()
    s.fail("mount", errno.EPERM, when=lambda c: c.args[2] == "overlay")
    s.mount("tmpfs", "/a", "tmpfs")
    with pytest.raises(SyscallError) as e:
        s.mount("overlay", "/b", "overlay", 0, "lowerdir=/l")
    assert e.value.errno == errno.EPERM
    assert e.value.call == "mount"
    assert "mount('overlay', '/b', 'overlay', 0, 'lowerdir=/l')" in str(e.value)
    assert len(s.calls_to("mount")) == 2


def test_failure_can_be_limited_to_a_number_of_calls():
    s = RecordingSyscalls()
    s.fail("setns", errno.EINVAL, times=1)
    with pytest.raises(SyscallError):
        s.setns(3)
    s.setns(3)  # the second one succeeds
    assert len(s.calls_to("setns")) == 2


def test_prctl_getters_return_what_the_setters_stored():
    s = RecordingSyscalls()
    assert (s.get_dumpable(), s.get_no_new_privs(), s.get_child_subreaper(), s.get_pdeathsig()) == \
        (True, False, False, 0)
    s.set_dumpable(False)
    s.set_no_new_privs()
    s.set_child_subreaper(True)
    s.set_pdeathsig(signal.SIGKILL)
    assert (s.get_dumpable(), s.get_no_new_privs(), s.get_child_subreaper(), s.get_pdeathsig()) == \
        (False, True, True, signal.SIGKILL)


def test_capabilities_and_bounding_set_are_modelled():
    s = RecordingSyscalls(caps=CapSets(0b111, 0b111, 0))
    s.capset(CapSets(0b001, 0b011, 0))
    assert s.capget() == CapSets(0b001, 0b011, 0)
    assert s.capbset_read(16) is True
    s.capbset_drop(16)
    assert s.capbset_read(16) is False


def test_pidfd_open_hands_out_distinct_fds():
    s = RecordingSyscalls()
    assert s.pidfd_open(10) != s.pidfd_open(11)
