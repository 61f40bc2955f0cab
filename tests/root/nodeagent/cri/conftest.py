"""A node for the runtime-side tests: a network namespace standing for the machine, the real CNI
config (our bridge + host-local + portmap plugins), an image store with the busybox image (every
applet), and a state dir — with a way to run the agent's side of the test inside that namespace.

    def test_x(node):
        out = node.agent('''
            sid = await rt.run_pod_sandbox(sandbox_config("web"))
            ...
            report({"ip": ...})
        ''')

`node.agent(body)` runs `body` as the inside of an `async def` in a fresh Python process in the
node's network namespace, with `rt`, `images` (the two services from open_runtime on the node's
state dir) and the helpers of AGENT_PRELUDE in scope; it returns what the body report()ed. A fresh
process per call is also how a test "restarts the agent": the services of the previous call are
gone with their process, the containers are not.

Teardown removes everything through nodeagent.cri.cleanup (in the namespace, where the bridge and
the nft rules are), then the namespace; `node.leaks()` lists what is left of ours anywhere.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.netsim import PRELUDE, REPO, SimNet

_count = itertools.count()
POD_CIDR = "10.244.7.0/24"

AGENT_PRELUDE = '''
import asyncio, json, os, sys, time
from cni.podnet import PodNetworkConfig
from nodeagent.cri import open_runtime
from nodeagent.cri.api import *
CNI = PodNetworkConfig(conf_dir={conf!r}, bin_dirs=({bin!r},), cache_dir={cache!r})
STATE, LOGS, IMAGE = {state!r}, {logs!r}, "localhost/busybox:1"
IMAGE_STORE = {images!r}
rt, images = open_runtime(STATE, cni=CNI, image_store=IMAGE_STORE)

def sandbox_config(name, **kw):
    return PodSandboxConfig(metadata=PodSandboxMetadata(name, "default", "uid-" + name),
                            hostname=name, log_directory=f"{{LOGS}}/default_{{name}}_uid-{{name}}", **kw)

def container_config(name, *command, **kw):
    kw.setdefault("image", IMAGE)
    return ContainerConfig(metadata=ContainerMetadata(name), command=tuple(command),
                           log_path=f"{{name}}/0.log", **kw)

async def run_container(sid, sconf, name, *command, **kw):
    cid = await rt.create_container(sid, container_config(name, *command, **kw), sconf)
    await rt.start_container(cid)
    return cid

async def wait_exited(cid, events=None, timeout=30):
    """The container's status once it has exited, waiting on container_events (no polling)."""
    events = events or rt.container_events()
    async def until():
        while True:
            st = await rt.container_status(cid)
            if st.state is ContainerState.EXITED:
                return st
            async for ev in events:
                if ev.container_id == cid and ev.type is ContainerEventType.STOPPED:
                    break
    return await asyncio.wait_for(until(), timeout)

def status_dict(st):
    return {{"id": st.id, "state": st.state.name, "exit_code": st.exit_code, "reason": st.reason,
            "message": st.message, "started_at": st.started_at, "finished_at": st.finished_at,
            "pid": st.pid, "log_path": st.log_path}}

def read_log(path):
    try:
        return open(path).read().splitlines()
    except FileNotFoundError:
        return []

async def exec_out(cid, *cmd):
    out, err, code = await rt.exec_sync(cid, list(cmd), 20)
    assert code == 0, (cmd, out, err, code)
    return out.decode().strip()
