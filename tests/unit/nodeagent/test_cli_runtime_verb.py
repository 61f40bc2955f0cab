"""`nodeagent runtime VERB`: the CLI builds one verb's parser when it can tell the verb without
argparse (nodeagent/commands/runtime.py, verb_of), and parses exactly as the whole parser does."""

from __future__ import annotations

import pytest

from nodeagent import cli
from nodeagent.commands.runtime import verb_of


@pytest.mark.parametrize("argv, verb", [
    (["runtime", "run", "-b", "/b", "c1"], "run"),
    (["runtime", "--root", "/r", "--storage", "/s", "create", "c1"], "create"),
    (["runtime", "--root=/r", "state", "c1"], "state"),
    (["runtime", "--root", "run", "start", "c1"], "start"),     # a value that looks like a verb
    (["runtime", "--ro", "/r", "kill", "c1"], None),            # an abbreviation: argparse decides
    (["runtime", "--help"], None),
    (["runtime", "-h", "run"], None),
    (["runtime", "nosuchverb", "c1"], None),
    (["runtime"], None),
    (["run", "busybox"], None),                                  # not the runtime command
])
def test_verb_of(argv, verb):
    assert verb_of(argv) == verb


@pytest.mark.parametrize("argv", [
    ["runtime", "--root", "/r", "run", "-b", "/b", "-d", "--log", "/l", "c1"],
    ["runtime", "create", "--console-socket", "/s", "--pid-file", "/p", "c1"],
    ["runtime", "kill", "-a", "c1", "KILL"],
    ["runtime", "exec", "-t", "-e", "A=1", "c1", "sh", "-c", "true"],
    ["runtime", "list", "-q"],
    ["runtime", "spec", "--rootfs", "r", "echo", "hi"],
    ["runtime", "zygote", "--stop"],
])
def test_one_verbs_parser_parses_as_the_whole_one(argv):
    def parsed(verb):
        args = vars(cli.build_parser("runtime", verb).parse_args(argv))
        args.pop("func")
        return args

    assert parsed(verb_of(argv)) == parsed(None)
