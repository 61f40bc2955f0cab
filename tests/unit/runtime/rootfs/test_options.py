"""config.json mount options → mount(2) flags, data and propagation."""

from __future__ import annotations

import pytest

from runtime.rootfs.options import parse, shell_options
from runtime.sys.consts import (MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY,
                                MS_REC, MS_STRICTATIME)


def test_flags_and_filesystem_data_are_split():
    o = parse(["nosuid", "strictatime", "mode=755", "size=65536k"])
    assert o.flags == MS_NOSUID | MS_STRICTATIME
    assert o.data == "mode=755,size=65536k"
    assert o.propagation == 0 and not o.is_bind


def test_bind_ro_and_propagation():
    o = parse(["rbind", "ro", "rprivate", "nodev"])
    assert o.flags == MS_BIND | MS_REC | MS_RDONLY | MS_NODEV
    assert o.propagation == MS_PRIVATE | MS_REC
    assert o.is_bind and o.data is None


def test_later_options_win():
    assert parse(["ro", "rw"]).flags & MS_RDONLY == 0
    assert parse(["exec", "noexec"]).flags == MS_NOEXEC


def test_unsupported_options_are_refused():
    with pytest.raises(ValueError, match="tmpcopyup"):
        parse(["tmpcopyup"])


def test_shell_rendering_for_explain():
    assert shell_options(MS_NOSUID | MS_NODEV | MS_NOEXEC, None) == "nosuid,nodev,noexec"
    assert shell_options(MS_BIND | MS_REC | MS_RDONLY, None) == "rbind,ro"
