"""Pod sandboxes: the namespaces a pod's containers share, its network, its /etc files.

Why pinned namespaces and no sandbox process. A pod's containers share a network, an IPC and a
UTS namespace. Something must hold those namespaces while no container runs (between a crash
and the restart, or before the first start). Kubernetes runtimes chose one of two holders: a
"pause" process per pod (containerd, Docker), or a bind mount of each namespace file (CRI-O's
`pinns`). We pin: a bind mount costs no process and no memory, it survives the agent and every
container, and the containers join each namespace by its path, exactly as they would join a pause
process's /proc/<pid>/ns/* — without a pid that could die or be reused. What a pause process
would also do — be the parent of the containers, reap them, record their exits — is done by the
runtime's per-container supervisors (runtime/process/shim.py), which also outlive the agent.

    run      1. the sandbox directory and a record saying "creating" (store.py)
             2. pin new net, ipc, uts namespaces (nshelper.py: a fresh fork of a single-threaded
                helper does unshare + bind mount), with the hostname set and the pod's sysctls
                written inside; hostNetwork: no net/uts of its own (the node's); hostIPC: no
                ipc of its own
             3. CNI ADD on the pinned netns (cni.podnet: the bridge, an IP, hostPorts → portmap)
             4. /etc/hostname, /etc/hosts (with the pod's IP), /etc/resolv.conf, for the
                containers to bind-mount; with shareProcessNamespace, the pod's pid namespace
                and its pause process (nshelper.py: the one namespace a bind mount cannot hold)
             5. the record, complete: "ready"
         Each step registers its undo first, so a failure leaves nothing: no netns, no veth, no
         IP, no directory — and the error says which step failed.
         With spares (spares.py), a pod that may take one skips the network: its sandbox is a
         spare whose netns is pinned and attached already; step 2 pins only ipc and uts, 3 is
         done, 4 and 5 are the same. A pod that may not take one and finds the pod range full
         (host-local's "no IP addresses available") gets a spare's address: that spare is
         removed and steps 1-5 are tried once more — spares speed pods up, never keep one out.
    stop     CNI DEL (frees the IP, removes the veth and the hostPort rules), the pause process
             killed; the namespaces stay pinned until remove, as CRI says (a stopped sandbox
             may still be inspected)
    remove   CNI DEL again (idempotent), unpin (umount + unlink), the pod cgroup if it is ours,
             the directory

All of it is blocking (fork/exec, netlink, files): the service calls it from a worker thread.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from network.netns import namespace_id
from nodeagent.cri import cgroups
from nodeagent.cri.api import (DNSConfig, PodSandboxConfig, PodSandboxMetadata, PodSandboxStatus,
                               PortMapping, SandboxError, SandboxState)
from nodeagent.cri.store import Store, creator, new_id, valid_id

HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
HOSTS_BASE = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\n"
              "fe00::2\tip6-allrouters\n")


# --- the config, to and from JSON (the record must rebuild it after a restart) -------------------
def config_to_json(c: PodSandboxConfig) -> dict:
    d = dataclasses.asdict(c)
    d["labels"], d["annotations"], d["sysctls"] = dict(c.labels), dict(c.annotations), dict(c.sysctls)
    return d


def config_from_json(d: dict) -> PodSandboxConfig:
    d = dict(d)
    d["metadata"] = PodSandboxMetadata(**d["metadata"])
    d["dns"] = DNSConfig(**{k: tuple(v) for k, v in d["dns"].items()})
    d["port_mappings"] = tuple(PortMapping(**p) for p in d["port_mappings"])
    return PodSandboxConfig(**d)


def hosts_file(ip: str | None, hostname: str) -> str:
    """What the kubelet writes as the pod's /etc/hosts (kubelet_pods.go, managedHostsFileContent);
    hostAliases are the kubelet side's to add (it may mount its own file over this one)."""
    text = HOSTS_HEADER + HOSTS_BASE
    if ip:
        text += f"{ip}\t{hostname}\n"
    return text


