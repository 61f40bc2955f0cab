"""Kubernetes units → cgroup values."""

from __future__ import annotations

import pytest

from runtime.errors import SpecError
from runtime.spec.units import (blkio_to_io_weight, millicores_to_quota, millicores_to_shares,
                                parse_cpus, parse_memory, shares_to_weight)


@pytest.mark.parametrize("text,value", [("64Mi", 64 << 20), ("1Gi", 1 << 30), ("500M", 500_000_000),
                                        ("1048576", 1048576), ("1.5Ki", 1536), ("2k", 2000)])
def test_memory_quantities(text, value):
    assert parse_memory(text) == value


@pytest.mark.parametrize("text", ["lots", "64MB", "-1", "", "1.2.3Mi"])
def test_bad_memory_names_the_field(text):
    with pytest.raises(SpecError) as e:
        parse_memory(text, "--memory")
    assert e.value.field == "--memory"


def test_cpus_and_their_two_knobs():
    assert parse_cpus("0.5") == parse_cpus("500m") == 500
    assert parse_cpus("2") == 2000
    assert millicores_to_quota(500) == 50_000           # cpu.max "50000 100000"
    assert millicores_to_quota(1) == 1_000              # the kernel's floor
    assert millicores_to_shares(1000) == 1024
    assert millicores_to_shares(1) == 2
    with pytest.raises(SpecError):
        parse_cpus("zero")
    with pytest.raises(SpecError):
        parse_cpus("0")


def test_shares_to_weight_keeps_the_defaults_aligned():
    assert shares_to_weight(1024) == 100                 # v1 default ↔ v2 default
    assert shares_to_weight(2) == 1
    assert shares_to_weight(262144) == 10000
    weights = [shares_to_weight(s) for s in (2, 10, 100, 512, 1024, 4096, 65536, 262144)]
    assert weights == sorted(weights)                    # monotonic


def test_blkio_weight_maps_onto_io_weight_range():
    assert blkio_to_io_weight(10) == 1
    assert blkio_to_io_weight(1000) == 10000
