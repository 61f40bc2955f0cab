"""An all-in-one node: the control plane and the node agent in one asyncio process (`nodeagent up`).

What runs, in start-up order (each needs the one before):

    1. the API server (controlplane/apiserver) on the data dir's SQLite file; its PKI is made
       first, before the loop serves (openssl is blocking)
    2. an API client to it over loopback, with the admin token
    3. the scheduler and the controllers (controlplane/scheduler, controlplane/controllers), each
       leader-elected through a Lease exactly as in a multi-node control plane
    4. the CNI network config for this node's pod range (node IPAM gives the range, unless
       --pod-cidr does), then the node agent (nodeagent/node.py) with its runtime side
       (nodeagent/cri) — which registers the Node and starts running the pods bound to it

One process, one event loop: the pieces talk to each other only through the API, as separate
processes on separate machines would, so that splitting them (`nodeagent server` + `nodeagent
agent`) changes nothing but the process boundary. It is also the cheapest shape for memory:
one interpreter, one copy of every imported module.

Who owns what on disk (under --data-dir):

    control-plane/   the API server: state.db, pki/
    admin.kubeconfig the kubeconfig a person uses (written on every start: the address may change)
    agent/           the node agent's state: pods/, the runtime's and CNI's state
    cni/             this node's CNI config (net.d) and IPAM store
    nodeagent.pid    "<pid> <start time>" of the running `up` (the start time guards against pid reuse)
    nodeagent.log    the output of a detached `up -d`
"""

from __future__ import annotations

import json
import logging
import os
import signal
import ssl
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import localfs
from nodeagent.errors import AgentError

log = logging.getLogger("nodeagent.up")

PID_FILE = "nodeagent.pid"


@dataclass(frozen=True)
class NodeConfig:
    data_dir: str
    listen: str = "127.0.0.1:6443"
    node_name: str | None = None
    node_ip: str | None = None
    pod_cidr: str | None = None
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/12"
    controllers: str = "*"
    scheduler: bool = True
    image_gc: object = None          # nodeagent.imagegc.ImageGCPolicy; None: the kubelet's defaults
    eviction: object = None          # nodeagent.eviction.EvictionConfig; None: the kubelet's defaults

    def components(self):
        """The control-plane parts besides the API server (controlplane/components.py)."""
        from controlplane.components import Components

        return Components(self.scheduler, self.controllers, self.cluster_cidr)

    @property
    def control_plane_dir(self) -> Path:
        return Path(self.data_dir) / "control-plane"

    @property
    def agent_dir(self) -> Path:
        return Path(self.data_dir) / "agent"

    @property
    def kubeconfig(self) -> Path:
        return Path(self.data_dir) / "admin.kubeconfig"


# --- the pid file -----------------------------------------------------------------------------------
def _start_time(pid: int) -> int | None:
    """The process's start time (the runtime's, runtime/statefiles.py: clock ticks since boot), or
    None once it has exited — a zombie (killed, not yet reaped by whoever inherited it) included.
    A reused pid does not share it."""
    from runtime.statefiles import process_start_time

    try:
        os.waitpid(pid, os.WNOHANG)   # our own child (start_detached): reap it if it died
    except ChildProcessError:
        pass
    return process_start_time(pid)


def running_pid(data_dir: str) -> int | None:
    """The pid of the `up` serving data_dir, if it is still that process."""
    try:
        pid_s, start_s = Path(data_dir, PID_FILE).read_text().split()
        pid, start = int(pid_s), int(start_s)
    except (OSError, ValueError):
        return None
    return pid if _start_time(pid) == start else None


def _write_pid_file(data_dir: str) -> Path:
    path = Path(data_dir, PID_FILE)
    localfs.write_atomic(path, f"{os.getpid()} {_start_time(os.getpid())}\n", durable=False)
    return path


# --- detached start ---------------------------------------------------------------------------------
def start_detached(argv: list[str], data_dir: str, log_path: str) -> int:
    """Start `argv` in a session of its own with its output in log_path; return its pid."""
    import subprocess

    os.makedirs(data_dir, exist_ok=True)
    with open(log_path, "ab") as out, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(argv, stdin=devnull, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    return proc.pid


def _admin_request(data_dir: str, path: str) -> dict:
    """GET path from the API server with the admin kubeconfig (blocking: the CLI only)."""
    import base64

    import yaml

    cfg = yaml.safe_load(Path(data_dir, "admin.kubeconfig").read_text())
    cluster = cfg["clusters"][0]["cluster"]
    token = cfg["users"][0]["user"]["token"]
    ctx = ssl.create_default_context(cadata=base64.b64decode(
        cluster["certificate-authority-data"]).decode())
    req = urllib.request.Request(cluster["server"] + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
        return json.load(resp)


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_ready(data_dir: str, pid: int, timeout: float) -> None:
    """Block until a Node is Ready in the cluster served from data_dir, or say why not."""
    deadline = time.monotonic() + timeout
    log_path = os.path.join(data_dir, "nodeagent.log")
    last = "the API server has not answered yet"
    while time.monotonic() < deadline:
        if _start_time(pid) is None:
            raise AgentError(f"the node process exited during start-up; the end of {log_path}:\n"
                             f"{_tail(log_path)}")
        try:
            nodes = _admin_request(data_dir, "/api/v1/nodes").get("items", [])
            ready = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                             for c in (n.get("status") or {}).get("conditions") or [])]
            if ready:
                return
            last = "no Node is Ready yet" if nodes else "no Node has registered yet"
        except (OSError, ValueError, KeyError) as e:
            last = f"the API server has not answered yet ({e})"
        time.sleep(0.25)
    raise AgentError(f"the node is not Ready after {timeout:.0f} s: {last}; see {log_path}")


