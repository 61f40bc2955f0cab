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
            args = [(a.index, lib.OPS[a.op], a.value, a.value_two) for a in rule.args]
            rules.extend((name, act, args) for name in rule.names)
        arches = [lib.ARCHES[a] for a in profile.architectures]
        program = lib.compile_filter(lib.action(profile.default_action, profile.default_errno_ret),
                                     arches, rules)
    except (OSError, ValueError, KeyError) as e:
        raise StepError("compile the seccomp profile", str(e)) from e
    _cache[profile] = program
    return program
