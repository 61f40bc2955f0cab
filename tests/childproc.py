"""Run a snippet of Python in a fresh interpreter and get back what it reports.

Root tests that unshare, setns, pivot_root or drop capabilities must not do it to the pytest process
(that would change the test runner's own namespaces and privileges for every later test). They run
the calls in a fresh, single-threaded child interpreter instead, which reports a JSON object on its
last line of stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_child(code: str, timeout: float = 30) -> dict:
    """Run `code` (which must `report(obj)` once) and return obj; any failure raises with the child's
    stderr, so the test shows what went wrong inside."""
    prelude = textwrap.dedent("""
        import json, os, sys
        def report(obj):
            sys.stdout.write("\\n" + json.dumps(obj) + "\\n")
            sys.stdout.flush()
    """)
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        raise AssertionError(f"child exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                             f"stderr:\n{proc.stderr}")
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last)
