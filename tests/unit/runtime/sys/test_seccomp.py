"""Compiling seccomp profiles with libseccomp (no root needed: nothing is loaded here)."""

from __future__ import annotations

import pytest

from runtime.confine.seccomp import compile_profile
from runtime.errors import StepError
from runtime.spec.defaults import default_capabilities
from runtime.spec.model import Seccomp, SeccompRule
from runtime.spec.runtime_default import runtime_default_seccomp
from runtime.sys import seccomp as lib


def test_runtime_default_compiles_to_a_bpf_program():
    program = compile_profile(runtime_default_seccomp(default_capabilities().bounding))
    assert len(program) % 8 == 0 and len(program) // 8 > 100   # struct sock_filter is 8 bytes
    # The first instruction loads the architecture (offset 4 of struct seccomp_data).
    code, k = program[0:2], int.from_bytes(program[4:8], "little")
    assert (int.from_bytes(code, "little"), k) == (0x20, 4)   # BPF_LD|BPF_W|BPF_ABS, arch


def test_the_same_profile_is_compiled_once():
    profile = runtime_default_seccomp(("CAP_KILL",))
    assert compile_profile(profile) is compile_profile(profile)


def test_unknown_syscall_names_are_skipped_like_runc():
    profile = Seccomp("SCMP_ACT_ERRNO", None, (), (SeccompRule(("read", "no_such_syscall_x"), "SCMP_ACT_ALLOW"),))
    assert compile_profile(profile)


def test_errno_actions_carry_their_number():
    assert lib.action("SCMP_ACT_ERRNO", 38) == lib.SCMP_ACT_ERRNO_BASE | 38
    assert lib.action("SCMP_ACT_ERRNO") == lib.SCMP_ACT_ERRNO_BASE | 1
    with pytest.raises(ValueError):
        lib.action("SCMP_ACT_NOPE")


def test_a_bad_architecture_is_a_step_error():
    profile = Seccomp("SCMP_ACT_ERRNO", None, ("SCMP_ARCH_NOPE",), ())
    with pytest.raises(StepError):
        compile_profile(profile)
