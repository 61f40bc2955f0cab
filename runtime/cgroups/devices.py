"""The device allow-list on cgroup v2: a small eBPF program, generated from the rules and attached.

cgroup v1 had files for this (devices.allow, devices.deny). cgroup v2 has none: instead, a program
of type BPF_PROG_TYPE_CGROUP_DEVICE is attached to the cgroup, and the kernel runs it whenever a
process in the cgroup opens or mknod()s a device node. It sees

    struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
        access_type = access << 16 | type      type: 1 block, 2 char
                                                 access: 1 mknod, 2 read, 4 write

and returns 1 (allow) or 0 (deny). This is how runc and crun do it too.

The rules are OCI's: a list where later rules override earlier ones ("deny everything, then allow
/dev/null, ..."). So the program checks them *last first* and the first match decides; a request
no rule matches is denied. An allow rule matches when every access bit requested is among the
rule's; a deny rule when any requested bit is.

The program, for the record (R1 points at the context):

    r2 = *(u32 *)(r1 + 0); r2 &= 0xffff        type
    r3 = *(u32 *)(r1 + 0); r3 >>= 16           access
    r4 = *(u32 *)(r1 + 4)                      major
    r5 = *(u32 *)(r1 + 8)                      minor
    for each rule, last first:
        if r2 != type goto next                (omitted for type "a")
        allow: if r3 & ~access goto next       deny: r6 = r3 & access; if r6 == 0 goto next
        if r4 != major goto next               (omitted for "*")
        if r5 != minor goto next               (omitted for "*")
        r0 = 1 (allow) or 0 (deny); exit
      next:
    r0 = 0; exit
"""

from __future__ import annotations

import os
import struct

_TYPES = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}

# struct bpf_insn opcodes (<linux/bpf_common.h>, <linux/bpf.h>)
_LDX_W = 0x61          # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54        # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74        # BPF_ALU | BPF_RSH | BPF_K
_MOV32_X = 0xBC        # BPF_ALU | BPF_MOV | BPF_X
_MOV64_K = 0xB7        # BPF_ALU64 | BPF_MOV | BPF_K
_JNE_K = 0x55          # BPF_JMP | BPF_JNE | BPF_K
_JEQ_K = 0x15          # BPF_JMP | BPF_JEQ | BPF_K
_JSET_K = 0x45         # BPF_JMP | BPF_JSET | BPF_K
_EXIT = 0x95           # BPF_JMP | BPF_EXIT


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_bits(access: str) -> int:
    bits = 0
    for letter in access:
        bits |= _ACCESS[letter]
    return bits


def device_filter(rules) -> bytes:
    """The program for a list of runtime.spec.model.DeviceRule, as packed struct bpf_insn."""
    out = [_insn(_LDX_W, 2, 1, 0), _insn(_AND32_K, 2, imm=0xFFFF),
           _insn(_LDX_W, 3, 1, 0), _insn(_RSH32_K, 3, imm=16),
           _insn(_LDX_W, 4, 1, 4), _insn(_LDX_W, 5, 1, 8)]
    for rule in reversed(rules):
        access = _access_bits(rule.access)
        # Each conditional jump goes to the end of this block; offsets are filled in below.
        block: list[tuple] = []
        if rule.type != "a":
            block.append(("jump", _JNE_K, 2, _TYPES[rule.type]))
        if rule.allow:
            if ~access & 0b111:
                block.append(("jump", _JSET_K, 3, ~access & 0b111))
        else:
            block.append(("insn", _insn(_MOV32_X, 6, 3)))
            block.append(("insn", _insn(_AND32_K, 6, imm=access)))
            block.append(("jump", _JEQ_K, 6, 0))
        if rule.major is not None:
            block.append(("jump", _JNE_K, 4, rule.major))
        if rule.minor is not None:
            block.append(("jump", _JNE_K, 5, rule.minor))
        block.append(("insn", _insn(_MOV64_K, 0, imm=1 if rule.allow else 0)))
        block.append(("insn", _insn(_EXIT)))
        for i, item in enumerate(block):
            if item[0] == "insn":
                out.append(item[1])
            else:
                _, code, reg, imm = item
                out.append(_insn(code, reg, off=len(block) - 1 - i, imm=imm))
    out += [_insn(_MOV64_K, 0, imm=0), _insn(_EXIT)]
    return b"".join(out)


def attach_device_filter(sys, cgroup_dir, rules, explain=None) -> None:
    """Load the program for `rules` and attach it to `cgroup_dir`. The attachment keeps the
    program alive; our fds to it and to the directory are closed before returning."""
    program = device_filter(rules)
    if explain:
        explain(f"# bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, <{len(program) // 8} instructions>) "
                f"+ bpf(BPF_PROG_ATTACH, {cgroup_dir})  (bpftool cgroup attach {cgroup_dir} device ...)")
    prog_fd = sys.bpf_load_device_filter(program)
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            sys.bpf_attach_cgroup(dir_fd, prog_fd)
        finally:
            os.close(dir_fd)
    finally:
        os.close(prog_fd)
