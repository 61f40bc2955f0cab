"""The cgroup v2 device filter, interpreted: a tiny BPF interpreter for the few opcodes we emit
runs the generated program against requests, so the rule semantics are checked without a kernel
(the root/vm tier attaches the same program for real)."""

from __future__ import annotations

import struct

import pytest

from runtime.cgroups.devices import device_filter
from runtime.spec.defaults import DEFAULT_DEVICE_RULES
from runtime.spec.model import DeviceRule

MKNOD, READ, WRITE = 1, 2, 4
BLOCK, CHAR = 1, 2


def run(program: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    ctx = [access << 16 | dev_type, major, minor]
    regs = [0] * 11
    pc = 0
    while True:
        code, regs_byte, off, imm = struct.unpack_from("<BBhi", program, pc * 8)
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if code == 0x61:
            regs[dst] = ctx[off // 4]
        elif code == 0x54:
            regs[dst] = regs[dst] & (imm & 0xFFFFFFFF)
        elif code == 0x74:
            regs[dst] = regs[dst] >> imm
        elif code == 0xBC:
            regs[dst] = regs[src]
        elif code == 0xB7:
            regs[dst] = imm
        elif code == 0x55:
            pc += off if regs[dst] != imm else 0
        elif code == 0x15:
            pc += off if regs[dst] == imm else 0
        elif code == 0x45:
            pc += off if regs[dst] & imm else 0
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


@pytest.fixture(scope="module")
def default_program():
    return device_filter(DEFAULT_DEVICE_RULES)


@pytest.mark.parametrize("dev_type,access,major,minor,allowed", [
    (CHAR, READ | WRITE, 1, 3, 1),       # /dev/null
    (CHAR, READ, 1, 9, 1),               # /dev/urandom
    (CHAR, READ | WRITE, 136, 7, 1),     # /dev/pts/7
    (CHAR, MKNOD, 10, 200, 1),           # mknod of any char device is allowed ...
    (CHAR, READ, 10, 200, 0),            # ... opening it is not
    (BLOCK, MKNOD, 8, 0, 1),
    (BLOCK, READ, 8, 0, 0),              # /dev/sda
    (CHAR, READ, 1, 1, 0),               # /dev/mem
    (CHAR, READ | MKNOD, 1, 3, 1),
])
def test_the_default_allow_list(default_program, dev_type, access, major, minor, allowed):
    assert run(default_program, dev_type, access, major, minor) == allowed


def test_later_rules_override_earlier_ones():
    rules = (DeviceRule(True, "a", None, None, "rwm"), DeviceRule(False, "c", 1, 3, "w"))
    program = device_filter(rules)
    assert run(program, CHAR, READ, 1, 3) == 1
    assert run(program, CHAR, WRITE, 1, 3) == 0
    assert run(program, BLOCK, READ, 8, 0) == 1


def test_nothing_matches_means_denied():
    assert run(device_filter(()), CHAR, READ, 1, 3) == 0
