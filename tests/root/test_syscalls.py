"""Every call of runtime.sys, made for real once, in a child interpreter (tests/childproc.py)."""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import subprocess

import pytest

from runtime.sys import SyscallError, real
from tests.childproc import run_child


def test_unshare_uts_and_sethostname_change_only_the_child():
    out = run_child("""
        import socket
        from runtime.sys import real
        from runtime.sys.consts import CLONE_NEWUTS
        s = real()
        s.unshare(CLONE_NEWUTS)
        s.sethostname("na-uts-test")
        report({"hostname": socket.gethostname(), "ns": os.readlink("/proc/self/ns/uts")})
    """)
    assert out["hostname"] == "na-uts-test"
    assert socket.gethostname() != "na-uts-test"
    assert out["ns"] != os.readlink("/proc/self/ns/uts")


def test_setns_returns_to_the_original_namespace_and_checks_the_type():
    out = run_child("""
        import socket
        from runtime.sys import real, SyscallError
        from runtime.sys.consts import CLONE_NEWUTS, CLONE_NEWNET
        s = real()
        before = os.open("/proc/self/ns/uts", os.O_RDONLY)
        s.unshare(CLONE_NEWUTS)
        s.sethostname("na-setns-test")
        try:
            s.setns(before, CLONE_NEWNET)     # wrong type: the kernel refuses
            wrong = None
        except SyscallError as e:
            wrong = [e.errno, str(e)]
        s.setns(before, CLONE_NEWUTS)
        os.close(before)
        report({"hostname": socket.gethostname(), "wrong": wrong})
    """)
    assert out["hostname"] == socket.gethostname()
    assert out["wrong"][0] == errno.EINVAL
    assert "setns(" in out["wrong"][1] and "CLONE_NEWNET" in out["wrong"][1]


def test_mount_in_a_private_mount_namespace_is_invisible_outside(tmp_path):
    target = tmp_path / "mnt"
    target.mkdir()
    out = run_child(f"""
        from runtime.sys import real
        from runtime.sys.consts import CLONE_NEWNS, MS_REC, MS_PRIVATE, MS_NOSUID
        s = real()
        s.unshare(CLONE_NEWNS)
        s.mount(None, "/", None, MS_REC | MS_PRIVATE)
        s.mount("tmpfs", "{target}", "tmpfs", MS_NOSUID, "size=1m,mode=0750")
        with open("{target}/hello", "w") as f:
            f.write("hi")
        line = [l for l in open("/proc/self/mountinfo") if " {target} " in l]
        s.umount2("{target}")
        report({{"line": line, "after_umount": os.listdir("{target}")}})
    """)
    assert out["line"] and "tmpfs" in out["line"][0] and "nosuid" in out["line"][0]
    assert out["after_umount"] == []
    assert not (target / "hello").exists()
    assert str(target) not in open("/proc/self/mountinfo").read()


def test_pivot_root_makes_a_tmpfs_the_new_root_and_detaches_the_old(tmp_path):
    root = tmp_path / "newroot"
    root.mkdir()
    out = run_child(f"""
        from runtime.sys import real
        from runtime.sys.consts import CLONE_NEWNS, MS_REC, MS_PRIVATE, MNT_DETACH
        s = real()
        s.unshare(CLONE_NEWNS)
        s.mount(None, "/", None, MS_REC | MS_PRIVATE)
        s.mount("tmpfs", "{root}", "tmpfs", 0, "size=1m")
        os.mkdir("{root}/.oldroot")
        open("{root}/marker", "w").close()
        s.pivot_root("{root}", "{root}/.oldroot")
        os.chdir("/")
        s.umount2("/.oldroot", MNT_DETACH)
        os.rmdir("/.oldroot")
        report({{"listing": sorted(os.listdir("/"))}})
    """)
    assert out["listing"] == ["marker"]


def test_prctl_attributes_are_set_and_read_back():
    out = run_child("""
        import signal
        from runtime.sys import real
        s = real()
        s.set_pdeathsig(signal.SIGKILL)
        s.set_no_new_privs()
        s.set_child_subreaper(True)
        s.set_dumpable(False)
        status = open("/proc/self/status").read()
        report({"pdeathsig": s.get_pdeathsig(), "nnp": s.get_no_new_privs(),
                "subreaper": s.get_child_subreaper(), "dumpable": s.get_dumpable(),
                "status_nnp": [l for l in status.splitlines() if l.startswith("NoNewPrivs")]})
    """)
    assert out == {"pdeathsig": signal.SIGKILL, "nnp": True, "subreaper": True, "dumpable": False,
                   "status_nnp": ["NoNewPrivs:\t1"]}


