"""The order of confinement, checked on the recording fake: each step needs a privilege a later
step gives up (runtime/confine/__init__.py explains why)."""

from __future__ import annotations

import dataclasses

from runtime.confine import confine, finish
from runtime.explain import Steps
from runtime.spec.defaults import default_capabilities
from runtime.spec.model import Process, Rlimit, User
from runtime.sys import CapSets, RecordingSyscalls
from runtime.sys.consts import CLOSE_RANGE_CLOEXEC, RLIMITS

PROGRAM = b"\x06\x00\x00\x00\x00\x00\xff\x7f"   # one BPF instruction: return ALLOW


def _process(**kw) -> Process:
    return dataclasses.replace(Process(args=("/bin/sh",), env=("A=1",), capabilities=default_capabilities()), **kw)


def _first(names, *wanted):
    return [names.index(w) for w in wanted]


def test_without_no_new_privs_seccomp_still_waits_until_just_before_execve():
    # CAP_SYS_ADMIN (bit 21) stays in effective and permitted for the filter, never in the
    # bounding or inheritable sets, so execve ends it.
    s = RecordingSyscalls()
    p = _process(rlimits=(Rlimit("RLIMIT_NOFILE", 512, 1024),), user=User(1000, 1000, (5,)))
    confine(s, p, PROGRAM, Steps())
    names = s.names()
    assert "seccomp_set_filter" not in names
    order = _first(names, "setrlimit", "capbset_drop", "setgroups", "setresgid",
                   "setresuid", "capset", "ambient_clear_all")
    assert order == sorted(order)
    assert s.calls_to("setrlimit")[0].args == (RLIMITS["RLIMIT_NOFILE"], 512, 1024)
    assert s.calls_to("setgroups")[0].args == ((5,),)
    assert s.calls_to("setresuid")[0].args == (1000, 1000, 1000)
    # keepcaps brackets the uid change, so the permitted set survives it for capset
    assert names.index("set_keepcaps") < names.index("setresuid") < len(names) - names[::-1].index("set_keepcaps")
    assert s.calls_to("capset")[0].args == (CapSets(0xA80425FB | 1 << 21, 0xA80425FB | 1 << 21, 0),)
    assert 21 in {c.args[0] for c in s.calls_to("capbset_drop")}
    assert "set_no_new_privs" not in names
    finish(s, p, PROGRAM, "/bin/sh")
    assert s.names()[-3:] == ["close_range", "seccomp_set_filter", "execve"]


def test_without_seccomp_no_capability_is_kept_for_the_runtime():
    s = RecordingSyscalls()
    confine(s, _process(), None, Steps())
    assert s.calls_to("capset")[0].args == (CapSets(0xA80425FB, 0xA80425FB, 0),)


def test_bounding_set_loses_exactly_the_capabilities_not_granted():
    s = RecordingSyscalls()
    confine(s, _process(), None, Steps())
    dropped = {c.args[0] for c in s.calls_to("capbset_drop")}
    kept = {b for b in range(41) if 0xA80425FB >> b & 1}
    assert dropped == set(range(41)) - kept


def test_with_no_new_privs_seccomp_waits_until_just_before_execve():
    s = RecordingSyscalls()
    p = _process(no_new_privileges=True)
    confine(s, p, PROGRAM, Steps())
    assert "seccomp_set_filter" not in s.names()
    assert s.names()[-1] == "set_no_new_privs"
    finish(s, p, PROGRAM, "/bin/sh")
    tail = s.names()[-3:]
    assert tail == ["close_range", "seccomp_set_filter", "execve"]
    assert s.calls_to("close_range")[0].args == (3, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
    assert s.calls_to("execve")[0].args == ("/bin/sh", ("/bin/sh",), ("A=1",))


def test_ambient_capabilities_are_raised_only_when_permitted_and_inheritable():
    s = RecordingSyscalls()
    caps = dataclasses.replace(default_capabilities(), inheritable=("CAP_KILL",),
                               ambient=("CAP_KILL", "CAP_CHOWN"))
    confine(s, _process(capabilities=caps), None, Steps())
    assert [c.args for c in s.calls_to("ambient_raise")] == [(5,)]   # CAP_KILL; CHOWN is not inheritable
