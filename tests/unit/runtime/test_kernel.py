from __future__ import annotations

from runtime.kernel import Availability, Kernel
from tests.fakehost import FakeHost


def test_namespaces_need_the_proc_file_and_a_nonzero_limit(tmp_path):
    host = FakeHost(tmp_path)
    host.namespaces("mnt", "uts", "ipc", "pid", "net", "cgroup", "user", disabled=("user",))
    ns = Kernel(host.paths).namespaces()
    assert ns["mnt"] and ns["cgroup"]
    assert ns["user"] is False      # max_user_namespaces = 0: switched off
    assert ns["time"] is False      # no /proc/self/ns/time: the kernel predates it


def test_feature_from_proc_config_builtin_and_module(tmp_path):
    host = FakeHost(tmp_path)
    host.config(VETH="y", VXLAN="m", BRIDGE="m")
    host.modules("modules.dep", "kernel/drivers/net/vxlan/vxlan.ko.xz")
    k = Kernel(host.paths)
    assert k.feature("veth", "CONFIG_VETH").availability is Availability.BUILTIN
    assert k.feature("vxlan", "CONFIG_VXLAN").availability is Availability.MODULE
    bridge = k.feature("bridge", "CONFIG_BRIDGE")
    assert bridge.availability is Availability.MISSING and "not installed" in bridge.source
    missing = k.feature("nf_tables", "CONFIG_NF_TABLES")
    assert missing.availability is Availability.MISSING and "not set" in missing.source


def test_boot_config_is_used_when_proc_config_is_absent(tmp_path):
    host = FakeHost(tmp_path)
    host.config(where="boot", OVERLAY_FS="m")
    host.modules("modules.dep", "kernel/fs/overlayfs/overlay.ko")
    f = Kernel(host.paths).feature("overlay", "CONFIG_OVERLAY_FS", filesystem="overlay")
    assert f.availability is Availability.MODULE
    assert f.source.endswith("config-6.1.0-test: CONFIG_OVERLAY_FS=m")


def test_loaded_module_and_mountable_filesystem_win_over_config(tmp_path):
    host = FakeHost(tmp_path)
    host.config(BRIDGE="m", OVERLAY_FS="m")
    host.write("sys/module/bridge/initstate", "live\n")
    host.filesystems("tmpfs", "overlay")
    k = Kernel(host.paths)
    assert k.feature("bridge", "CONFIG_BRIDGE").availability is Availability.LOADED
    assert k.feature("overlay", "CONFIG_OVERLAY_FS", filesystem="overlay").availability is Availability.LOADED


def test_without_config_module_lists_decide_and_dash_equals_underscore(tmp_path):
    host = FakeHost(tmp_path)
    host.modules("modules.builtin", "kernel/net/netfilter/nf_tables.ko")
    host.modules("modules.dep", "kernel/net/bridge/br-netfilter.ko")
    k = Kernel(host.paths)
    assert k.feature("nf_tables", "CONFIG_NF_TABLES").availability is Availability.BUILTIN
    assert k.feature("br_netfilter", "CONFIG_BRIDGE_NETFILTER").availability is Availability.MODULE
    assert k.feature("vxlan", "CONFIG_VXLAN").availability is Availability.UNKNOWN
