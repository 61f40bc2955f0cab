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

So importing it loads nothing: each name below is imported from its module when first asked for
(PEP 562). A process that only needs `real()` — the CLI before it re-executes itself sealed
(runtime/process/sealed.py) needs unshare and mount, and nothing else of ours — would otherwise
load the recording fake, `typing` for the protocol and `dataclasses` (with `inspect`, `ast`, `dis`,
`tokenize`) for CapSets: ~80 million instructions, ~10 ms, counted with callgrind, for nothing.
"""

_LAZY = {"CapSets": "runtime.sys.caps", "SyscallError": "runtime.sys.errors",
         "Syscalls": "runtime.sys.protocol", "Call": "runtime.sys.recording",
         "RecordingSyscalls": "runtime.sys.recording"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # asked once
    return value


def real() -> "Syscalls":  # noqa: F821 - the protocol, loaded on demand (see above)
    """The real implementation. Imported lazily so that importing runtime.sys never loads libc."""
    from runtime.sys.linux import LinuxSyscalls

    return LinuxSyscalls()


__all__ = ["Call", "CapSets", "RecordingSyscalls", "SyscallError", "Syscalls", "real"]
