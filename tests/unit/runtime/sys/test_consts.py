"""Our constants against the kernel's own headers (linux-libc-dev), where installed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.sys import consts
from runtime.sys.caps import mask_of, names_of

HEADERS = Path("/usr/include/linux")


def _defines(header: str) -> dict[str, int]:
    path = HEADERS / header
    if not path.exists():
        pytest.skip(f"{path} not installed (apt-get install linux-libc-dev)")
    values: dict[str, int] = {}
    for name, expr in re.findall(r"^#\s*define\s+(\w+)\s+([^/\n]+)", path.read_text(), re.M):
        expr = expr.strip().rstrip("ULul")
        expr = re.sub(r"\b(\d+|0x[0-9a-fA-F]+)[ULul]+\b", r"\1", expr)
        try:
            values[name] = int(eval(expr, {"__builtins__": {}}, dict(values)))  # noqa: S307 - header arithmetic
        except Exception:
            continue
    return values


@pytest.mark.parametrize("header,prefix", [
    ("sched.h", "CLONE_NEW"),
    ("mount.h", "MS_"),
    ("prctl.h", "PR_"),
    ("capability.h", "CAP_"),
])
def test_constants_match_the_kernel_headers(header, prefix):
    kernel = _defines(header)
    ours = {k: v for k, v in vars(consts).items() if k.startswith(prefix) and isinstance(v, int)}
    if prefix == "CAP_":
        ours = dict(consts.CAPABILITIES)
    checked = {k for k in ours if k in kernel}
    assert len(checked) >= min(len(ours), 5), f"too few of our {prefix}* found in {header}"
    wrong = {k: (ours[k], kernel[k]) for k in checked if ours[k] != kernel[k]}
    assert wrong == {}


def test_umount_flags_match_sys_mount_h():
    path = Path("/usr/include/x86_64-linux-gnu/sys/mount.h")
    if not path.exists():
        pytest.skip(f"{path} not installed")
    text = path.read_text()
    for name in ("MNT_FORCE", "MNT_DETACH", "MNT_EXPIRE", "UMOUNT_NOFOLLOW"):
        m = re.search(rf"{name}\s*=\s*(\d+)", text)
        assert m and int(m.group(1)) == getattr(consts, name), name


def test_namespace_table_covers_every_proc_ns_name():
    assert set(consts.NAMESPACE_FLAGS) == {"mnt", "uts", "ipc", "pid", "net", "cgroup", "user", "time"}
    assert len(set(consts.NAMESPACE_FLAGS.values())) == 8


def test_describe_flags_names_bits_and_shows_unknown_ones_in_hex():
    assert consts.describe_flags(consts.MS_BIND | consts.MS_REC, "mount") == "MS_BIND|MS_REC"
    assert consts.describe_flags(0, "mount") == "0"
    assert consts.describe_flags(consts.CLONE_NEWNET | 1 << 40, "clone") == "CLONE_NEWNET|0x10000000000"


def test_capability_masks_round_trip_and_reject_unknown_names():
    default14 = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                 "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"]
    # The container default set is known by its /proc/<pid>/status value.
    assert mask_of(default14) == 0x00000000A80425FB
    assert sorted(names_of(0xA80425FB)) == sorted("CAP_" + n for n in default14)
    with pytest.raises(ValueError, match="CAP_NOPE"):
        mask_of(["CAP_NOPE"])
