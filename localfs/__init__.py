"""Files on the local disk, written and removed the one way this project does it.

Every package writes files that a reader (another process, or the same one after a crash) must
see whole: container state (runtime), image records (runtime.images), CNI configs and caches (cni),
pod volumes and records (nodeagent), the kubeconfig (controlplane). They all use `write_atomic`:

    1. write a temporary file in the target's own directory (rename(2) is atomic only within one
       filesystem), under a name no other writer can share (pid + random: two writers never
       truncate each other's temporary file);
    2. fchmod it to the wanted mode and fsync it (its data reaches the disk before its name does);
    3. rename it over the target (a reader sees the old file or the new one, never half of one;
       a symlink at the target is replaced itself, never followed);
    4. fsync the directory (the rename itself survives a crash).

On tmpfs (/run, where container state lives on a real node) both fsyncs return at once; on a disk
they cost what durability costs — 0.3 ms here on an idle machine, 1-10 ms on a loaded one — which
is what "written" must mean for what a node acts on after a reboot (images, CNI configs and caches,
credentials). `durable=False` skips steps 2's fsync and 4 and keeps the atomicity: for files that
mean nothing after a reboot because what they describe dies with the machine — a container's
state files, the agent's records of its running containers, pid files. A process crash needs no
fsync (the page cache outlives the process); a machine crash takes the containers with it. runc
writes its state.json the same way. (On the container-start path that is four fsync pairs saved:
one container start would otherwise wait for the disk four times.)

`remove_tree` is rm -rf that never follows a symlink out of the tree, and copes with directories
an image made unreadable (mode 000 blocks even their owner when that owner is not root).

Neither imports shutil or tempfile: shutil loads the bz2 and lzma libraries, milliseconds on a
container's way in and out (this module is on that path).

Below every other package here (each may import it); it imports the standard library only.
May import: the standard library only.
"""

from __future__ import annotations

import os
import stat

__all__ = ["write_atomic", "publish", "fsync_dir", "remove_tree"]


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes | str, mode: int = 0o644, *,
                 durable: bool = True) -> None:
    """Replace `path` with `data` (text is UTF-8), whole or not at all, and durably unless told
    otherwise (the module's docstring gives the steps, and when not to). The directory must exist."""
    path = os.fspath(path)
    if isinstance(data, str):
        data = data.encode()
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)   # not left to the umask: the caller's mode is the file's
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if durable:
            _rename_durably(tmp, path)
        else:
            os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Steps 2-4 of write_atomic for a file written some other way (a download streamed to a
    temporary name in the same directory or filesystem): fsync it, rename it over `path`, fsync
    `path`'s directory."""
    fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _rename_durably(tmp, path)


def _rename_durably(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    os.rename(tmp, path)
    fsync_dir(os.path.dirname(os.fspath(path)) or ".")


def remove_tree(path: str | os.PathLike) -> None:
    """rm -rf `path`: a symlink (at the top or inside) is removed, never followed; gone already is
    fine. Another error (EBUSY from a mount point, ...) is raised."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        _unlink(path)
        return
    try:
        _remove_contents_and(path)
        return
    except OSError:
        pass
    # An unreadable directory inside: make every directory ours to list and empty (top-down, so
    # each one is opened before os.walk descends into it), then remove again.
    os.chmod(path, stat.S_IRWXU)
    for directory, dirs, _ in os.walk(path):
        for d in dirs:
            full = os.path.join(directory, d)
            if not os.path.islink(full):
                os.chmod(full, stat.S_IRWXU)
    _remove_contents_and(path)


def _remove_contents_and(path: str) -> None:
    for directory, dirs, files in os.walk(path, topdown=False):
        for name in files:
            _unlink(os.path.join(directory, name))
        for name in dirs:
            full = os.path.join(directory, name)
            if os.path.islink(full):   # os.walk lists a symlink to a directory among the dirs
                _unlink(full)
            else:
                try:
                    os.rmdir(full)
                except FileNotFoundError:
                    pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
