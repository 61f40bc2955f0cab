"""Fixtures for container tests in the root tier (and, for tests marked vm too, in the VM).

`busybox_rootfs`: the test "image" (tests/busybox.py), once per session.
`rt`: a private runtime for one test — its own state and storage directories under tmp_path,
unique container names (they become cgroup names, so they include our pid), and at teardown a
forced delete of whatever the test left, so a failing test does not leak containers into the next.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from tests.busybox import make_rootfs, nodeagent

_counter = itertools.count()


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory) -> Path:
    return make_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


class Runtime:
    def __init__(self, base: Path, rootfs: Path):
        self.root = base / "state"
        self.storage = base / "storage"
        self.rootfs = rootfs
        self.base = base

    def name(self, prefix: str = "t") -> str:
        return f"{prefix}{os.getpid()}-{next(_counter)}"

    def run(self, *args: str, timeout: float = 60, **kw):
        """`nodeagent run --rm`-style: args after the fixture's --root/--storage."""
        return nodeagent("run", "--root", str(self.root), "--storage", str(self.storage), *args,
                         timeout=timeout, **kw)

    def runtime(self, *args: str, timeout: float = 60, **kw):
        """`nodeagent runtime ...`, its output captured through files, not pipes: `create` and
        `run -d` hand their own stdio to the container, as runc does, so a pipe would stay open
        (and the call would wait) until the container ends."""
        import subprocess
        import sys
        import tempfile

        from tests.busybox import REPO

        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            if "input" not in kw:
                kw.setdefault("stdin", subprocess.DEVNULL)
            argv = [sys.executable, "-m", "nodeagent", "runtime", "--root", str(self.root),
                    "--storage", str(self.storage), *args]
            proc = subprocess.run(argv, stdout=out, stderr=err, text=True, timeout=timeout,
                                  cwd=REPO, **kw)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())

    def state(self, cid: str) -> dict:
        out = self.runtime("state", cid)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def bundle(self, args: list[str], **spec_changes) -> Path:
        """A bundle dir whose config.json is our default spec (read-only root = the busybox tree)."""
        import dataclasses

        from runtime.spec.bundle import write_bundle
        from runtime.spec.defaults import default_spec

        d = self.base / f"bundle{next(_counter)}"
        d.mkdir()
        spec = default_spec(tuple(args), str(self.rootfs), readonly=True, hostname="bundled")
        if spec_changes:
            spec = dataclasses.replace(spec, **spec_changes)
        write_bundle(spec, str(d))
        return d

    def cleanup(self) -> None:
        out = self.runtime("list", "-q")
        for cid in out.stdout.split():
            self.runtime("delete", "--force", cid)


@pytest.fixture
def rt(tmp_path, busybox_rootfs):
    r = Runtime(tmp_path, busybox_rootfs)
    yield r
    r.cleanup()
