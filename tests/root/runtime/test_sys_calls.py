"""The syscalls the runtime added to runtime.sys, made for real (each in a child interpreter)."""

from __future__ import annotations

import errno
import os

from tests.childproc import run_child


def test_openat2_in_root_keeps_absolute_symlinks_and_dotdot_inside(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/hosts").write_text("inside\n")
    os.symlink("/etc/hosts", root / "link")          # absolute: must mean <root>/etc/hosts
    os.symlink("../../../../../etc", root / "up")    # climbing: must stop at <root>
    out = run_child(f"""
        import errno
        from runtime.sys import real, SyscallError
        from runtime.sys.consts import RESOLVE_IN_ROOT, RESOLVE_NO_SYMLINKS
        s = real()
        rootfd = os.open("{root}", os.O_PATH | os.O_DIRECTORY)
        def read(path, resolve):
            fd = s.openat2(rootfd, path, os.O_RDONLY, resolve)
            try:
                return os.read(fd, 100).decode()
            finally:
                os.close(fd)
        try:
            read("link", RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)
            nosym = None
        except SyscallError as e:
            nosym = e.errno
        report({{"link": read("link", RESOLVE_IN_ROOT), "up": read("up/hosts", RESOLVE_IN_ROOT),
                 "nosym": nosym}})
    """)
    assert out == {"link": "inside\n", "up": "inside\n", "nosym": errno.ELOOP}


def test_close_range_cloexec_closes_fds_at_exec_only():
    out = run_child("""
        import subprocess
        from runtime.sys import real
        from runtime.sys.consts import CLOSE_RANGE_CLOEXEC
        fd = os.dup2(os.open("/dev/null", os.O_RDONLY), 50)   # well clear of the child's own fds
        os.set_inheritable(fd, True)
        real().close_range(3, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
        still_open = os.path.exists(f"/proc/self/fd/{fd}")
        seen = subprocess.run(["ls", "/proc/self/fd"], capture_output=True, text=True,
                              close_fds=False).stdout.split()
        report({"still_open": still_open, "fd": fd, "child_sees": seen})
    """)
    assert out["still_open"] is True
    assert str(out["fd"]) not in out["child_sees"]


def test_mknod_setrlimit_and_a_seccomp_filter_for_real(tmp_path):
    out = run_child(f"""
        import errno, stat, resource
        from runtime.sys import real, SyscallError
        from runtime.sys.seccomp import compile_filter, action, SCMP_ACT_ALLOW
        s = real()
        s.mknod("{tmp_path}/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        st = os.stat("{tmp_path}/null")
        s.setrlimit(resource.RLIMIT_NOFILE, 64, 128)
        limits = resource.getrlimit(resource.RLIMIT_NOFILE)
        s.set_no_new_privs()
        # Deny only mkdir (with EXDEV, which mkdir itself never returns) and watch the kernel answer.
        deny = action("SCMP_ACT_ERRNO", errno.EXDEV)
        program = compile_filter(SCMP_ACT_ALLOW, [], [("mkdir", deny, []), ("mkdirat", deny, [])])
        s.seccomp_set_filter(program)
        try:
            os.mkdir("{tmp_path}/d")
            err = None
        except OSError as e:
            err = e.errno
        report({{"rdev": [os.major(st.st_rdev), os.minor(st.st_rdev)], "limits": list(limits),
                 "mode": s.get_seccomp(), "mkdir": err}})
    """)
    assert out["rdev"] == [1, 3]
    assert out["limits"] == [64, 128]
    assert out["mode"] == 2
    assert out["mkdir"] == errno.EXDEV


def test_keepcaps_keeps_permitted_capabilities_across_setuid():
    out = run_child("""
        from runtime.sys import real, CapSets
        s = real()
        s.set_keepcaps(True)
        s.setgroups([])
        s.setresgid(65534, 65534, 65534)
        s.setresuid(65534, 65534, 65534)
        after_setuid = s.capget()
        s.capset(CapSets(1 << 0, after_setuid.permitted, 0))     # CAP_CHOWN back into effective
        report({"uid": os.getuid(), "permitted": after_setuid.permitted,
                "effective_before": after_setuid.effective, "effective": s.capget().effective})
    """)
    assert out["uid"] == 65534
    assert out["permitted"] != 0 and out["effective_before"] == 0
    assert out["effective"] == 1
