"""The checks that keep bad values away from the kernel: IDs, resource limits, hostnames, and a
config.json too deep to parse — each refused with the field named."""

from __future__ import annotations

import json

import pytest

from runtime.errors import SpecError
from runtime.spec.bundle import load_bundle
from runtime.spec.image_config import resolve_user
from runtime.spec.limits import PID_MAX_LIMIT, first_problem
from runtime.spec.model import MAX_ID, Cpu, Memory, Pids, Resources, User, id_problem
from runtime.spec.names import check_hostname


@pytest.mark.parametrize("value", [-1, 4294967295, 2**32, 2**31, -2**40, "0", None, True])
def test_ids_outside_0_to_2_31_minus_1_are_refused(value):
    assert id_problem(value) is not None


@pytest.mark.parametrize("value", [0, 1, 65534, MAX_ID])
def test_ids_inside_are_fine(value):
    assert id_problem(value) is None


def test_the_unchanged_value_says_what_it_would_do():
    assert "would stay root" in id_problem(4294967295, "gid")


def test_user_refuses_a_bad_id_however_it_is_built():
    with pytest.raises(SpecError, match="user.additional_gids"):
        User(0, 0, (5, -1))


@pytest.mark.parametrize("resources,field", [
    (Resources(memory=Memory(limit=-100)), "memory.limit"),
    (Resources(memory=Memory(limit=0)), "memory.limit"),
    (Resources(memory=Memory(reservation=-2)), "memory.reservation"),
    (Resources(memory=Memory(limit=2**63)), "memory.limit"),
    (Resources(memory=Memory(limit=100 << 20, swap=50 << 20)), "memory.swap"),
    (Resources(cpu=Cpu(shares=1)), "cpu.shares"),
    (Resources(cpu=Cpu(period=0)), "cpu.period"),
    (Resources(cpu=Cpu(quota=0)), "cpu.quota"),
    (Resources(cpu=Cpu(quota=-7)), "cpu.quota"),
    (Resources(pids=Pids(2**63)), "pids.limit"),
    (Resources(pids=Pids(-2)), "pids.limit"),
])
def test_limits_the_kernel_cannot_take(resources, field):
    assert first_problem(resources)[0] == field


@pytest.mark.parametrize("resources", [
    Resources(), Resources(memory=Memory(limit=-1, swap=-1)), Resources(memory=Memory(limit=1)),
    Resources(cpu=Cpu(shares=1024, quota=-1, period=100000)), Resources(cpu=Cpu(quota=50000)),
    Resources(pids=Pids(-1)), Resources(pids=Pids(0)), Resources(pids=Pids(PID_MAX_LIMIT)),
])
def test_limits_that_are_fine(resources):
    assert first_problem(resources) is None


@pytest.mark.parametrize("name", ["a" * 65, "two\nlines", "tab\there", "sp ace", "", "ünï"])
def test_hostnames_refused(name):
    with pytest.raises(SpecError, match="^hostname: "):
        check_hostname(name)


def test_a_long_hostname_is_not_echoed_whole():
    with pytest.raises(SpecError) as e:
        check_hostname("x" * 300)
    assert "x" * 30 not in str(e.value) and "300 characters" in str(e.value)


@pytest.mark.parametrize("name", ["a", "web-0", "pod.ns.svc", "na_1", "a" * 64])
def test_hostnames_accepted(name):
    check_hostname(name)


def test_a_deeply_nested_config_is_one_spec_error(tmp_path):
    (tmp_path / "config.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(SpecError) as e:
        load_bundle(str(tmp_path))
    assert str(e.value).startswith(str(tmp_path / "config.json")) and "\n" not in str(e.value)


def _config(tmp_path, **user) -> None:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps({
        "ociVersion": "1.0.2", "root": {"path": "rootfs"},
        "process": {"args": ["true"], "user": {"uid": 0, "gid": 0, **user}}}))


@pytest.mark.parametrize("user,field", [
    ({"uid": -1}, "process.user.uid"), ({"gid": 4294967295}, "process.user.gid"),
    ({"additionalGids": [1, 2**32]}, "process.user.additionalGids[1]"),
])
def test_config_json_ids(tmp_path, user, field):
    _config(tmp_path, **user)
    with pytest.raises(SpecError) as e:
        load_bundle(str(tmp_path))
    assert e.value.field == field


def _layer(tmp_path, passwd: str, group: str = "root:x:0:\n") -> tuple[str]:
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc/passwd").write_text(passwd)
    (tmp_path / "etc/group").write_text(group)
    return (str(tmp_path),)


@pytest.mark.parametrize("user,passwd,group,field", [
    ("4294967295", "root:x:0:0::/:/bin/sh\n", "root:x:0:\n", "image config User"),
    ("0:-1", "root:x:0:0::/:/bin/sh\n", "root:x:0:\n", "image config User"),
    ("evil", "evil:x:4294967295:0::/:/bin/sh\n", "root:x:0:\n", "the image's /etc/passwd"),
    ("evil", "evil:x:5:-1::/:/bin/sh\n", "root:x:0:\n", "the image's /etc/passwd"),
    ("root:evil", "root:x:0:0::/:/bin/sh\n", "evil:x:2147483648:\n", "the image's /etc/group"),
])
def test_image_user_and_its_passwd_and_group(tmp_path, user, passwd, group, field):
    with pytest.raises(SpecError) as e:
        resolve_user(user, _layer(tmp_path, passwd, group))
    assert e.value.field == field and "0 to 2147483647" in str(e.value)


def test_a_good_image_user_still_resolves(tmp_path):
    assert resolve_user("app", _layer(tmp_path, "app:x:1000:1001::/:/bin/sh\n")) == User(1000, 1001)
