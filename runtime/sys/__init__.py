"""runtime.sys — the one place for ctypes and raw syscalls.

Everything in nodeagent that asks the kernel for something privileged (namespaces, mounts,
pivot_root, prctl, capabilities, pidfds) goes through a `Syscalls` object:

    protocol.py   the Syscalls protocol: the list of calls and their contracts
    linux.py      LinuxSyscalls, the real thing (ctypes, explicit argtypes, errno → SyscallError)
    recording.py  RecordingSyscalls, the fake for unit tests: records calls, injects failures
    consts.py     CLONE_NEW*, MS_*, MNT_*, PR_*, CAP_* — the kernel's numbers, in one table
    caps.py       CapSets and capability name ↔ bit helpers
    errors.py     SyscallError(OSError) carrying the call and its arguments

No other module in the project imports ctypes (tests/unit/test_layout.py checks this).

May import: the standard library only — this package is loaded by small single-threaded helper
processes that must start fast.
"""

from runtime.sys.caps import CapSets
from runtime.sys.errors import SyscallError
from runtime.sys.protocol import Syscalls
from runtime.sys.recording import Call, RecordingSyscalls


def real() -> Syscalls:
    """The real implementation. Imported lazily so that importing runtime.sys never loads libc."""
    from runtime.sys.linux import LinuxSyscalls

    return LinuxSyscalls()


__all__ = ["Call", "CapSets", "RecordingSyscalls", "SyscallError", "Syscalls", "real"]
