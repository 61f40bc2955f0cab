"""A whole node for end-to-end tests and benchmarks: `nodeagent up` inside a network namespace that
stands for the machine, driven with the real kubectl — as a person would, from a shell on that node.

    node = Node(tmp_path, "e2e1")          # /run/netns/na-e2e1-<pid>, data in tmp_path/data
    node.up()                              # `nodeagent up -d --netns ...`: returns once the Node is Ready
    node.import_image(layout_or_tar, "localhost/busybox")
    node.kubectl("run", "web", "--image=localhost/busybox:1", "--", "httpd", "-f")
    node.wait_pod("web", lambda p: p["status"].get("phase") == "Running")
    node.down()                            # `nodeagent down`: nothing left behind

The node's API server listens on 127.0.0.1 *inside* the namespace, its bridge and nftables table
live there, and every command that talks to it runs there (`nsenter --net`, not `ip netns exec`,
which remounts /sys and hides the v1 cgroup mounts). The test machine's own network is never
touched. The busybox image pods run is built from Debian's busybox-static with every applet
(`busybox_image`), so `httpd`, `wget`, `nc` are there.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from tests.imagekit import OciLayout
from tests.layerkit import dir_, file_, symlink, tar_bytes

REPO = Path(__file__).resolve().parents[1]
BUSYBOX = Path("/bin/busybox")
KUBECTL = str(Path(sys.executable).parent / "kubectl")


def busybox_layer() -> bytes:
    """busybox-static with a symlink for every applet, /etc/passwd and group, /tmp, /var/www."""
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    entries = [dir_("bin"), file_("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)]
    entries += [symlink(f"bin/{a}", "busybox") for a in applets if a != "busybox"]
    entries += [dir_("etc"),
                file_("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                                    b"nobody:x:65534:65534:nobody:/home:/bin/sh\n"),
                file_("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
                dir_("tmp", mode=0o1777), dir_("root", mode=0o700), dir_("home"),
                dir_("var"), dir_("var/www"), file_("var/www/index.html", b"hello from a pod\n")]
    return tar_bytes(entries)


def busybox_image(layout_dir: Path, tag: str = "1") -> Path:
    """An OCI layout holding the image `<repo>:<tag>` (Cmd: sh), ready for `nodeagent image import`."""
    layout = OciLayout(layout_dir)
    layout.image([busybox_layer()], tag=tag, config={
        "Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]})
    return layout_dir


class Node:
    def __init__(self, base: Path, name: str = "e2e"):
        self.base = Path(base)
        self.data = self.base / "data"
        self.netns_name = f"na-{name}-{os.getpid()}-{secrets.token_hex(2)}"
        self.netns = f"/run/netns/{self.netns_name}"
        self.kubeconfig = self.data / "admin.kubeconfig"
        self.running = False

    # --- life -------------------------------------------------------------------------------------
    def up(self, *extra: str, timeout: float = 180) -> subprocess.CompletedProcess:
        out = self.nodeagent("up", "-d", "--data-dir", str(self.data), "--netns", self.netns_name,
                             *extra, timeout=timeout, in_netns=False)
        if out.returncode != 0:
            raise AssertionError(f"nodeagent up failed ({out.returncode}):\n{out.stderr}\n"
                                 f"{self.log_tail()}")
        self.running = True
        return out

    def down(self) -> subprocess.CompletedProcess:
        out = self.nodeagent("down", "--data-dir", str(self.data), timeout=180, in_netns=False)
        self.running = False
        return out

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join((self.data / "nodeagent.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- commands ---------------------------------------------------------------------------------
    def _prefix(self, in_netns: bool) -> list[str]:
        return ["nsenter", f"--net={self.netns}"] if in_netns else []

    def nodeagent(self, *args: str, timeout: float = 120, in_netns: bool = True,
                  **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*self._prefix(in_netns), sys.executable, "-m", "nodeagent", *args],
                              capture_output=True, text=True, timeout=timeout, cwd=REPO, **kw)

    def kubectl(self, *args: str, timeout: float = 60, check: bool = True,
                **kw) -> subprocess.CompletedProcess:
        out = subprocess.run([*self._prefix(True), KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
                             capture_output=True, text=True, timeout=timeout, **kw)
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} → {out.returncode}\n{out.stderr}")
        return out

    def kubectl_argv_str(self) -> str:
        """kubectl with this node's kubeconfig, as one shell word list (for `script -c`)."""
        return f"{KUBECTL} --kubeconfig {self.kubeconfig}"

    def kubectl_popen(self, *args: str, **kw) -> subprocess.Popen:
        return subprocess.Popen([*self._prefix(True), KUBECTL, "--kubeconfig", str(self.kubeconfig),
                                 *args], **kw)

    def sh(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """A command on the node (inside its network namespace)."""
        return subprocess.run([*self._prefix(True), *cmd], capture_output=True, text=True,
                              timeout=timeout)

    def get(self, kind: str, name: str | None = None, namespace: str = "default") -> dict:
        args = ["get", kind] + ([name] if name else []) + ["-n", namespace, "-o", "json"]
        return json.loads(self.kubectl(*args).stdout)

    def import_image(self, source: Path, repo: str) -> None:
        out = self.nodeagent("image", "import", "--store", str(self.data / "images"), str(source),
                             "--repo", repo, in_netns=False)
        if out.returncode != 0:
            raise AssertionError(f"image import failed: {out.stderr}")

    # --- waiting ----------------------------------------------------------------------------------
    def wait_pod(self, name: str, until, *, namespace: str = "default", timeout: float = 60) -> dict:
        """Poll `kubectl get pod` until `until(pod)` holds. (Polling kubectl, as a person would; a
        watch would be faster but would test kubectl's watch printing rather than the pod.)"""
        deadline = time.monotonic() + timeout
        pod: dict = {}
        while time.monotonic() < deadline:
            out = self.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
            if out.returncode == 0:
                pod = json.loads(out.stdout)
                if until(pod):
                    return pod
            time.sleep(0.2)
        raise AssertionError(f"pod {namespace}/{name} did not get there in {timeout:.0f} s; last seen:\n"
                             f"{json.dumps(pod.get('status'), indent=1)}\n{self.log_tail()}")

    def wait_gone(self, kind: str, name: str, *, namespace: str = "default", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.kubectl("get", kind, name, "-n", namespace, "-o", "name", check=False)
            if out.returncode != 0 and "NotFound" in out.stderr:
                return
            time.sleep(0.2)
        raise AssertionError(f"{kind} {namespace}/{name} still there after {timeout:.0f} s")


BUSYBOX_IMAGE = "localhost/busybox:1"  # what busybox_node imports


def create_pod(node: Node, name: str, containers: list[dict], policy: str = "Always",
               grace: int = 30, **spec) -> None:
    """`kubectl create` a pod bound to `node` (no scheduler needed); containers default to the
    imported busybox, never pulled."""
    for c in containers:
        c.setdefault("image", BUSYBOX_IMAGE)
        c.setdefault("imagePullPolicy", "Never")
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node.name, "restartPolicy": policy,
                     "terminationGracePeriodSeconds": grace, "containers": containers, **spec}}
    node.kubectl("create", "-f", "-", input=json.dumps(body))


def container_status(pod: dict, name: str) -> dict:
    """Container `name`'s status, or an empty one while the kubelet has reported none."""
    return next((c for c in (pod.get("status") or {}).get("containerStatuses") or []
                 if c["name"] == name), {"state": {}, "restartCount": 0})


def running(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def busybox_node(base: Path, tag: str) -> Node:
    """A node that is up, with the busybox image imported as localhost/busybox:1 and its Node's
    name in `.name` — what the e2e modules share as their module-scoped fixture."""
    n = Node(base, tag)
    busybox_image(base / "oci")
    n.import_image(base / "oci", "localhost/busybox")
    n.up()
    n.name = json.loads(n.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
    return n
