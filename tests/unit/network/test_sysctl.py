"""network/sysctl.py against a fake /proc: the two spellings of a key, and set-only-if-different."""

from __future__ import annotations

from network.sysctl import ensure_sysctl, read_sysctl, sysctl_path


def test_dotted_and_slashed_names(tmp_path):
    assert sysctl_path("net.ipv4.ip_forward", tmp_path) == tmp_path / "sys/net/ipv4/ip_forward"
    # an interface name may hold dots (a VLAN): the slash form keeps them, as sysctl(8) does
    assert (sysctl_path("net/ipv4/conf/eth0.100/route_localnet", tmp_path)
            == tmp_path / "sys/net/ipv4/conf/eth0.100/route_localnet")


def test_ensure_writes_only_a_different_value(tmp_path):
    key = "net/ipv4/conf/cni0/route_localnet"
    path = sysctl_path(key, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("0\n")
    changes = ensure_sysctl(key, "1", "why", proc=tmp_path)
    assert read_sysctl(key, tmp_path) == "1"
    assert [c.command for c in changes] == [f"sysctl -w {key}=1"]
    assert ensure_sysctl(key, "1", proc=tmp_path) == []
