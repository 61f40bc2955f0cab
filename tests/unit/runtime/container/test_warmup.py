"""The spare worker's warm-up (runtime/container/warmup.py): it leaves nothing behind, and it does
what it is for — after it, a fork parses a config.json without copying the pages again."""

from __future__ import annotations

import json
import os
import resource

from runtime.container.warmup import warm_up
from runtime.spec.bundle import load_bundle, spec_to_dict
from runtime.spec.defaults import default_spec


def test_warm_up_leaves_no_files_and_no_fds(tmp_path):
    root = tmp_path / "state"
    before = sorted(os.listdir("/proc/self/fd"))
    warm_up(str(root))
    assert sorted(os.listdir("/proc/self/fd")) == before
    assert not root.exists()
    assert os.listdir(tmp_path) == []


def _faults_of_parsing_in_a_fork(bundle: str, warm: bool) -> int:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            if warm:
                warm_up("/nonexistent-state-root")
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            load_bundle(bundle)
            os.write(w, str(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before).encode())
        finally:
            os._exit(0)
    os.close(w)
    faults = int(os.read(r, 100))
    os.close(r)
    os.waitpid(pid, 0)
    return faults


def test_after_warm_up_a_fork_parses_a_bundle_without_copying_its_pages_again(tmp_path):
    (tmp_path / "rootfs").mkdir()
    config = spec_to_dict(default_spec(("sh",), str(tmp_path / "rootfs"), hostname="web"))
    (tmp_path / "config.json").write_text(json.dumps(config))
    load_bundle(str(tmp_path))          # everything imported, as in a zygote
    cold = min(_faults_of_parsing_in_a_fork(str(tmp_path), warm=False) for _ in range(3))
    warm = min(_faults_of_parsing_in_a_fork(str(tmp_path), warm=True) for _ in range(3))
    assert cold > 50                    # copy-on-write at work: the fork copies what it writes
    assert warm * 4 < cold, (warm, cold)
