"""Doctor on fake hosts: the verdicts, the fixes, the exit status and the JSON a user relies on."""

from __future__ import annotations

import dataclasses
import json
import subprocess

import pytest

from nodeagent import cli
from nodeagent.doctor import DoctorEnv, Verdict, run_checks
from nodeagent.doctor.report import exit_status, overall, to_json, to_table
from runtime.cgroups.probe import ControllerProbe
from tests.fakehost import FakeHost

GIB = 1 << 30


def _ok_run(argv):
    return subprocess.CompletedProcess(argv, 0, stdout='{"nftables": []}', stderr="")


def _probe_all_usable(layout):
    out = {c: ControllerProbe(c, 1, True, "delegated") for c in layout.v1}
    if layout.unified:
        out.update({c: ControllerProbe(c, 2, True, "root") for c in layout.unified.controllers
                    if c not in out})
    return out


@pytest.fixture
def host(tmp_path):
    h = FakeHost(tmp_path)
    h.namespaces("mnt", "uts", "ipc", "pid", "net", "cgroup", "user", "time")
    h.filesystems("tmpfs", "overlay", "cgroup2")
    h.config(OVERLAY_FS="y", VETH="y", BRIDGE="y", VXLAN="m", NF_TABLES="y")
    h.modules("modules.dep", "kernel/drivers/net/vxlan/vxlan.ko")
    h.sysctl("net.ipv4.ip_forward", "1")
    h.sysctl("net.bridge.bridge-nf-call-iptables", "1")
    return h


def _env(host, **over):
    env = DoctorEnv(paths=host.paths, euid=0, python=(3, 11, 2), state_dir=host.root / "state",
                    which=lambda name: f"/usr/sbin/{name}", run=_ok_run,
                    cgroup_probe=_probe_all_usable, free_bytes=lambda p: 50 * GIB)
    return dataclasses.replace(env, **over)


def _rows(findings):
    return {f.check: f for f in findings}


def test_a_healthy_v2_node_passes_with_exit_0(host):
    host.cgroup_v2(controllers="cpuset cpu io memory pids")
    findings = run_checks(_env(host))
    assert overall(findings) is Verdict.OK, to_table(findings)
    assert exit_status(findings) == 0
    doc = json.loads(to_json(findings))
    assert doc["verdict"] == "ok"
    assert doc["cgroup"]["mode"] == "v2"
    assert {"cpu", "memory", "pids", "io"} <= set(doc["cgroup"]["usable"])


def test_hybrid_host_uses_the_v1_controllers(host):
    host.cgroup_v1(own={"memory": "/process_api/x"})
    host.cgroup_v2(controllers="hugetlb", mountpoint="/sys/fs/cgroup/unified")
    findings = run_checks(_env(host))
    rows = _rows(findings)
    assert rows["cgroup mode"].data["mode"] == "hybrid"
    assert rows["cgroup mode"].data["limits_through"] == "v1"
    assert "hugetlb" not in rows["cgroup mode"].data["usable"]
    assert rows["cgroup mode"].data["v2"] == ["hugetlb"]
    assert rows["cgroup memory"].verdict is Verdict.OK and rows["cgroup memory"].detail.startswith("v1")
    assert "cgroup io" not in rows and "cgroup blkio" in rows


def test_missing_required_controller_fails_with_a_fix(host):
    host.cgroup_v2(controllers="cpu memory")           # no pids delegated to us
    findings = run_checks(_env(host, cgroup_probe=lambda layout: {
        "cpu": ControllerProbe("cpu", 2, True, "x"),
        "memory": ControllerProbe("memory", 2, True, "x")}))
    pids = _rows(findings)["cgroup pids"]
    assert pids.verdict is Verdict.FAIL and "subtree_control" in pids.fix
    assert _rows(findings)["cgroup io"].verdict is Verdict.WARN   # optional: warns only
    assert exit_status(findings) == 1


def test_no_overlayfs_is_a_failure(host):
    host.cgroup_v2()
    host.filesystems("tmpfs")
    host.config(VETH="y", BRIDGE="y", VXLAN="y", NF_TABLES="y")  # OVERLAY_FS not set
    findings = run_checks(_env(host))
    row = _rows(findings)["overlayfs"]
    assert row.verdict is Verdict.FAIL and "modprobe overlay" in row.fix
    assert exit_status(findings) == 1


