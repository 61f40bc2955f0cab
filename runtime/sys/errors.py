"""The error every failed syscall in runtime.sys raises."""

from __future__ import annotations

import os


class SyscallError(OSError):
    """A syscall failed. Carries the errno, the call's name and the arguments it was given.

    It is an OSError (so `except OSError` still catches it and `.errno` works), and its message
    names the call the way a reader would write it, e.g.
    ``mount('overlay', '/run/x/rootfs', 'overlay', MS_NODEV, 'lowerdir=/a'): [Errno 1] Operation not permitted``.
    """

    def __init__(self, err: int, call: str, args: tuple[object, ...] = ()):
        super().__init__(err, os.strerror(err))
        self.call = call
        self.call_args = args

    def __str__(self) -> str:
        shown = ", ".join(repr(a) for a in self.call_args)
        return f"{self.call}({shown}): [Errno {self.errno}] {self.strerror}"

    def __reduce__(self):  # keep pickling (e.g. through multiprocessing) faithful
        return (type(self), (self.errno, self.call, self.call_args))


class _Named:
    """An argument that prints as a symbolic name (MS_BIND|MS_REC) rather than its number."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def named(text: str) -> object:
    """Wrap a symbolic rendering of an argument for SyscallError messages."""
    return _Named(text)
