"""--explain prints each call with the shell command that does the same."""

from __future__ import annotations

import os

from runtime.explain import Explainer, ExplainingSyscalls
from runtime.sys import RecordingSyscalls
from runtime.sys.consts import (CLONE_NEWNET, CLONE_NEWNS, MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC,
                                MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT)


def _explained(fn) -> tuple[list[str], RecordingSyscalls]:
    r, w = os.pipe()
    inner = RecordingSyscalls()
    fn(ExplainingSyscalls(inner, Explainer(w, "test")))
    os.close(w)
    with os.fdopen(r) as f:
        return f.read().splitlines(), inner


def test_calls_are_printed_with_their_shell_equivalent_and_still_made():
    lines, inner = _explained(lambda s: (
        s.unshare(CLONE_NEWNS | CLONE_NEWNET),
        s.mount(None, "/", None, MS_REC | MS_PRIVATE),
        s.mount("proc", "/r/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC),
        s.mount("/src", "/r/vol", None, MS_BIND | MS_REC),
        s.mount(None, "/r/vol", None, MS_BIND | MS_REMOUNT | MS_RDONLY),
        s.umount2("/old", MNT_DETACH),
        s.openat2(-100, "x", 0),
    ))
    shell = [l.strip()[2:] for l in lines if l.strip().startswith("$ ")]
    assert shell == ["unshare --mount --net", "mount --make-rprivate /",
                     "mount -t proc -o nosuid,nodev,noexec proc /r/proc",
                     "mount --rbind /src /r/vol", "mount -o remount,bind,ro /r/vol", "umount -l /old"]
    assert inner.names() == ["unshare", "mount", "mount", "mount", "mount", "umount2", "openat2"]
    assert not any("openat2" in l for l in lines)       # lookups are not worth a line


def test_an_explainer_without_an_fd_is_silent():
    assert not Explainer(None)
    Explainer(None).step("nothing happens")