'''


class Node:
    def __init__(self, tmp: Path):
        from cni.install import default_conflist, install_conflist, install_plugins

        self.tmp = tmp
        self.sim = SimNet()
        self.ns = "node"
        self.sim.add_ns(self.ns)
        self.state = str(tmp / "state")
        self.logs = str(tmp / "logs")
        self.images = str(tmp / "images")
        self.bin = str(tmp / "bin")
        self.conf = str(tmp / "net.d")
        self.cache = str(tmp / "cnicache")
        install_plugins(self.bin)
        install_conflist(self.conf, default_conflist(POD_CIDR, data_dir=str(tmp / "ipam")))
        _import_busybox(tmp, self.images)
        self.prelude = AGENT_PRELUDE.format(conf=self.conf, bin=self.bin, cache=self.cache,
                                            state=self.state, logs=self.logs, images=self.images)

    def agent(self, body: str, timeout: float = 120, *, kill9: bool = False) -> dict:
        """Run `body` as the agent (see the module docstring). With `kill9`, the agent process
        SIGKILLs itself right after the body: no clean-up of any kind runs."""
        end = "    os.kill(os.getpid(), 9)\n" if kill9 else "    rt.close()\n"
        code = self.prelude + "\nasync def _main():\n" + textwrap.indent(textwrap.dedent(body), "    ") \
            + "\ntry:\n    asyncio.run(_main())\nfinally:\n    sys.stdout.flush()\n" + end
        proc = subprocess.run(["nsenter", f"--net={self.sim.path(self.ns)}", sys.executable, "-c",
                               PRELUDE.format(repo=str(REPO)) + code], capture_output=True,
                              text=True, timeout=timeout, cwd=REPO)
        if proc.returncode != (-9 if kill9 else 0):
            raise AssertionError(f"agent exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                                 f"stderr:\n{proc.stderr}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def sh(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.sim.sh(self.ns, *cmd, check=check)

    def cleanup(self) -> list[str]:
        return self.sim.py(self.ns, f"""
            from cni.podnet import PodNetworkConfig
            from nodeagent.cri import cleanup
            report(cleanup({self.state!r}, cni=PodNetworkConfig(conf_dir={self.conf!r},
                           bin_dirs=({self.bin!r},), cache_dir={self.cache!r})))
        """)

    def leaks(self, *, node_up: bool = True) -> dict:
        """What of ours is left: mounts under the tmp dir, pod veths in the node namespace,
        allocated IPs, pod cgroups, processes whose command line names the tmp dir. While the
        node is up (`node_up`), its own fixtures are not leaks: the shared mount of the
        sandboxes' directory, and the zygote with its spare workers (three processes, no more:
        a supervisor left over would be a fourth)."""
        from nodeagent.cri.cgroups import DEFAULT_PARENT, dirs

        tmp = str(self.tmp)
        pins = str(Path(self.state) / "cri" / "sandboxes")
        mounts = [ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()
                  if ln.split()[4].startswith(tmp) and not (node_up and ln.split()[4] == pins)]
        links = self.sh("ip", "-o", "link", "show").stdout
        veths = [ln.split(":")[1].strip() for ln in links.splitlines() if "veth" in ln]
        ipam = [str(p) for p in (self.tmp / "ipam").rglob("*")
                if p.is_file() and p.name[0].isdigit()]
        cgroups = [os.path.join(d, x) for d in dirs(DEFAULT_PARENT) if os.path.isdir(d)
                   for x in os.listdir(d) if os.path.isdir(os.path.join(d, x))]
        procs = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if tmp.encode() in cmd:
                    procs.append(f"{pid}: {cmd[:160]!r}")
        if node_up and len(procs) <= 3:
            procs = []
        return {"mounts": mounts, "veths": veths, "ips": ipam, "cgroups": cgroups, "procs": procs}

    NONE = {"mounts": [], "veths": [], "ips": [], "cgroups": [], "procs": []}

    def close(self) -> None:
        try:
            self.cleanup()
        finally:
            self.sim.cleanup()


def _import_busybox(tmp: Path, store_dir: str) -> None:
    from runtime.images import ImageStore
    from runtime.images.archive import import_archive
    from tests.imagekit import OciLayout
    from tests.nodekit import busybox_layer

    layout, layer = OciLayout(tmp / "oci"), busybox_layer()
    path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    layout.image([layer], tag="1", config={"Cmd": ["sh"], "Env": [path, "FROM_IMAGE=yes"]})
    layout.image([layer], tag="nocmd", config={"Env": [path]})      # neither Entrypoint nor Cmd
    asyncio.run(import_archive(ImageStore(store_dir), layout.root, repo="localhost/busybox"))


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path)
    try:
        yield n
    finally:
        n.close()
