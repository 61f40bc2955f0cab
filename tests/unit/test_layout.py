"""The layer map of DEVELOPERS.md, enforced.

import-linter checks the forbidden-import contracts in pyproject.toml over the real import graph.
The two rules it cannot express are checked here with the same graph (grimp): no ctypes outside
runtime/sys, and network may use runtime.sys but nothing else of runtime.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ["nodeagent", "runtime", "network", "cni", "apiclient", "controlplane", "localfs"]


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)


def test_import_linter_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_only_runtime_sys_uses_ctypes(graph):
    users = graph.find_modules_that_directly_import("ctypes")
    outside = sorted(m for m in users if not m.startswith("runtime.sys"))
    assert outside == [], f"ctypes belongs in runtime/sys only, found in {outside}"


def test_network_uses_only_runtime_sys_from_runtime(graph):
    bad = sorted(
        (importer, imported)
        for importer in graph.find_descendants("network") | {"network"}
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.startswith("runtime") and not imported.startswith("runtime.sys")
    )
    assert bad == [], f"network may import runtime.sys only: {bad}"


def test_runtime_sys_imports_only_the_standard_library(graph):
    third_party = sorted(
        imported
        for m in graph.find_descendants("runtime.sys") | {"runtime.sys"}
        for imported in graph.find_modules_directly_imported_by(m)
        if imported.split(".")[0] not in sys.stdlib_module_names and not imported.startswith("runtime.sys")
    )
    assert third_party == [], f"runtime.sys must load fast in helper processes: {third_party}"


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_states_its_role_and_allowed_imports(package):
    doc = (REPO / package / "__init__.py").read_text()
    assert doc.startswith('"""'), f"{package}/__init__.py must open with a docstring"
    assert "May import:" in doc, f"{package}/__init__.py must say what it may import"
