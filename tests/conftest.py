"""Test tiers. Every test gets exactly one tier marker from its folder:

    tests/unit/   → unit   no root, fakes only, seconds
    tests/root/   → root   real kernel objects on this host; needs root
    tests/vm/     → vm     needs the cgroup v2 VM (tests/harness/vmtier.py runs them there)

A root test may also carry @pytest.mark.vm to run in the VM too (e.g. cgroup code that must work on
v1 here and v2 there). A tier that cannot run is skipped with the reason — or, under
NODEAGENT_STRICT=1 (CI), fails: CI must never go green because a tier quietly did nothing.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

TIERS = ("unit", "root", "vm")
STRICT = os.environ.get("NODEAGENT_STRICT") == "1"
IN_VM = os.environ.get("NODEAGENT_IN_VM") == "1"
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        rel = Path(item.fspath).relative_to(_HERE)
        tier = rel.parts[0] if rel.parts[0] in TIERS else None
        if tier is None:
            raise pytest.UsageError(f"{rel}: tests live in tests/unit, tests/root or tests/vm")
        item.add_marker(getattr(pytest.mark, tier))
    # The unit tier runs on pytest-xdist, which hands work out by node id: of tests that share one,
    # only the first would run, silently (test_fuzz_openapi.py says how that happened once).
    twice = sorted(nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1)
    if twice:
        raise pytest.UsageError("tests that share a node id (give each its own): " + ", ".join(twice[:5]))


def _cannot_run(reason: str) -> None:
    if STRICT:
        pytest.fail(f"tier cannot run (NODEAGENT_STRICT=1): {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item):
    markers = {m.name for m in item.iter_markers() if m.name in TIERS}
    if "root" in markers and os.geteuid() != 0:
        _cannot_run("root tier: needs root (real namespaces, mounts, cgroups)")
    if markers == {"vm"} and not IN_VM:
        _cannot_run("vm tier: runs inside the cgroup v2 VM; use `scripts/test.sh vm`")
