"""`nodeagent run` flags that build the spec: volumes, host network, user, workdir, env, read-only."""

from __future__ import annotations

import os


def test_volumes_read_write_and_read_only(rt):
    src = rt.base / "vol"
    src.mkdir()
    (src / "in").write_text("from the host\n")
    out = rt.run("--rm", "-v", f"{src}:/data", "-v", f"{src}:/ro:ro", str(rt.rootfs), "sh", "-c",
                 "cat /data/in; echo new > /data/out; (echo x > /ro/x) 2>&1; true")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "from the host"
    assert "Read-only file system" in out.stdout
    assert (src / "out").read_text() == "new\n"       # the container wrote through the bind mount
    assert not (src / "x").exists()
    bad = rt.run("--rm", "-v", "relative:/x", str(rt.rootfs), "true")
    assert bad.returncode == 125 and "--volume" in bad.stderr


def test_host_network_shares_the_hosts_network_namespace(rt):
    own = os.readlink("/proc/self/ns/net")
    out = rt.run("--rm", "--net", "host", str(rt.rootfs), "readlink", "/proc/self/ns/net")
    assert out.stdout.strip() == own
    out = rt.run("--rm", str(rt.rootfs), "sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net")
    lines = out.stdout.split()
    assert lines[0] != own and lines[1:] == ["lo"]     # --net none: only a loopback


def test_a_network_namespace_of_its_own_has_its_loopback_up(rt):
    """As docker's --network none: 127.0.0.1 answers inside (a new netns starts with lo down)."""
    out = rt.run("--rm", str(rt.rootfs), "sh", "-c", "cat /sys/class/net/lo/flags; ping -c1 -W2 127.0.0.1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert int(out.stdout.split()[0], 16) & 0x1                      # IFF_UP
    assert "1 packets received" in out.stdout


def test_explain_writes_each_device_rule_once(rt):
    out = rt.run("--rm", "--explain", str(rt.rootfs), "true")
    assert out.returncode == 0, out.stderr
    rules = [line.strip() for line in out.stderr.splitlines() if "devices.allow" in line or "devices.deny" in line]
    assert len(rules) == len(set(rules)), "\n".join(rules)


def test_user_workdir_env_and_read_only_root(rt):
    out = rt.run("--rm", "-u", "65534:65534", "-w", "/tmp", "-e", "GREETING=hi", "--read-only",
                 str(rt.rootfs), "sh", "-c", "id -u; pwd; echo $GREETING; (touch /x) 2>&1; touch /tmp/y && echo tmp-ok")
    lines = out.stdout.splitlines()
    assert lines[:3] == ["65534", "/tmp", "hi"]
    assert "Read-only file system" in lines[3]
    # /tmp is part of the read-only root here (no tmpfs was asked for): writing there fails too
    assert "tmp-ok" not in out.stdout
