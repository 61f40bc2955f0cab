"""From the spec's seccomp section (OCI names) to the BPF program the kernel runs.

Compilation (libseccomp, runtime/sys/seccomp.py) happens once, in the process that creates the
container, before any fork; the container's init only installs the bytes. Programs are cached in
memory by the profile's content, so creating many containers with RuntimeDefault compiles it once
per process.
"""

from __future__ import annotations

from runtime.errors import StepError
from runtime.spec.model import Seccomp

_cache: dict[Seccomp, bytes] = {}


def compile_profile(profile: Seccomp) -> bytes:
    if profile in _cache:
        return _cache[profile]
    from runtime.sys import seccomp as lib

    try:
        rules = []
        for rule in profile.syscalls:
            act = lib.action(rule.action, rule.errno_ret)
            for args in _condition_sets(rule.args, lib.OPS):
                rules.extend((name, act, args) for name in rule.names)
        arches = [lib.ARCHES[a] for a in profile.architectures]
        program = lib.compile_filter(lib.action(profile.default_action, profile.default_errno_ret),
                                     arches, rules)
    except (OSError, ValueError, KeyError) as e:
        raise StepError("compile the seccomp profile", str(e)) from e
    _cache[profile] = program
    return program


def _condition_sets(args, ops) -> list[list[tuple[int, int, int, int]]]:
    """The libseccomp rules one OCI rule becomes. Conditions on different arguments are ANDed in
    one rule. Several conditions on the *same* argument (Docker's profile allows `personality`
    for three values of arg 0) cannot be ANDed — libseccomp refuses them with EINVAL, and they
    would never all hold anyway — so, as runc does, each condition then gets a rule of its own:
    the syscall matches if any of them holds (OR)."""
    conds = [(a.index, ops[a.op], a.value, a.value_two) for a in args]
    indexes = [a.index for a in args]
    if len(set(indexes)) == len(indexes):
        return [conds]
    return [[c] for c in conds]
