"""Running one hook (runtime/process/hooks.py) needs no privileges: the state reaches its stdin,
its environment is exactly the spec's, and failures come back as one line saying why."""

from __future__ import annotations

import json

import pytest

from runtime.errors import StepError
from runtime.process.hooks import run_hook, run_hooks, state_bytes, warn_hooks
from runtime.spec.model import Hook

STATE = state_bytes("1.0.2", "c1", "creating", 42, "/b", {"k": "v"})


def _sh(script: str, timeout: int | None = None, env=()) -> Hook:
    return Hook("/bin/sh", ("sh", "-c", script), tuple(env), timeout)


def test_the_state_is_on_stdin_and_the_environment_is_the_specs(tmp_path):
    out = tmp_path / "out"
    assert run_hook(_sh(f'cat > {out}; echo "$GREETING ${{HOME:-unset}}" >> {out}',
                        env=("GREETING=hi",)), STATE) is None
    state, env = out.read_text().rsplit("}", 1)
    assert json.loads(state + "}") == {"ociVersion": "1.0.2", "id": "c1", "status": "creating",
                                       "bundle": "/b", "annotations": {"k": "v"}, "pid": 42}
    assert env.strip() == "hi unset"


def test_a_failure_says_how_with_the_last_line_of_output():
    assert run_hook(_sh("echo first; echo 'no route' >&2; exit 3"), STATE) == \
        "exit status 3: no route"
    assert run_hook(Hook("/nonexistent/hook"), STATE) == "cannot run it: No such file or directory"
    assert run_hook(_sh("kill -9 $$"), STATE) == "killed by SIGKILL"


def test_a_hook_past_its_timeout_is_killed():
    assert run_hook(_sh("sleep 30", timeout=1), STATE) == "timed out after 1 s (killed)"


def test_run_hooks_stops_at_the_first_failure_and_warn_hooks_runs_them_all(tmp_path):
    ran = tmp_path / "ran"
    hooks = (_sh("exit 1"), _sh(f"touch {ran}"))
    with pytest.raises(StepError) as e:
        run_hooks(hooks, "prestart", STATE)
    assert e.value.step == "prestart hook"
    assert e.value.reason == "hooks.prestart[0] (/bin/sh): exit status 1"
    assert not ran.exists()
    assert warn_hooks(hooks, "poststop", STATE) == ["hooks.poststop[0] (/bin/sh): exit status 1"]
    assert ran.exists()