def resolv_conf(dns: DNSConfig, node_resolv: str = "/etc/resolv.conf") -> str:
    """The pod's /etc/resolv.conf: from the kubelet's DNSConfig, or the node's own when it gives
    nothing (dnsPolicy Default)."""
    if not (dns.servers or dns.searches or dns.options):
        try:
            return Path(node_resolv).read_text()
        except OSError:
            return ""
    # containerd's layout (parseDNSOptions): search, nameservers, options
    lines = ["search " + " ".join(dns.searches)] if dns.searches else []
    lines += [f"nameserver {s}" for s in dns.servers]
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n"


def _write_etc_files(d: Path, config: PodSandboxConfig, ip: str | None) -> None:
    """The sandbox's /etc/hostname, /etc/hosts and /etc/resolv.conf, bind-mounted into every
    container. A hostNetwork pod sees the node's hosts file, as under the kubelet."""
    (d / "hostname").write_text(config.hostname + "\n")
    if config.host_network:
        try:
            (d / "hosts").write_text(Path("/etc/hosts").read_text())
        except OSError:
            (d / "hosts").write_text(hosts_file(None, config.hostname))
    else:
        (d / "hosts").write_text(hosts_file(ip, config.hostname))
    (d / "resolv.conf").write_text(resolv_conf(config.dns))


def _step_failed(e: BaseException, step: str) -> BaseException:
    """What a failed sandbox step raises: our own errors and non-Exceptions (cancellation,
    KeyboardInterrupt) as they are; anything else as a SandboxError naming the step."""
    if isinstance(e, Exception) and not isinstance(e, SandboxError):
        err = SandboxError(f"{step}: {e}")
        err.__cause__ = e  # as `raise ... from e`
        err.__suppress_context__ = True
        return err
    return e


def _out_of_addresses(e: BaseException) -> bool:
    """Did CNI ADD fail because the pod range has no free address (host-local's error, CNI code
    11 "try again later")?"""
    from cni.errors import TRY_AGAIN_LATER, CNIError

    cause = e.__cause__
    return isinstance(cause, CNIError) and cause.code == TRY_AGAIN_LATER and \
        "no IP addresses available" in str(cause)


def _pin(helper, directory: Path, types: list[str], hostname: str, sysctls: dict) -> None:
    """Pin new namespaces of `types` under `directory` (nshelper.py: a fresh fork does it)."""
    reply, fds = helper.request({"op": "pin", "dir": str(directory), "types": types,
                                 "hostname": hostname, "sysctls": dict(sysctls)})
    for fd in fds:
        os.close(fd)
    if not reply.get("ok"):
        raise SandboxError(f"pinning the pod's namespaces: {reply.get('error')}")


def _start_pause(helper, directory: Path, record: dict) -> None:
    """The pod's shared pid namespace and its pause process (nshelper.py's "pause")."""
    from runtime.statefiles import process_start_time

    reply, fds = helper.request({"op": "pause", "dir": str(directory / "ns")})
    for fd in fds:
        os.close(fd)
    if not reply.get("ok"):
        raise SandboxError(f"starting the pod's pause process: {reply.get('error')}")
    record["pause"] = {"pid": reply["pid"], "start": process_start_time(reply["pid"])}
    record["namespaces"]["pid"] = str(directory / "ns" / "pid")


def _pause_alive(record: dict) -> bool:
    from runtime.statefiles import process_start_time

    p = record.get("pause")
    return p is None or (p.get("start") is not None and process_start_time(p["pid"]) == p["start"])


def _stop_pause(record: dict) -> None:
    """SIGKILL the pause process, if it is still the one we started (same start time: not a
    reused pid). Its pid namespace dies with it, and every process left in it."""
    p = record.get("pause")
    if p is not None and _pause_alive(record):
        try:
            os.kill(p["pid"], 9)
        except ProcessLookupError:
            pass


