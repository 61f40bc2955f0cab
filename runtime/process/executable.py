"""Finding the program to run inside the container, and saying clearly why it cannot run.

Done by the container's init after pivot_root (so "/" is the container's root) and before it
reports "created", so a missing program is an error of `create` — as with runc — not a container
that starts and dies with exit code 127.

execve(2) answers ENOENT for three different problems, and users meet all three:

- the file is not there (a typo, or the image does not have it);
- the file is a script whose interpreter (the "#!" line) is not there — often because the script
  was saved with Windows line endings, so the kernel looks for "/bin/sh\\r";
- the file is a dynamically linked program whose loader (PT_INTERP, e.g.
  /lib64/ld-linux-x86-64.so.2) is not in the image — a glibc binary copied into a busybox image.

We check all three before exec, and name the one that applies.
"""

from __future__ import annotations

import os
import stat
import struct

from runtime.errors import StepError

_STEP = "find the executable"


def _is_executable_file(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)


def find_executable(name: str, path_env: str | None, cwd: str) -> str:
    """The path execve should get for argv[0] `name`, as a shell's PATH search would find it."""
    if "/" in name:
        candidate = name if name.startswith("/") else os.path.join(cwd, name)
        if not os.path.lexists(candidate):
            raise StepError(_STEP, f"{name!r}: no such file in the container's root filesystem")
        if not _is_executable_file(candidate):
            raise StepError(_STEP, f"{name!r} is not an executable file (permission bits or a directory)")
        check_interpreter(candidate)
        return candidate
    search = path_env if path_env is not None else "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for directory in search.split(":"):
        candidate = os.path.join(directory or ".", name)
        if _is_executable_file(candidate):
            check_interpreter(candidate)
            return candidate
    raise StepError(_STEP, f"executable {name!r} not found in $PATH ({search}) of the container")


def check_interpreter(path: str) -> None:
    """Raise StepError if `path` would fail execve with ENOENT although it exists."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return  # unreadable but executable (mode 0111): let execve decide
    if head.startswith(b"#!"):
        line = head[2:].split(b"\n", 1)[0]
        parts = line.strip(b" \t").split(None, 1)
        if not parts:
            raise StepError(_STEP, f"{path}: the #! line names no interpreter")
        interp = parts[0].decode(errors="replace")
        if interp.endswith("\r") or line.endswith(b"\r"):
            raise StepError(_STEP, f"{path}: its #! line ends in a carriage return "
                                   f"(\"{interp.rstrip(chr(13))}\\r\"): the script has Windows (CRLF) "
                                   "line endings; convert it with dos2unix")
        if not os.path.exists(interp):
            raise StepError(_STEP, f"{path} is a script for {interp} (its #! line), which is not in "
                                   "the container's root filesystem")
        return
    loader = _elf_interpreter(path, head)
    if loader and not os.path.exists(loader):
        raise StepError(_STEP, f"{path} is dynamically linked, but its loader {loader} is not in the "
                               "container's root filesystem (a binary built for another image?)")


def _elf_interpreter(path: str, head: bytes) -> str | None:
    """PT_INTERP of a 64-bit little-endian ELF file, or None."""
    if not head.startswith(b"\x7fELF") or len(head) < 64 or head[4] != 2 or head[5] != 1:
        return None
    phoff, = struct.unpack_from("<Q", head, 32)
    phentsize, phnum = struct.unpack_from("<HH", head, 54)
    try:
        with open(path, "rb") as f:
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            for i in range(phnum):
                p_type, = struct.unpack_from("<I", table, i * phentsize)
                if p_type == 3:  # PT_INTERP
                    offset, = struct.unpack_from("<Q", table, i * phentsize + 8)
                    size, = struct.unpack_from("<Q", table, i * phentsize + 32)
                    f.seek(offset)
                    return f.read(size).rstrip(b"\0").decode(errors="replace")
    except (OSError, struct.error):
        return None
    return None
