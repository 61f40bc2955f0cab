"""The interpreter that enters containers: a copy of Python the container cannot change.

CVE-2019-5736 (runc, February 2019). `/proc/self/exe` is a magic link: opening it reaches the
file the process was started from, whatever mount namespace or root directory the process is in
now. A runtime's processes enter the container — the container's init runs our code after
pivot_root until its execve; an `exec`'d process joins the container's namespaces before its
execve — and until that execve their /proc/self/exe is the *runtime's* binary on the host. For us
that is the host's Python interpreter. Two ways for a container to use it:

- its program is a script that starts with `#!/proc/self/exe`. The kernel resolves that
  interpreter path while the init (or exec'd process) is still executing our code, so the
  container runs the host's interpreter binary, and `/proc/self/exe` of *that* process is the
  host file: with CAP_FOWNER/CAP_CHOWN (in the default set) it can chmod/chown it, and open it
  for writing once no other process runs it (the CVE overwrote runc's binary this way: root on
  the host at the next `runc` call, or every node broken);
- a process already in the container opens /proc/<pid>/exe of the runtime's process as it
  joins. PR_SET_DUMPABLE(0) (init.py, execproc.py) closes that door, but not the first.

So every process that enters a container must have been *executed* from a file the container
cannot change. `/proc/self/exe` only changes at execve, so this costs one execve of the
interpreter — paid once per process that forks containers (a zygote: every worker, supervisor,
init and exec'd process it forks inherits the sealed executable, at no cost per container), not
once per container. runc's answers, and ours:

1. A read-only bind mount that belongs to no mount namespace (runc 1.0–1.1's `try_bindfd`, which
   runc 1.1.5 — the peer on these machines — uses). A throw-away child unshares a mount
   namespace (private: nothing it does is seen by the host or makes mount events there),
   bind-mounts the interpreter over itself, remounts that read-only, opens it with O_PATH and
   hands the fd back. When the child exits, its namespace goes, and the mount lives on only
   through our fd — "detached": nobody can remount it read-write, since a remount needs the mount
   to be in the caller's namespace. Executed through that fd, /proc/self/exe leads to a file on
   a read-only mount: chmod, chown, utimes and open-for-write fail with EROFS. No copy is made:
   the pages of the binary stay shared with every other Python on the host.
2. If we may not make a mount namespace: a sealed memfd copy (runc's `clone_binary`, its only way
   since 1.1.10). memfd_create, copy the binary in, seal it against writes, growth, shrinking and
   further sealing, execute the memfd. The container can only reach that private copy (a write is
   EPERM; a chmod changes the copy's mode, never a host file). It costs a copy of the binary
   (6.8 MB here) for as long as a process runs from it — a supervisor lives as long as its
   container — which is why it is the fallback, not the first choice.

Executing from an fd changes nothing for Python itself: it finds its prefix (and the venv) from
argv[0], which we set to sys.executable, not from /proc/self/exe.

    is_sealed()      is this process running from such a file?
    exec_sealed()    replace this process with the same interpreter, sealed, running `args`
    ensure_sealed()  re-execute the current command line sealed, unless it already is (a CLI
                     that is about to create containers in its own process calls this first)
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys

from runtime.errors import ContainerError

# A marker in the environment of a re-executed process: if it is not sealed after all, say so
# instead of re-executing for ever.
_MARK = "_NODEAGENT_SEALED_REEXEC"
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


class SealError(ContainerError):
    """Neither way of sealing the interpreter worked (see the module docstring)."""


def is_sealed() -> bool:
    """True if /proc/self/exe is on a read-only mount or is a write-sealed memfd."""
    try:
        if os.statvfs("/proc/self/exe").f_flag & os.ST_RDONLY:
            return True
        fd = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS) & _SEALS == _SEALS
    except OSError:
        return False  # EINVAL: a regular file, which cannot be sealed
    finally:
        os.close(fd)


def readonly_executable() -> int:
    """An O_PATH fd of our interpreter on a detached read-only bind mount (way 1 above)."""
    from runtime.sys import real
    from runtime.sys.consts import CLONE_NEWNS, MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT

    calls = real()  # (loads libc here, once, rather than in the child)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # single-threaded callers only (see ensure_sealed); this child runs no user code
        try:
            ours.close()
            calls.unshare(CLONE_NEWNS)
            calls.mount(None, "/", None, MS_REC | MS_PRIVATE)  # from here on, nothing reaches the host
            # The path, not /proc/self/exe itself: a bind mount's source must be in our own
            # namespace, and the magic link leads to the mount in the one we came from.
            path = os.readlink("/proc/self/exe")
            running, named = os.stat("/proc/self/exe"), os.stat(path)
            if (running.st_dev, running.st_ino) != (named.st_dev, named.st_ino):
                raise OSError(f"{path} is no longer the interpreter this process runs")
            calls.mount(path, path, None, MS_BIND)
            calls.mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            socket.send_fds(theirs, [b"ok"], [fd])
        except BaseException as e:  # noqa: BLE001 - the parent falls back to a memfd copy
            try:
                theirs.send(str(e).encode()[:1000] or b"failed")
            except OSError:
                pass
        finally:
            os._exit(0)
    theirs.close()
    try:
        message, fds, _, _ = socket.recv_fds(ours, 1024, 1)
    finally:
        ours.close()
        os.waitpid(pid, 0)
    if message != b"ok" or not fds:
        for fd in fds:
            os.close(fd)
        raise SealError(f"a read-only bind mount of the interpreter: {message.decode(errors='replace')}")
    return fds[0]


def sealed_copy() -> int:
    """A write-sealed memfd holding a copy of our interpreter (way 2 above)."""
    from runtime.sys.consts import MFD_EXEC

    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create("nodeagent-python", flags | MFD_EXEC)  # kernels >= 6.3 ask us to say
    except OSError:
        fd = os.memfd_create("nodeagent-python", flags)             # older ones refuse the flag
    try:
        src = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(src).st_size
            copied = 0
            while copied < size:
                n = os.sendfile(fd, src, None, size - copied)
                if n == 0:
                    raise SealError("the interpreter binary shrank while it was being copied")
                copied += n
        finally:
            os.close(src)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        return fd
    except BaseException:
        os.close(fd)
        raise


def sealed_executable() -> int:
    """An fd to execute our interpreter from, one way or the other."""
    try:
        return readonly_executable()
    except (OSError, SealError):
        return sealed_copy()


def exec_sealed(args: list[str], env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()) -> None:
    """Replace this process by our interpreter, run from a sealed file, with `args` after
    argv[0] (interpreter options, then a script, -c or -m, as on a command line). `pass_fds`
    stay open across the execve. Returns only by raising."""
    fd = sealed_executable()
    env = dict(os.environ if env is None else env)
    env[_MARK] = "1"
    for kept in pass_fds:
        os.set_inheritable(kept, True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()  # what is still buffered would be lost with this process image
        except (OSError, ValueError, AttributeError):
            pass
    try:
        os.execve(fd, [sys.executable, *args], env)
    finally:
        os.close(fd)


def ensure_sealed() -> None:
    """Return if this process already runs from a sealed interpreter; otherwise start this same
    command line again from one (the process is replaced: same pid, fds, cwd and environment).
    Call it early, before anything a repetition would do twice, from a single-threaded process."""
    if is_sealed():
        os.environ.pop(_MARK, None)
        return
    if os.environ.pop(_MARK, None):
        raise SealError("re-executed from a sealed copy of the interpreter, but /proc/self/exe is "
                        "still not read-only or sealed")
    exec_sealed(list(sys.orig_argv[1:]))


def python_path_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a fresh interpreter that must import this very `runtime` package
    (the checkout it was loaded from, not another installed copy): its parent directory first
    on PYTHONPATH."""
    env = dict(os.environ if env is None else env)
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [here] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != here]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