def unpin(directory: Path) -> None:
    """Unmount and remove every pinned namespace under `directory` (idempotent)."""
    from runtime.sys import real
    from runtime.sys.consts import MNT_DETACH

    sys_ = real()
    for t in ("net", "ipc", "uts", "pid"):
        path = directory / t
        if not path.exists():
            continue
        try:
            sys_.umount2(str(path), MNT_DETACH)
        except OSError:
            pass  # not mounted (a crash between create and mount)
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _sysctl_split(sysctls: dict) -> dict:
    bad = [k for k in sysctls if not (k.startswith("net.") or k.startswith(("kernel.shm", "kernel.msg",
                                                                          "kernel.sem", "fs.mqueue.")))]
    if bad:
        raise SandboxError(f"sysctl {bad[0]}: not a namespaced sysctl (only net.*, kernel.shm*, "
                           "kernel.msg*, kernel.sem and fs.mqueue.* can be set for a pod)")
    return dict(sysctls)


class Sandboxes:
    def __init__(self, store: Store, network, helper=None, spares: int = 0):
        from nodeagent.cri.nshelper import Client
        from nodeagent.cri.spares import SparePool

        self.store = store
        self.network = network            # cni.podnet.PodNetwork, or None (no pod network)
        self.helper = helper or Client()  # the namespace helper (started on first use)
        # pre-made pod networks (spares.py); None: every sandbox makes its own
        self.spares = SparePool(self, spares) if spares and network is not None else None

    # --- run ---------------------------------------------------------------------------------------
    def run(self, config: PodSandboxConfig) -> str:
        from nodeagent.cri.spares import eligible

        if self.spares is not None and eligible(config, self.network):
            sid = self.spares.take()
            if sid is not None:
                return self._finish_spare(sid, config)
        try:
            return self._run_new(config)
        except SandboxError as e:
            # A spare holds an address no pod uses yet. A pod that may not take one (hostPorts,
            # net.* sysctls, a third-party plugin) and finds the range full gets a spare's
            # address instead: spares make pods start sooner, they must never stop one starting.
            spare = self.spares.take() if self.spares is not None and _out_of_addresses(e) else None
            if spare is None:
                raise
        self.remove(spare)                # CNI DEL: its address goes back to host-local
        return self._run_new(config)

    def _run_new(self, config: PodSandboxConfig) -> str:
        """A sandbox made from nothing: its namespaces, CNI ADD, the /etc files; all undone on
        failure."""
        sid = new_id()
        d = self.store.sandbox_dir(sid)
        owned_cgroup = not config.cgroup_parent
        parent = cgroups.check_parent(config.cgroup_parent) if config.cgroup_parent \
            else f"{cgroups.DEFAULT_PARENT}/{sid}"
        record = {"id": sid, "phase": "creating", "created_at": time.time(),
                  "config": config_to_json(config), "cgroup_parent": parent,
                  "cgroup_owned": owned_cgroup, "namespaces": {}, "ip": None, "ips": [],
                  "network_attached": False, "creator": creator()}
        undo: list = []
        step = "make the sandbox directory"
        try:
            (d / "ns").mkdir(parents=True)
            undo.append(lambda: self.store.drop_sandbox(sid))
            self.store.put_sandbox(sid, record)
            sysctls = _sysctl_split(config.sysctls)
            types = [] if config.host_network else ["net", "uts"]
            if not config.host_ipc:
                types.append("ipc")
            if config.host_network and any(k.startswith("net.") for k in sysctls):
                raise SandboxError("net.* sysctls cannot be set on a hostNetwork pod (they would "
                                   "change the node)")
            step = "pin the pod's namespaces"
            undo.append(lambda: unpin(d / "ns"))
            _pin(self.helper, d / "ns", types, config.hostname, sysctls)
            names = {"net": "network", "ipc": "ipc", "uts": "uts"}
            record["namespaces"] = {names[t]: str(d / "ns" / t) for t in types}
            if not config.host_network and self.network is not None:
                step = f'failed to setup network for sandbox "{sid}"'   # containerd's words
                netns = record["namespaces"]["network"]
                undo.append(lambda: self._teardown(netns, sid))
                att = self.network.setup(netns, container_id=sid, port_mappings=_port_maps(config),
                                         cni_args=_cni_args(config, sid))
                record["network_attached"] = True
                record["ips"] = [str(i.ip) for i in att.ips]
                record["ip"] = str(att.ip.ip) if att.ip is not None else None
            step = "write /etc/hostname, /etc/hosts, /etc/resolv.conf"
            _write_etc_files(d, config, record["ip"])
            if config.share_pid:
                step = "start the pod's pause process (shareProcessNamespace)"
                undo.append(lambda: _stop_pause(record))
                _start_pause(self.helper, d, record)
            record["phase"] = "ready"
            self.store.put_sandbox(sid, record)
            return sid
        except BaseException as e:
            for fn in reversed(undo):
                try:
                    fn()
                except Exception:  # noqa: BLE001 - the first failure is the one to report
                    pass
            raise _step_failed(e, step)

    def make_spare(self) -> str:
        """A spare (spares.py): a sandbox directory with its network namespace pinned and CNI
        ADD done, the record saying "spare". Steps 1-3 of run, with nothing of a pod's."""
        sid = new_id()
        d = self.store.sandbox_dir(sid)
        record = {"id": sid, "phase": "creating", "spare": True, "created_at": time.time(),
                  "namespaces": {}, "ip": None, "ips": [], "network_attached": False,
                  "creator": creator()}
        step = "make the sandbox directory"
        try:
            (d / "ns").mkdir(parents=True)
            self.store.put_sandbox(sid, record)
            step = "pin the pod's network namespace"
            _pin(self.helper, d / "ns", ["net"], "", {})
            netns = record["namespaces"]["network"] = str(d / "ns" / "net")
            step = f'failed to setup network for sandbox "{sid}"'
            from nodeagent.cri.spares import SPARE_CNI_ARGS
            att = self.network.setup(netns, container_id=sid, cni_args=SPARE_CNI_ARGS)
            record.update(phase="spare", network_attached=True, ips=[str(i.ip) for i in att.ips],
                          ip=str(att.ip.ip) if att.ip is not None else None)
            self.store.put_sandbox(sid, record)
            return sid
        except BaseException as e:
            try:
                self.remove(sid)          # the record says "creating": CNI DEL, unpin, drop
            except Exception:  # noqa: BLE001 - the first failure is the one to report
                pass
            raise _step_failed(e, f"spare sandbox: {step}")

    def _finish_spare(self, sid: str, config: PodSandboxConfig) -> str:
        """Make spare `sid` the pod's sandbox: pin ipc and uts (with the hostname and the
        non-net sysctls), write the /etc files, record the config. On failure the whole sandbox
        goes, network included, as a failed run leaves nothing."""
        d = self.store.sandbox_dir(sid)
        record = self.store.sandbox(sid)
        step = "pin the pod's namespaces"
        try:
            if record is None or record.get("phase") != "spare":
                raise SandboxError(f"spare sandbox {sid} is gone ({record and record.get('phase')})")
            sysctls = _sysctl_split(config.sysctls)
            types = ["uts"] if config.host_ipc else ["uts", "ipc"]
            owned_cgroup = not config.cgroup_parent
            parent = cgroups.check_parent(config.cgroup_parent) if config.cgroup_parent \
                else f"{cgroups.DEFAULT_PARENT}/{sid}"
            record.pop("spare", None)
            record.update(phase="creating", created_at=time.time(), config=config_to_json(config),
                          cgroup_parent=parent, cgroup_owned=owned_cgroup, creator=creator())
            self.store.put_sandbox(sid, record)
            _pin(self.helper, d / "ns", types, config.hostname, sysctls)
            names = {"ipc": "ipc", "uts": "uts"}
            record["namespaces"].update({names[t]: str(d / "ns" / t) for t in types})
            step = "write /etc/hostname, /etc/hosts, /etc/resolv.conf"
            _write_etc_files(d, config, record["ip"])  # a spare is never hostNetwork
            if config.share_pid:
                step = "start the pod's pause process (shareProcessNamespace)"
                _start_pause(self.helper, d, record)
            record["phase"] = "ready"
            self.store.put_sandbox(sid, record)
            return sid
        except BaseException as e:
            try:
                self.remove(sid)
            except Exception:  # noqa: BLE001 - the first failure is the one to report
                pass
            raise _step_failed(e, step)

    def _teardown(self, netns: str, sid: str) -> None:
        if self.network is not None:
            self.network.teardown(netns, container_id=sid)

    # --- stop and remove ----------------------------------------------------------------------------
    def stop(self, sid: str) -> None:
        """The network goes (IP freed); the record says NOTREADY. Containers: the caller's."""
        rec = self.store.sandbox(sid)
        if rec is None:
            return
        if rec.get("network_attached"):
            try:
                self._teardown(rec["namespaces"].get("network", ""), sid)
            except Exception as e:  # noqa: BLE001
                raise SandboxError(f"tearing down the pod's network (CNI DEL): {e}") from e
            rec["network_attached"] = False
        _stop_pause(rec)
        rec["phase"] = "stopped"
        self.store.put_sandbox(sid, rec)

    def remove(self, sid: str) -> None:
        if not valid_id(sid):
            return                          # names nothing we made: removed already, as it were
        rec = self.store.sandbox(sid)
        if rec is None:
            self.store.drop_sandbox(sid)   # a directory without a record: a crash mid-create
            return
        if rec.get("network_attached") or rec.get("phase") == "creating":
            netns = rec.get("namespaces", {}).get("network") or \
                str(self.store.sandbox_dir(sid) / "ns" / "net")
            try:
                self._teardown(netns, sid)
            except Exception as e:  # noqa: BLE001
                if rec.get("network_attached"):
                    raise SandboxError(f"tearing down the pod's network (CNI DEL): {e}") from e
        _stop_pause(rec)
        unpin(self.store.sandbox_dir(sid) / "ns")
        if rec.get("cgroup_owned"):
            try:
                cgroups.remove_tree(rec["cgroup_parent"])
            except OSError as e:
                raise SandboxError(f"removing the pod's cgroup {rec['cgroup_parent']}: {e}") from e
        self.store.drop_sandbox(sid)

    # --- status --------------------------------------------------------------------------------------
    def status(self, sid: str, rec: dict | None = None) -> PodSandboxStatus | None:
        rec = rec or self.store.sandbox(sid)
        if rec is None or rec.get("spare"):
            return None                     # a spare is nobody's sandbox yet (spares.py)
        config = config_from_json(rec["config"])
        # Ready while every pinned namespace is still a namespace: after a reboot the files are
        # there but no longer bind mounts of nsfs (network/netns.py: namespace_id).
        alive = rec.get("phase") == "ready" and all(
            namespace_id(p) is not None for p in rec.get("namespaces", {}).values()) and \
            _pause_alive(rec)            # a pid namespace without its pid 1 takes no process
        ips = rec.get("ips") or []
        return PodSandboxStatus(
            id=sid, metadata=config.metadata,
            state=SandboxState.READY if alive else SandboxState.NOTREADY,
            created_at=rec["created_at"], ip=rec.get("ip"),
            additional_ips=tuple(i for i in ips if i != rec.get("ip")),
            netns_path=rec.get("namespaces", {}).get("network"),
            labels=config.labels, annotations=config.annotations)


def _port_maps(config: PodSandboxConfig) -> list[dict]:
    return [{"hostPort": p.host_port, "containerPort": p.container_port,
             "protocol": p.protocol.lower(), "hostIP": p.host_ip}
            for p in config.port_mappings if p.host_port]


def _cni_args(config: PodSandboxConfig, sid: str) -> tuple[tuple[str, str], ...]:
    """What the kubelet's CNI layer passes (cni.go's buildCNIRuntimeConf)."""
    m = config.metadata
    return (("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", m.namespace), ("K8S_POD_NAME", m.name),
            ("K8S_POD_INFRA_CONTAINER_ID", sid), ("K8S_POD_UID", m.uid))
