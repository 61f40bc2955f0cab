"""`nodeagent cni install`: put our plugins where runtimes look for them, and write a network config.

CNI plugins are found by *file name* in the bin dirs (CNI_PATH). Ours are Python console scripts;
what we install is a two-line launcher per plugin that runs it with this installation's Python:

    /opt/cni/bin/nodeagent-bridge:
        #!/path/to/.venv/bin/python
        from cni.plugins.bridge import main; main()

Names never collide with the reference plugins (`bridge`, `host-local`, ...), so both sets can share
a bin dir. The default network config (a .conflist) chains bridge (+ host-local IPAM) and portmap:

    {"cniVersion": "1.1.0", "cniVersions": ["1.0.0", "1.1.0"], "name": "nodeagent",
     "plugins": [{"type": "nodeagent-bridge", "bridge": "cni0", "isDefaultGateway": true,
                  "ipMasq": true, "hairpinMode": true, "nonMasqueradeCIDRs": [CLUSTER_CIDR],
                  "ipam": {"type": "nodeagent-host-local", "ranges": [[{"subnet": POD_CIDR}]],
                           "routes": [{"dst": "0.0.0.0/0"}]}},
                 {"type": "nodeagent-portmap", "capabilities": {"portMappings": true}, "snat": true}]}

Files are written atomically (temp file + rename): a runtime reading the conf dir or executing a
plugin at that moment sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from pathlib import Path

import localfs
from cni.invoke import BUILTIN_PLUGINS

DEFAULT_BIN_DIR = "/opt/cni/bin"
DEFAULT_CONF_DIR = "/etc/cni/net.d"
CONFLIST_NAME = "10-nodeagent.conflist"


def default_conflist(pod_cidr: str, *, name: str = "nodeagent", bridge: str = "cni0",
                     cluster_cidr: str | None = None, mtu: int | None = None,
                     data_dir: str | None = None) -> dict:
    subnet = ipaddress.ip_network(pod_cidr, strict=True)
    ipam: dict = {"type": "nodeagent-host-local", "ranges": [[{"subnet": str(subnet)}]],
                  "routes": [{"dst": "0.0.0.0/0" if subnet.version == 4 else "::/0"}]}
    if data_dir:
        ipam["dataDir"] = data_dir
    bridge_conf: dict = {"type": "nodeagent-bridge", "bridge": bridge, "isGateway": True,
                         "isDefaultGateway": True, "ipMasq": True, "hairpinMode": True, "ipam": ipam}
    if cluster_cidr:
        bridge_conf["nonMasqueradeCIDRs"] = [str(ipaddress.ip_network(cluster_cidr, strict=False))]
    if mtu:
        bridge_conf["mtu"] = mtu
    return {"cniVersion": "1.1.0", "cniVersions": ["1.0.0", "1.1.0"], "name": name,
            "plugins": [bridge_conf,
                        {"type": "nodeagent-portmap", "capabilities": {"portMappings": True},
                         "snat": True}]}


def _write_atomic(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    localfs.write_atomic(path, text, mode)


def launcher(module: str, python: str = sys.executable) -> str:
    return (f"#!{python}\n# nodeagent CNI plugin, written by `nodeagent cni install`\n"
            f"from {module} import main\nmain()\n")


def install_plugins(bin_dir: str | os.PathLike, python: str = sys.executable) -> list[Path]:
    out = []
    for name, module in BUILTIN_PLUGINS.items():
        path = Path(bin_dir) / name
        _write_atomic(path, launcher(module, python), 0o755)
        out.append(path)
    return out


def install_conflist(conf_dir: str | os.PathLike, conflist: dict, filename: str = CONFLIST_NAME) -> Path:
    path = Path(conf_dir) / filename
    _write_atomic(path, json.dumps(conflist, indent=2) + "\n", 0o644)
    return path