def test_missing_vxlan_only_warns(host):
    host.cgroup_v2()
    host.config(OVERLAY_FS="y", VETH="y", BRIDGE="y", NF_TABLES="y")
    findings = run_checks(_env(host))
    assert _rows(findings)["vxlan"].verdict is Verdict.WARN
    assert exit_status(findings) == 0


def test_sysctls_off_warn_and_say_how_to_fix(host):
    host.cgroup_v2()
    host.sysctl("net.ipv4.ip_forward", "0")
    (host.root / "proc/sys/net/bridge/bridge-nf-call-iptables").unlink()
    rows = _rows(run_checks(_env(host)))
    assert rows["net.ipv4.ip_forward"].verdict is Verdict.WARN
    assert rows["net.ipv4.ip_forward"].fix == "sysctl -w net.ipv4.ip_forward=1"
    nf = rows["net.bridge.bridge-nf-call-iptables"]
    assert "br_netfilter not loaded" in nf.detail and "modprobe br_netfilter" in nf.fix


def test_missing_binaries_and_failing_nft(host):
    host.cgroup_v2()
    findings = run_checks(_env(host, which=lambda name: None))
    rows = _rows(findings)
    assert rows["binary nft"].verdict is Verdict.FAIL and rows["binary nft"].fix == "apt-get install nftables"
    assert rows["binary ip"].fix == "apt-get install iproute2"
    assert rows["nftables"].verdict is Verdict.FAIL

    def nft_fails(argv):
        return subprocess.CompletedProcess(argv, 1, "", "Error: Protocol not supported\n")
    rows = _rows(run_checks(_env(host, run=nft_fails)))
    assert rows["nftables"].verdict is Verdict.FAIL and "Protocol not supported" in rows["nftables"].detail


def test_not_root_and_old_python_fail(host):
    host.cgroup_v2()
    rows = _rows(run_checks(_env(host, euid=1000, python=(3, 10, 12))))
    assert rows["privileges"].verdict is Verdict.FAIL and "sudo" in rows["privileges"].fix
    assert rows["python"].verdict is Verdict.FAIL and "3.10.12" in rows["python"].detail


def test_disk_thresholds(host):
    host.cgroup_v2()
    assert _rows(run_checks(_env(host, free_bytes=lambda p: GIB // 2)))["disk"].verdict is Verdict.FAIL
    assert _rows(run_checks(_env(host, free_bytes=lambda p: 3 * GIB)))["disk"].verdict is Verdict.WARN
    row = _rows(run_checks(_env(host)))["disk"]
    assert row.verdict is Verdict.OK and row.data["path"] == str(host.root)  # nearest existing parent


def test_disabled_namespace_fails(host):
    host.cgroup_v2()
    host.namespaces("cgroup", disabled=("cgroup",))
    row = _rows(run_checks(_env(host)))["namespaces"]
    assert row.verdict is Verdict.FAIL and "cgroup" in row.detail


def test_table_shows_every_check_with_fix_lines_for_problems(host):
    host.cgroup_v2()
    host.sysctl("net.ipv4.ip_forward", "0")
    findings = run_checks(_env(host))
    table = to_table(findings, width=100)
    for f in findings:
        assert f.check in table
    assert "fix: sysctl -w net.ipv4.ip_forward=1" in table
    assert table.splitlines()[-1].startswith("0 failed, 1 warnings")


def test_cli_json_output_parses_and_sets_exit_status(host, monkeypatch, capsys):
    host.cgroup_v2()
    host.filesystems("tmpfs")
    host.config(VETH="y", BRIDGE="y", NF_TABLES="y")
    import nodeagent.doctor as doctor_pkg

    monkeypatch.setattr(doctor_pkg, "DoctorEnv", lambda state_dir: _env(host, state_dir=state_dir))
    rc = cli.main(["doctor", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["verdict"] == "fail"
    assert any(c["check"] == "overlayfs" and c["verdict"] == "fail" for c in doc["checks"])
