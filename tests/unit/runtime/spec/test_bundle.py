"""config.json ⇄ ContainerSpec: what runc accepts we accept, and every refusal names the field."""

from __future__ import annotations

import copy
import json

import pytest

from runtime.errors import SpecError
from runtime.spec.bundle import load_bundle, spec_from_dict, spec_to_dict, write_bundle
from runtime.spec.defaults import default_spec
from runtime.spec.model import LAYERS_ANNOTATION

# What `runc spec` (1.1.5) writes, trimmed to the fields that matter here.
RUNC_SPEC = {
    "ociVersion": "1.0.2-dev",
    "process": {"terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
                "env": ["PATH=/usr/bin:/bin", "TERM=xterm"], "cwd": "/",
                "capabilities": {k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                                 for k in ("bounding", "effective", "permitted", "ambient")},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": True},
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}],
    "linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]},
              "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
              "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]},
}


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def _load(bundle, config):
    (bundle / "config.json").write_text(json.dumps(config))
    return load_bundle(str(bundle))


def test_reads_what_runc_spec_writes(bundle):
    spec = _load(bundle, RUNC_SPEC)
    assert spec.process.args == ("sh",)
    assert spec.process.terminal and spec.process.no_new_privileges
    assert spec.root.path == str(bundle / "rootfs") and spec.root.readonly
    assert spec.process.rlimits[0].soft == 1024
    assert [n.type for n in spec.linux.namespaces] == ["pid", "network", "ipc", "uts", "mount"]
    assert spec.linux.resources.devices[0].allow is False
    assert spec.mounts[1].options == ("nosuid", "strictatime", "mode=755", "size=65536k")


@pytest.mark.parametrize("change,field,problem", [
    (lambda c: c["process"].pop("args"), "process.args", "must name the program"),
    (lambda c: c["process"]["capabilities"]["bounding"].insert(0, "CAP_FOO"),
     "process.capabilities.bounding[0]", "unknown capability 'CAP_FOO'"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "linux.namespaces[5].type", "listed twice"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces[5].type", "unknown namespace"),
    (lambda c: c["root"].update(path="nope"), "root.path", "does not exist"),
    (lambda c: c["process"].update(cwd="relative"), "process.cwd", "absolute"),
    (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}),
     "process.rlimits[1].type", "unknown rlimit"),
    (lambda c: c["process"]["rlimits"][0].update(soft=2048), "process.rlimits[0].soft", "above the hard"),
    (lambda c: c["process"]["env"].append("NOEQUALS"), "process.env[2]", "not KEY=value"),
    (lambda c: c["linux"].update(uidMappings=[{"containerID": 0}]), "linux.uidMappings[0].hostID",
     "is required"),
    (lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     "linux.uidMappings", "need a new user namespace"),
    (lambda c: c["linux"]["resources"].update(rdma={"mlx5_1": {"hcaHandles": 3}}),
     "linux.resources.rdma", "not supported"),
    (lambda c: c["linux"].update(devices=[{"path": "/dev/x", "type": "q"}]),
     "linux.devices[0].type", "must be c, b, u or p"),
    (lambda c: c.update(hooks={"prestart": [{"path": "relative"}]}), "hooks.prestart[0].path",
     "absolute"),
    (lambda c: c["process"].update(apparmorProfile="docker-default"), "process.apparmorProfile",
     "not supported"),
    (lambda c: c["linux"].update(mountLabel="system_u:object_r:svirt_sandbox_file_t:s0"),
     "linux.mountLabel", "not supported"),
    (lambda c: c["linux"].update(resources={"memory": {"limit": "64Mi"}}),
     "linux.resources.memory.limit", "must be an integer"),
    (lambda c: c.pop("ociVersion"), "ociVersion", "is required"),
    (lambda c: c["mounts"].append({"destination": "relative"}), "mounts[2].destination", "absolute"),
])
def test_refusals_name_the_field(bundle, change, field, problem):
    config = copy.deepcopy(RUNC_SPEC)
    change(config)
    with pytest.raises(SpecError) as e:
        _load(bundle, config)
    assert e.value.field == field
    assert problem in e.value.problem
    assert str(e.value).startswith(str(bundle / "config.json"))


def test_missing_and_broken_config_json(tmp_path):
    with pytest.raises(SpecError, match="no such file in bundle"):
        load_bundle(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(SpecError, match="cannot read it"):
        load_bundle(str(tmp_path))


def test_default_spec_round_trips_through_config_json(tmp_path):
    (tmp_path / "rootfs").mkdir()
    spec = default_spec(("sleep", "1"), str(tmp_path / "rootfs"), hostname="x")
    write_bundle(spec, str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["root"]["path"] == "rootfs"               # relative, as runc spec writes it
    assert load_bundle(str(tmp_path)) == spec


def test_overlay_layers_travel_as_an_annotation(tmp_path):
    for d in ("top", "base"):
        (tmp_path / d).mkdir()
    spec = default_spec(("true",), str(tmp_path / "rootfs"),
                        layers=(str(tmp_path / "top"), str(tmp_path / "base")))
    config = spec_to_dict(spec, str(tmp_path))
    assert config["annotations"][LAYERS_ANNOTATION] == f"{tmp_path}/top:{tmp_path}/base"
    again = spec_from_dict(config, str(tmp_path))
    assert again.root.layers == spec.root.layers
