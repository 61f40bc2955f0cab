"""The cgroup v2 device filter for real: loaded through the kernel's verifier, attached to a cgroup
of the unified hierarchy (the VM's, or this hybrid host's cgroup2 mount), and obeyed."""

from __future__ import annotations

import os

import pytest

from runtime.cgroups.devices import attach_device_filter
from runtime.cgroups.layout import detect
from runtime.spec.model import DeviceRule
from runtime.sys import real
from tests.childproc import run_child


@pytest.mark.vm
def test_the_kernel_enforces_the_generated_filter():
    layout = detect()
    if layout.unified is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    d = layout.unified.own_dir / f"nodeagent-devtest-{os.getpid()}"
    d.mkdir()
    try:
        rules = (DeviceRule(False, "a", None, None, "rwm"), DeviceRule(True, "c", 1, 3, "rwm"))
        attach_device_filter(real(), d, rules)
        out = run_child(f"""
            open("{d}/cgroup.procs", "w").write("0")
            def try_open(path):
                try:
                    os.close(os.open(path, os.O_RDONLY))
                    return "ok"
                except OSError as e:
                    return e.strerror
            report({{"null": try_open("/dev/null"), "zero": try_open("/dev/zero")}})
        """)
        assert out == {"null": "ok", "zero": "Operation not permitted"}
    finally:
        d.rmdir()
