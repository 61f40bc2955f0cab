"""Simulated hosts for the network tests: network namespaces wired together with veth pairs.

Nothing here touches the host's own network namespace: every device, address, route and nftables
rule lives in a namespace made for the test, and all traffic goes to addresses inside them.
The harness uses iproute2 and util-linux (`unshare --net=FILE`, `nsenter`) rather than the code
under test, so a bug in network/ cannot hide itself by building a wrong test network too.

    sim = SimNet()                        # /run/nodeagent-test-<pid>-<random>/
    sim.add_ns("lan"); sim.add_ns("node1")
    sim.wire("node1", "eth0", "lan", "p1") # a veth pair between two namespaces
    sim.sh("node1", "ip", "addr", ...)     # run a command inside a namespace
    sim.py("node1", "report(...)")         # run Python inside it; get back what it reported
    sim.cleanup()                          # kill what we started, remove the namespaces

A `Cluster` is the standard layout of the multi-node tests, the shape of a Vagrant setup:

    lan      a bridge br0: the VMs' private network 192.168.56.0/24
    nodeN    eth0 192.168.56.1N on the lan; nat0 10.0.2.15/24 with the default route (the NAT
             interface every Vagrant VM has, with the same address on each: the node-IP trap)
    outside  eth0 192.168.56.100: a host outside the cluster, with no route to any pod network
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRELUDE = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, {repo!r})
    def report(obj):
        sys.stdout.write("\\n" + json.dumps(obj) + "\\n")
        sys.stdout.flush()
""")


class SimNet:
    def __init__(self, tag: str | None = None):
        self.tag = tag or f"{os.getpid()}-{secrets.token_hex(3)}"
        self.dir = Path(f"/run/nodeagent-test-{self.tag}")
        self.dir.mkdir(parents=True)
        self.ns: dict[str, Path] = {}
        self._procs: list[subprocess.Popen] = []

    # --- namespaces --------------------------------------------------------------------------------
    def add_ns(self, name: str) -> Path:
        path = self.dir / name
        path.touch()
        subprocess.run(["unshare", f"--net={path}", "true"], check=True)
        self.ns[name] = path
        self.sh(name, "ip", "link", "set", "lo", "up")
        return path

    def remove_ns(self, name: str) -> None:
        path = self.ns.pop(name)
        subprocess.run(["umount", str(path)], check=False, capture_output=True)
        path.unlink(missing_ok=True)

    def path(self, name: str) -> str:
        return str(self.ns[name])

    # --- running things inside -------------------------------------------------------------------
    def sh(self, ns: str, *cmd: str, check: bool = True, timeout: float = 30, input: str | None = None
           ) -> subprocess.CompletedProcess:
        proc = subprocess.run(["nsenter", f"--net={self.ns[ns]}", *cmd], capture_output=True, text=True,
                              timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"in {ns}: {' '.join(cmd)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def py(self, ns: str, code: str, timeout: float = 60, env: dict | None = None) -> dict:
        """Run Python in a fresh interpreter inside `ns`; return the object it report()ed."""
        proc = subprocess.run(["nsenter", f"--net={self.ns[ns]}", sys.executable, "-c",
                               PRELUDE.format(repo=str(REPO)) + textwrap.dedent(code)],
                              capture_output=True, text=True, timeout=timeout, cwd=REPO,
                              env=dict(os.environ, **(env or {})))
        if proc.returncode != 0:
            raise AssertionError(f"python in {ns} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                                 f"stderr:\n{proc.stderr}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def spawn(self, ns: str, code: str) -> subprocess.Popen:
        """Start Python inside `ns` in the background (killed by cleanup)."""
        p = subprocess.Popen(["nsenter", f"--net={self.ns[ns]}", sys.executable, "-u", "-c",
                              textwrap.dedent(code)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=REPO)
        self._procs.append(p)
        return p

    def wire(self, a: str, a_if: str, b: str, b_if: str) -> None:
        """A veth pair: `a_if` in namespace a, `b_if` in namespace b, both up."""
        self.sh(a, "ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", self.path(b))
        self.sh(a, "ip", "link", "set", a_if, "up")
        self.sh(b, "ip", "link", "set", b_if, "up")

    # --- traffic ---------------------------------------------------------------------------------
    def tcp_source_seen(self, server_ns: str, client_ns: str, connect_to: str, port: int,
                        listen: str = "0.0.0.0", server_port: int | None = None) -> str:
        """Connect from `client_ns` to connect_to:port (the server listens on `server_port`, default
        the same: they differ behind a DNAT); return the client address the server saw."""
        sport = server_port or port
        server = self.spawn(server_ns, f"""
            import socket, sys
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(({listen!r}, {sport})); s.listen(1); s.settimeout(15)
            print("ready", flush=True)
            c, addr = s.accept(); c.sendall(b"hi"); c.close()
            print(addr[0], flush=True)
        """)
        assert server.stdout.readline().strip() == "ready", server.stderr.read()
        try:
            out = self.sh(client_ns, sys.executable, "-c", textwrap.dedent(f"""
                import socket
                c = socket.create_connection(({connect_to!r}, {port}), timeout=5)
                assert c.recv(2) == b"hi"
            """), check=False, timeout=20)
            if out.returncode != 0:
                server.kill()
                raise AssertionError(f"{client_ns} → {connect_to}:{port} failed:\n{out.stderr}")
            seen = server.stdout.readline().strip()
            server.wait(timeout=10)
            return seen
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()

    # --- teardown --------------------------------------------------------------------------------
    def cleanup(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for stream in (p.stdout, p.stderr):
                if stream:
                    stream.close()
        for name in list(self.ns):
            self.remove_ns(name)
        # anything else mounted under our dir (handles made by the code under test, a shared bind
        # mount of a handle dir): deepest first
        prefix = str(self.dir) + "/"
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for m in sorted({m for m in mounts if m.startswith(prefix)}, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False, capture_output=True)
        if self.dir.exists():
            shutil.rmtree(self.dir)


class Cluster(SimNet):
    """The multi-node layout described in the module docstring."""

    LAN = "192.168.56"

    def __init__(self, nodes: int = 2, tag: str | None = None):
        super().__init__(tag)
        try:
            self.add_ns("lan")
            self.sh("lan", "ip", "link", "add", "br0", "type", "bridge")
            self.sh("lan", "ip", "link", "set", "br0", "up")
            self.nodes = [f"node{i}" for i in range(1, nodes + 1)]
            for i, node in enumerate(self.nodes, start=1):
                self._host(node, f"{self.LAN}.{10 + i}", f"p{i}")
                # (no dummy driver in this kernel: a veth pair whose far end stays in the node)
                self.sh(node, "ip", "link", "add", "nat0", "type", "veth", "peer", "name", "nat0-gw")
                self.sh(node, "ip", "addr", "add", "10.0.2.15/24", "dev", "nat0")
                self.sh(node, "ip", "link", "set", "nat0-gw", "up")
                self.sh(node, "ip", "link", "set", "nat0", "up")
                self.sh(node, "ip", "route", "add", "default", "via", "10.0.2.2", "dev", "nat0")
            self._host("outside", f"{self.LAN}.100", "pout")
        except BaseException:
            self.cleanup()
            raise

    def _host(self, name: str, ip: str, lan_port: str) -> None:
        self.add_ns(name)
        self.wire(name, "eth0", "lan", lan_port)
        self.sh("lan", "ip", "link", "set", lan_port, "master", "br0")
        self.sh(name, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")

    def node_ip(self, node: str) -> str:
        return f"{self.LAN}.{10 + self.nodes.index(node) + 1}"


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
