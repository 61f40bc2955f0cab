"""Image config → process: Docker's rules for Entrypoint/Cmd/Env/WorkingDir/User."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from runtime.errors import SpecError
from runtime.spec.image_config import process_fields, resolve_user
from runtime.spec.model import User


def _config(**kw):
    base = dict(entrypoint=(), cmd=(), env=(), working_dir="", user="")
    return SimpleNamespace(**(base | kw))


def test_command_replaces_cmd_but_keeps_the_entrypoint():
    cfg = _config(entrypoint=("/bin/sh", "-c"), cmd=("echo default",), env=("PATH=/bin", "A=1"),
                  working_dir="/app")
    assert process_fields(cfg, (), (), ())["args"] == ("/bin/sh", "-c", "echo default")
    fields = process_fields(cfg, ("echo mine",), ("A=2",), ())
    assert fields["args"] == ("/bin/sh", "-c", "echo mine")
    assert fields["env"] == ("PATH=/bin", "A=1", "A=2")       # the user's A wins (it comes last)
    assert fields["cwd"] == "/app"


def test_path_defaults_when_the_image_has_none_and_nothing_to_run_is_an_error():
    assert process_fields(_config(cmd=("x",)), (), (), ())["env"][0].startswith("PATH=")
    with pytest.raises(SpecError, match="neither Entrypoint nor Cmd"):
        process_fields(_config(), (), (), ())


def test_users_by_number_and_by_name_from_the_topmost_layer_with_the_file(tmp_path):
    top, base = tmp_path / "top", tmp_path / "base"
    (top / "etc").mkdir(parents=True)
    (base / "etc").mkdir(parents=True)
    (base / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\nold:x:5:5::/:/bin/sh\n")
    (top / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n")
    (top / "etc/group").write_text("root:x:0:\nstaff:x:50:\n")
    layers = (str(top), str(base))
    assert resolve_user("", layers) == User(0, 0)
    assert resolve_user("1000", layers) == User(1000, 1001)
    assert resolve_user("app", layers) == User(1000, 1001)
    assert resolve_user("app:staff", layers) == User(1000, 50)
    assert resolve_user("7:8", layers) == User(7, 8)
    with pytest.raises(SpecError, match="no 'old'"):       # the top layer's passwd is the one seen
        resolve_user("old", layers)


def test_a_passwd_symlink_is_read_inside_the_layer_never_on_the_host(tmp_path):
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    os.symlink("/etc/mine", layer / "etc/passwd")            # absolute: must stay inside the layer
    (layer / "etc/mine").write_text("inside:x:42:42::/:/bin/sh\n")
    assert resolve_user("inside", (str(layer),)) == User(42, 42)
    with pytest.raises(SpecError):
        resolve_user("root", (str(layer),))                  # the host's root is not in there
