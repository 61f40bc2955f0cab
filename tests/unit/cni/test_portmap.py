"""The nftables JSON nodeagent-portmap asks for (the root tier runs it; here: which rules, in which
order), compared with the reference plugin's iptables rules for the same mapping."""

from __future__ import annotations

import ipaddress

from cni.plugins.portmap import MASQ_MARK, PortMapping, _base, _mapping_cmds

POD = ipaddress.ip_interface("10.244.1.5/24")
MAPPING = PortMapping(8080, 80, "tcp")


def _rules(cmds: list[dict]) -> list[list[dict]]:
    return [c["add"]["rule"]["expr"] for c in cmds if "rule" in c.get("add", {})]


def test_with_snat_the_mapping_marks_loopback_and_pod_subnet_sources_before_its_dnat():
    mark, dnat = _rules(_mapping_cmds(MAPPING, POD, "c1/eth0", snat=True))
    # the reference: "-s 10.244.1.5/24 -j CNI-HOSTPORT-SETMARK", "-s 127.0.0.1 -j ...SETMARK", DNAT
    assert mark[0]["match"]["right"] == {"set": [{"prefix": {"addr": "127.0.0.0", "len": 8}},
                                                 {"prefix": {"addr": "10.244.1.0", "len": 24}}]}
    assert mark[1]["mangle"]["value"] == {"|": [{"meta": {"key": "mark"}}, MASQ_MARK]}
    assert dnat[-1] == {"dnat": {"addr": "10.244.1.5", "port": 80}}


def test_without_snat_the_mapping_only_dnats():
    (dnat,) = _rules(_mapping_cmds(MAPPING, POD, "c1/eth0", snat=False))
    assert dnat[-1] == {"dnat": {"addr": "10.244.1.5", "port": 80}}


def test_postrouting_masquerades_the_mark_and_input_guards_the_loopback():
    chains = {c["add"]["rule"]["chain"]: c["add"]["rule"]["expr"] for c in _base()
              if "rule" in c.get("add", {})}
    assert chains["postrouting"] == [
        {"match": {"op": "==", "left": {"&": [{"meta": {"key": "mark"}}, MASQ_MARK]}, "right": MASQ_MARK}},
        {"masquerade": None}]
    assert chains["input"][-1] == {"drop": None}
    assert MASQ_MARK == 0x2000          # the reference's default markMasqBit, 13
