"""The pure parts of sandboxes and events: the pod's /etc files, the sandbox config surviving a
restart as JSON, the hosts file's shape, times from the runtime, and the event hub publishing a
STOPPED event when a watched process exits (a pidfd on the loop, no polling)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from nodeagent.cri.api import (ContainerEventType, CreateContainerError, DNSConfig,
                               PodSandboxConfig, PodSandboxMetadata, PortMapping)
from nodeagent.cri.containers import parse_time, stop_signal
from nodeagent.cri.events import EventHub
from nodeagent.cri.sandbox import config_from_json, config_to_json, hosts_file, resolv_conf


def test_sandbox_config_round_trips_through_json():
    c = PodSandboxConfig(metadata=PodSandboxMetadata("web", "ns", "u1", 2), hostname="web",
                         log_directory="/var/log/pods/ns_web_u1",
                         dns=DNSConfig(("10.96.0.10",), ("ns.svc.cluster.local",), ("ndots:5",)),
                         port_mappings=(PortMapping(80, 8080, "TCP", "127.0.0.1"),),
                         labels={"app": "web"}, annotations={"a": "b"}, sysctls={"net.x": "1"},
                         cgroup_parent="kubepods/podu1")
    import json
    assert config_from_json(json.loads(json.dumps(config_to_json(c)))) == c


def test_hosts_file_names_the_pod_ip_as_the_kubelet_writes_it():
    text = hosts_file("10.244.1.5", "web")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert text.endswith("10.244.1.5\tweb\n")
    assert "web" not in hosts_file(None, "web")


def test_resolv_conf_from_the_dns_config_or_the_nodes_own(tmp_path):
    dns = DNSConfig(("10.96.0.10",), ("default.svc.cluster.local", "svc.cluster.local"), ("ndots:5",))
    # containerd's order (parseDNSOptions): search, then nameservers, then options
    assert resolv_conf(dns) == ("search default.svc.cluster.local svc.cluster.local\n"
                                "nameserver 10.96.0.10\n"
                                "options ndots:5\n")
    node = tmp_path / "resolv.conf"
    node.write_text("nameserver 192.0.2.53\n")
    assert resolv_conf(DNSConfig(), str(node)) == "nameserver 192.0.2.53\n"


def test_runtime_times_and_stop_signals():
    assert parse_time("2026-12-06T01:20:54.123456789Z") == pytest.approx(1796520054.123456789)
    assert parse_time("2026-12-06T01:20:54Z") == 1796520054.0
    assert parse_time(None) is None
    assert stop_signal(None) == 15 and stop_signal("SIGUSR1") == 10 and stop_signal("quit") == 3
    with pytest.raises(CreateContainerError, match="SIGNOPE"):
        stop_signal("NOPE")


def test_the_hub_publishes_stopped_when_a_watched_process_exits():
    async def main():
        hub = EventHub()
        events = hub.subscribe()
        proc = subprocess.Popen(["sleep", "0.2"])
        try:
            from runtime.container.state import process_start_time
            hub.publish("c1", "s1", ContainerEventType.STARTED)
            hub.watch("c1", "s1", (proc.pid, process_start_time(proc.pid)))
            first = await asyncio.wait_for(events.__anext__(), 5)
            second = await asyncio.wait_for(events.__anext__(), 5)
        finally:
            proc.wait()
            hub.close()
            events.close()
        return first, second

    first, second = asyncio.run(main())
    assert (first.container_id, first.type) == ("c1", ContainerEventType.STARTED)
    assert (second.container_id, second.pod_sandbox_id, second.type) == \
        ("c1", "s1", ContainerEventType.STOPPED)


def test_watching_a_process_that_is_gone_publishes_stopped_at_once():
    async def main():
        hub = EventHub()
        events = hub.subscribe()
        hub.watch("c2", "s1", (2 ** 22 - 1, 12345))        # no such (pid, start time)
        return await asyncio.wait_for(events.__anext__(), 5)
    assert asyncio.run(main()).type is ContainerEventType.STOPPED


def test_the_store_never_turns_a_foreign_id_into_a_path(tmp_path):
    from nodeagent.cri.store import Store, new_id, valid_id

    store = Store(tmp_path / "state")
    store.make_dirs()
    (tmp_path / "precious").mkdir()
    for bad in ("../..", "..", "", "/etc", "X" * 32, new_id()[:-1]):
        assert not valid_id(bad)
        store.drop_sandbox(bad)
        store.drop_container(bad)
        assert store.sandbox(bad) is None and store.container(bad) is None
        with pytest.raises(ValueError):
            store.sandbox_dir(bad)
    assert (tmp_path / "precious").is_dir() and valid_id(new_id())


def test_an_absolute_cgroup_parent_outside_the_agents_cgroup_is_refused():
    # The runtime honours any absolute cgroupsPath (as runc does); the agent keeps pods below
    # its own cgroup itself.
    import pytest

    from nodeagent.cri import cgroups
    from nodeagent.cri.api import CreateContainerError
    from runtime.cgroups.layout import current

    layout = current()
    hierarchies = list(layout.v1.values()) + ([layout.unified] if layout.unified else [])
    if not hierarchies or all(h.own_path == "/" for h in hierarchies):
        pytest.skip("our own cgroup is the root everywhere: nothing is outside it")
    with pytest.raises(CreateContainerError, match="outside the agent's own cgroup"):
        cgroups.check_parent("/elsewhere/pods")
    assert cgroups.check_parent("pods/p1") == "pods/p1"