def test_child_subreaper_adopts_orphaned_grandchildren():
    out = run_child("""
        import time
        from runtime.sys import real
        real().set_child_subreaper(True)
        r, w = os.pipe()
        if os.fork() == 0:                  # middle: fork a grandchild, then exit at once
            if os.fork() == 0:
                time.sleep(0.3)             # outlive the middle process
                os.write(w, str(os.getppid()).encode())
                os._exit(0)
            os._exit(0)
        os.close(w)
        os.wait()                           # the middle
        adopted_by = int(os.read(r, 32))
        os.wait()                           # the grandchild, now ours to reap
        report({"me": os.getpid(), "adopted_by": adopted_by})
    """)
    assert out["adopted_by"] == out["me"]


def test_capabilities_capset_and_bounding_and_ambient_show_in_proc_status():
    out = run_child("""
        from runtime.sys import real, CapSets
        from runtime.sys.caps import mask_of
        s = real()
        before = s.capget()
        raw = mask_of(["NET_RAW"])
        s.capset(CapSets(before.effective & ~raw, before.permitted & ~raw, 0))
        s.capbset_drop(16)                  # CAP_SYS_MODULE
        s.ambient_clear_all()
        status = dict(l.split(":\\t") for l in open("/proc/self/status").read().splitlines() if l.startswith("Cap"))
        after = s.capget()
        report({"before_eff": before.effective, "after_eff": after.effective,
                "status": {k: int(v, 16) for k, v in status.items()},
                "bnd_has_sys_module": s.capbset_read(16)})
    """)
    raw = 1 << 13
    assert out["before_eff"] & raw
    assert out["after_eff"] == out["before_eff"] & ~raw
    assert out["status"]["CapEff"] == out["after_eff"]
    assert out["status"]["CapBnd"] & (1 << 16) == 0
    assert out["bnd_has_sys_module"] is False
    assert out["status"]["CapAmb"] == 0


def test_capget_of_this_process_matches_proc_status():
    caps = real().capget()
    status = {k: int(v, 16) for k, v in (l.split(":\t") for l in open("/proc/self/status")
                                         .read().splitlines() if l.startswith("Cap"))}
    assert (caps.effective, caps.permitted, caps.inheritable) == \
        (status["CapEff"], status["CapPrm"], status["CapInh"])


def test_pidfd_open_signal_and_wait_for_exit():
    s = real()
    proc = subprocess.Popen(["sleep", "30"])
    fd = s.pidfd_open(proc.pid)
    try:
        readable, _, _ = select.select([fd], [], [], 0)
        assert readable == []               # still running
        s.pidfd_send_signal(fd, signal.SIGKILL)
        readable, _, _ = select.select([fd], [], [], 10)
        assert readable == [fd]             # the pidfd becomes readable when the process exits
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        os.close(fd)


def test_pidfd_open_of_a_gone_process_is_esrch():
    proc = subprocess.Popen(["true"])
    proc.wait()
    with pytest.raises(SyscallError) as e:
        real().pidfd_open(proc.pid)
    assert e.value.errno == errno.ESRCH
    assert f"pidfd_open({proc.pid}" in str(e.value)


def test_failed_mount_names_the_call_and_its_flags(tmp_path):
    from runtime.sys.consts import MS_BIND, MS_REC

    with pytest.raises(SyscallError) as e:
        real().mount(str(tmp_path / "nope"), str(tmp_path / "also-nope"), None, MS_BIND | MS_REC)
    assert e.value.errno == errno.ENOENT
    assert "MS_BIND|MS_REC" in str(e.value)
    assert isinstance(e.value, OSError)



def test_chroot_fd_makes_an_open_directory_the_root(tmp_path):
    (tmp_path / "inside").write_text("x")
    out = run_child(f"""
        from runtime.sys import real
        fd = os.open("{tmp_path}", os.O_RDONLY | os.O_DIRECTORY)
        real().chroot_fd(fd)
        os.close(fd)
        report({{"listing": os.listdir("/"), "cwd": os.getcwd()}})
    """)
    assert out == {"listing": ["inside"], "cwd": "/"}
