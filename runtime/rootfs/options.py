"""Mount options as config.json writes them ("nosuid", "ro", "rbind", "mode=755") → mount(2) arguments.

mount(8) and config.json mix two kinds of options in one list:

- flags the kernel's VFS understands for every filesystem, passed as bits in mount(2)'s
  `mountflags` (MS_NOSUID, MS_RDONLY, ...), including the bind and propagation requests;
- filesystem-specific options ("mode=755", "size=65536k", "newinstance"), passed as the `data`
  string, comma-separated, to the filesystem itself.

`parse` splits them. Propagation ("rprivate", "slave", ...) is kept apart because it is a separate
mount(2) call: the kernel does not accept a propagation change together with other flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.sys.consts import (MS_BIND, MS_DIRSYNC, MS_MANDLOCK, MS_NOATIME, MS_NODEV,
                                MS_NODIRATIME, MS_NOEXEC, MS_NOSUID, MS_NOSYMFOLLOW, MS_PRIVATE,
                                MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT, MS_SHARED, MS_SLAVE,
                                MS_STRICTATIME, MS_SYNCHRONOUS, MS_UNBINDABLE)

# option → (set these bits, clear these bits)
_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (MS_RDONLY, 0), "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0), "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0), "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0), "exec": (0, MS_NOEXEC),
    "sync": (MS_SYNCHRONOUS, 0), "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0),
    "mand": (MS_MANDLOCK, 0), "nomand": (0, MS_MANDLOCK),
    "noatime": (MS_NOATIME, 0), "atime": (0, MS_NOATIME),
    "nodiratime": (MS_NODIRATIME, 0), "diratime": (0, MS_NODIRATIME),
    "relatime": (MS_RELATIME, 0), "norelatime": (0, MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0), "nostrictatime": (0, MS_STRICTATIME),
    "nosymfollow": (MS_NOSYMFOLLOW, 0),
    "remount": (MS_REMOUNT, 0),
    "bind": (MS_BIND, 0), "rbind": (MS_BIND | MS_REC, 0),
}

_PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}

# The per-mount flags a bind mount's remount must repeat (a remount sets them all at once).
PER_MOUNT_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | \
    MS_RELATIME | MS_STRICTATIME | MS_NOSYMFOLLOW


@dataclass(frozen=True)
class MountOptions:
    flags: int = 0
    data: str | None = None
    propagation: int = 0

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)


def parse(options: tuple[str, ...] | list[str]) -> MountOptions:
    flags, data, propagation = 0, [], 0
    for opt in options:
        if opt in _FLAGS:
            on, off = _FLAGS[opt]
            flags = (flags | on) & ~off
        elif opt in _PROPAGATION:
            propagation = _PROPAGATION[opt]
        elif opt in ("tmpcopyup", "idmap", "ridmap"):
            raise ValueError(f"mount option {opt!r} is not supported by this runtime")
        else:
            data.append(opt)
    return MountOptions(flags, ",".join(data) or None, propagation)


def shell_options(flags: int, data: str | None) -> str:
    """The -o string mount(8) would take for these flags and data (for --explain)."""
    names = [name for name, (on, _) in _FLAGS.items()
             if on and flags & on == on and name not in ("bind", "rbind", "remount", "rw")]
    if flags & MS_BIND:
        names.insert(0, "rbind" if flags & MS_REC else "bind")
    if flags & MS_REMOUNT:
        names.insert(0, "remount")
    if data:
        names.append(data)
    return ",".join(dict.fromkeys(names))
