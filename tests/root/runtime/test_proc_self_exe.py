"""CVE-2019-5736: a container reaching the runtime's own binary through /proc/self/exe.

The container's program is a script whose interpreter is `#!/proc/self/exe`. The kernel resolves
that path while the runtime's process (our Python, or runc) is still the one executing, so the
container ends up running the *runtime's* binary — with an LD_PRELOAD library from the image that
runs first and tries to change the file behind its own /proc/self/exe: chmod and chown (to the
values it already has, so a failure of this test harms nothing, but changes the ctime), utimensat
(to the same times), and open for writing (never written to). The host's binary must come out
unchanged: mode, owner, size, content, mtime and ctime. Under runc 1.1.5 (its binary is a
read-only bind mount by then) every attempt fails with EROFS; ours must fail alike.

The same from a process joining the container (`runtime exec` / `runc exec`), through a zygote
(the path a node uses: its workers inherit the sealed interpreter), and from a program that
creates a container in-process without having sealed itself (its supervisor is started afresh).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.busybox import make_rootfs
from tests.childproc import run_child

PAYLOAD = r"""
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *result(int rc) { return rc == 0 ? "ok" : strerror(errno); }

__attribute__((constructor)) static void attack(void) {
    const char *exe = "/proc/self/exe";
    struct stat st;
    if (stat(exe, &st) != 0) { printf("stat: %s\n", strerror(errno)); fflush(stdout); _exit(0); }
    printf("attack ran\n");
    printf("chmod: %s\n", result(chmod(exe, st.st_mode & 07777)));
    printf("chown: %s\n", result(chown(exe, st.st_uid, st.st_gid)));
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    printf("utimensat: %s\n", result(utimensat(AT_FDCWD, exe, times, 0)));
    int fd = open(exe, O_WRONLY);
    printf("open for writing: %s\n", fd >= 0 ? "ok" : strerror(errno));
    fflush(stdout);
    _exit(0);
}
"""
ATTEMPTS = ("chmod", "chown", "utimensat", "open for writing")


def _libraries(binary: str) -> set[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        for word in line.split():
            if word.startswith("/"):
                found.add(word)
    return found


@pytest.fixture(scope="module")
def attack_rootfs(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the LD_PRELOAD payload (apt-get install gcc)")
    root = make_rootfs(tmp_path_factory.mktemp("cve-2019-5736") / "rootfs")
    src = root.parent / "payload.c"
    src.write_text(PAYLOAD)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(root / "payload.so"), str(src)], check=True)
    runc = shutil.which("runc")
    # What the runtime binaries need to start under LD_PRELOAD: their shared libraries, in the
    # image at the paths the host's loader looks for them.
    for binary in [os.path.realpath(sys.executable)] + ([runc] if runc else []):
        for lib in _libraries(binary):
            dest = root / lib.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                shutil.copy(lib, dest)  # follows the symlink: the library itself
    (root / "attack").write_text("#!/proc/self/exe\n")
    (root / "attack").chmod(0o755)
    return root


def _fingerprint(path: str) -> dict:
    st = os.stat(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid, "size": st.st_size,
            "mtime": st.st_mtime_ns, "ctime": st.st_ctime_ns, "sha256": digest}


def _own_cgroup_path() -> str:
    from runtime.cgroups.layout import detect

    layout = detect()
    paths = {h.own_path for h in layout.v1.values()} | ({layout.unified.own_path} if layout.unified else set())
    return max(paths, key=len).rstrip("/")


def _bundle(rt, rootfs: Path, cid: str, args: tuple[str, ...]) -> Path:
    from runtime.spec.bundle import write_bundle
    from runtime.spec.defaults import default_spec

    spec = default_spec(args, str(rootfs), readonly=True, hostname="cve")
    process = dataclasses.replace(spec.process, env=spec.process.env + ("LD_PRELOAD=/payload.so",))
    # Inside our own cgroup (runc makes the path it is given; we may only create cgroups there).
    linux = dataclasses.replace(spec.linux, cgroups_path=f"{_own_cgroup_path()}/cve-{os.getpid()}/{cid}")
    bundle = rt.base / f"bundle-{cid}"
    bundle.mkdir()
    write_bundle(dataclasses.replace(spec, process=process, linux=linux), str(bundle))
    return bundle


def _refused(output: str) -> dict[str, str]:
    """Each attempt → what it got, after checking the payload did run."""
    lines = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    assert "attack ran" in output, output
    return {name: lines.get(name, "missing") for name in ATTEMPTS}


def _assert_host_binary_unchanged(binary: str, before: dict, got: dict[str, str]) -> None:
    assert _fingerprint(binary) == before, f"{binary} changed: {got}"
    for name, outcome in got.items():
        assert outcome != "ok", f"{name} of /proc/self/exe succeeded from inside the container"


def _remove_cgroups(prefix: str) -> None:
    for mount in os.listdir("/sys/fs/cgroup"):
        d = Path("/sys/fs/cgroup", mount, prefix.strip("/"))
        for sub in sorted(d.glob("**/"), key=lambda p: -len(p.parts)) if d.is_dir() else ():
            try:
                sub.rmdir()
            except OSError:
                pass


@pytest.fixture
def host_python() -> str:
    return os.path.realpath(sys.executable)


@pytest.fixture(autouse=True)
def _cgroups_cleanup():
    yield
    _remove_cgroups(f"{_own_cgroup_path()}/cve-{os.getpid()}")


def test_the_containers_program_cannot_change_our_interpreter(rt, attack_rootfs, host_python):
    before = _fingerprint(host_python)
    cid = rt.name("cve")
    out = rt.runtime("run", "-b", str(_bundle(rt, attack_rootfs, cid, ("/attack",))), cid)
    got = _refused(out.stdout)
    _assert_host_binary_unchanged(host_python, before, got)
    assert set(got.values()) <= {"Read-only file system", "Text file busy"}, got


def test_through_a_zygote_and_from_exec(rt, attack_rootfs, host_python):
    before = _fingerprint(host_python)
    started = rt.runtime("zygote", "-d")
    assert started.returncode == 0, started.stderr
    zygote_pid = int(started.stdout)
    try:
        assert os.stat(f"/proc/{zygote_pid}/exe") != os.stat(host_python) or \
            os.statvfs(f"/proc/{zygote_pid}/exe").f_flag & os.ST_RDONLY
        cid = rt.name("cve")
        out = rt.runtime("run", "-b", str(_bundle(rt, attack_rootfs, cid, ("/attack",))), cid)
        _assert_host_binary_unchanged(host_python, before, _refused(out.stdout))

        cid = rt.name("cve")
        out = rt.runtime("run", "-d", "-b", str(_bundle(rt, attack_rootfs, cid, ("sleep", "300"))), cid)
        assert out.returncode == 0, out.stderr
        out = rt.runtime("exec", "-e", "LD_PRELOAD=/payload.so", cid, "/attack")
        _assert_host_binary_unchanged(host_python, before, _refused(out.stdout))
        rt.runtime("delete", "--force", cid)
    finally:
        os.kill(zygote_pid, 15)


def test_exec_without_a_zygote(rt, attack_rootfs, host_python):
    before = _fingerprint(host_python)
    cid = rt.name("cve")
    out = rt.runtime("run", "-d", "-b", str(_bundle(rt, attack_rootfs, cid, ("sleep", "300"))), cid)
    assert out.returncode == 0, out.stderr
    out = rt.runtime("exec", "-e", "LD_PRELOAD=/payload.so", cid, "/attack")
    _assert_host_binary_unchanged(host_python, before, _refused(out.stdout))
    rt.runtime("delete", "--force", cid)


def test_a_creator_that_did_not_seal_itself_gets_a_sealed_supervisor(rt, attack_rootfs, host_python):
    """A program calling runtime.container.run in its own (unsealed) process."""
    before = _fingerprint(host_python)
    cid = rt.name("cve")
    bundle = _bundle(rt, attack_rootfs, cid, ("/attack",))
    out_file = rt.base / "out"
    got = run_child(f"""
        from runtime.container.create import CreateOptions
        from runtime.container.run import run
        from runtime.process import sealed
        from runtime.spec.bundle import load_bundle
        assert not sealed.is_sealed()
        fd = os.open({str(out_file)!r}, os.O_WRONLY | os.O_CREAT, 0o600)
        saved = os.dup(1)
        os.dup2(fd, 1)
        opts = CreateOptions(root={str(rt.root)!r}, storage={str(rt.storage)!r}, stdio="inherit",
                             stdin_open=False)
        code = run({cid!r}, load_bundle({str(bundle)!r}), opts, remove=True)
        os.dup2(saved, 1)
        report({{"code": code}})
    """, timeout=60)
    assert got["code"] == 0
    _assert_host_binary_unchanged(host_python, before, _refused(out_file.read_text()))


def test_runc_refuses_the_same_attempts(rt, attack_rootfs):
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed (scripts/deps/apt-test.txt lists it)")
    binary = os.path.realpath(runc)
    before = _fingerprint(binary)
    state = str(rt.base / "runc")
    cid = rt.name("cve")
    out = subprocess.run([runc, "--root", state, "run", "-b", str(_bundle(rt, attack_rootfs, cid, ("/attack",))),
                          cid], capture_output=True, text=True, timeout=60)
    got = _refused(out.stdout)
    _assert_host_binary_unchanged(binary, before, got)
    assert set(got.values()) <= {"Read-only file system", "Text file busy"}, got

    cid = rt.name("cve")
    subprocess.run([runc, "--root", state, "run", "-d", "-b",
                    str(_bundle(rt, attack_rootfs, cid, ("sleep", "300"))), cid],
                   check=True, timeout=60, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    try:
        out = subprocess.run([runc, "--root", state, "exec", "-e", "LD_PRELOAD=/payload.so", cid, "/attack"],
                             capture_output=True, text=True, timeout=60)
        _assert_host_binary_unchanged(binary, before, _refused(out.stdout))
    finally:
        subprocess.run([runc, "--root", state, "delete", "--force", cid], timeout=60)
