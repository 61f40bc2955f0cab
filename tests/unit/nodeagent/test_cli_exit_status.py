"""The CLI's one rule from a user's error to an exit status (nodeagent/commands/__init__.py)."""

from __future__ import annotations

import pytest

from nodeagent import cli
from nodeagent.errors import AgentError
from runtime.errors import ContainerNotFound, SpecError, StepError
from runtime.images.errors import ImageError


@pytest.mark.parametrize("command, error, status", [
    ("run", SpecError("--memory", "bad"), 125),                       # docker run: not created
    ("run", StepError("find the executable", "'/x': not found"), 127),  # docker run: no program
    ("run", StepError("mount /proc", "EPERM"), 125),
    ("runtime", ContainerNotFound("c1"), 1),                          # runc's verbs
    ("exec", ContainerNotFound("c1"), 1),                             # docker's verbs
    ("rm", ContainerNotFound("c1"), 1),
    ("pull", ImageError("no such image"), 2),                         # every other user's error
    ("up", AgentError("a node is already running"), 2),
])
def test_each_error_has_one_status(command, error, status):
    assert cli.exit_status(command, error)[0] == status


def test_a_bug_is_not_a_users_error():
    assert cli.exit_status("run", KeyError("x")) is None


def test_the_cli_prints_one_line_and_exits_with_the_ruled_status(capsys, tmp_path):
    code = cli.run(["runtime", "--root", str(tmp_path), "state", "nope"])
    assert code == 1
    assert capsys.readouterr().err == "nodeagent runtime state: container 'nope' does not exist\n"
    code = cli.run(["rm", "--root", str(tmp_path), "a", "b"])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == ["nodeagent rm: container 'a' does not exist",
                                                    "nodeagent rm: container 'b' does not exist"]