# --- the node process -------------------------------------------------------------------------------
def run(config: NodeConfig) -> int:
    """Run the all-in-one node in this process until SIGTERM/SIGINT."""
    import asyncio

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.makedirs(config.data_dir, exist_ok=True)
    server = _api_server(config)
    try:
        server.prepare_pki()                       # blocking (openssl): before the loop serves
    except Exception as e:  # noqa: BLE001 - APIError, OSError: one line for the user
        raise AgentError(f"certificates: {e}") from e
    pid_file = _write_pid_file(config.data_dir)
    try:
        asyncio.run(_serve(config, server))
    finally:
        if running_pid(config.data_dir) == os.getpid():
            pid_file.unlink(missing_ok=True)
    return 0


def _api_server(config: NodeConfig):
    from controlplane.apiserver.server import APIServer, ServerConfig

    host, _, port = config.listen.rpartition(":")
    try:
        port_n = int(port)
    except ValueError:
        raise AgentError(f"--listen: expected HOST:PORT, got {config.listen!r}") from None
    host = host.strip("[]") or "127.0.0.1"
    advertise = [config.node_ip] if config.node_ip else []
    return APIServer(ServerConfig(config.control_plane_dir, host, port_n, advertise,
                                  service_cidr=config.service_cidr))


async def _serve(config: NodeConfig, server) -> None:
    from controlplane.apiserver import kubeconfig

    def after_start() -> None:
        kubeconfig.write(config.kubeconfig, server.url, server.pki)

    await serve(server, lambda api: _parts(config, api, server), after_start)


async def serve(server, make_parts, after_start=None) -> None:
    """Serve `server` and the parts `make_parts(api)` gives — (name, coroutine) pairs, clients of
    the server over loopback — until SIGTERM/SIGINT, or until a part fails (then AgentError).
    `nodeagent up` and `nodeagent server` both run this way."""
    import asyncio

    from apiclient import ApiClient, ClientConfig

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await server.start()
    if after_start is not None:
        after_start()
    api = ApiClient(ClientConfig(server=server.url, token=server.token,
                                 ca_pem=server.pki.ca_cert.read_bytes() if server.pki else None))
    tasks = [asyncio.create_task(coro, name=name) for name, coro in make_parts(api)]
    try:
        stop_wait = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stop_wait and t.exception() is not None:
                log.error("%s failed: %s", t.get_name(), t.exception())
                raise AgentError(f"{t.get_name()}: {t.exception()}") from t.exception()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await api.close()
        await server.stop()


def _parts(config: NodeConfig, api, server) -> list[tuple[str, object]]:
    """The coroutines that make up the node besides the API server: (name, coroutine)."""
    from controlplane import components
    from nodeagent.node import run_node_agent

    return [*components.parts(api, config.components()),
            ("agent", run_node_agent(config, api))]


# --- down -------------------------------------------------------------------------------------------
def stop_and_clean(data_dir: str, timeout: float) -> list[str]:
    """Stop the `up` serving data_dir (if running) and remove what the node made. Lines to print."""
    out: list[str] = []
    pid = running_pid(data_dir)
    if pid is not None:
        _stop_process(pid, timeout)
        out.append(f"stopped the node process (pid {pid})")
    netns_file = Path(data_dir, "netns")
    netns = netns_file.read_text().strip() if netns_file.exists() else None
    out += _clean_node(data_dir, netns)
    if netns:
        import subprocess
        name = os.path.basename(netns)
        gone = subprocess.run(["ip", "netns", "delete", name], capture_output=True, text=True)
        if gone.returncode == 0 or not os.path.exists(netns):
            netns_file.unlink(missing_ok=True)
            out.append(f"removed network namespace {name}")
        else:
            raise AgentError(f"ip netns delete {name}: {gone.stderr.strip()}")
    Path(data_dir, PID_FILE).unlink(missing_ok=True)
    return out


def _stop_process(pid: int, timeout: float) -> None:
    """SIGTERM, wait on a pidfd (no polling of a pid that could be reused), SIGKILL at the timeout."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        signal.pidfd_send_signal(fd, signal.SIGTERM)
        if not select.select([fd], [], [], timeout)[0]:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            select.select([fd], [], [], 10)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def _clean_node(data_dir: str, netns: str | None) -> list[str]:
    """Remove every pod the node left (containers, sandboxes, IPs, cgroups, mounts) and the node's
    own network objects. Runs inside the node's namespace when it has one."""
    from nodeagent.node import clean_node
    return clean_node(data_dir, netns)
