"""An image's User resolved in its own /etc/passwd and /etc/group."""

from __future__ import annotations

import os

import pytest

from runtime.errors import SpecError
from runtime.spec.image_config import resolve_user
from runtime.spec.model import User


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
