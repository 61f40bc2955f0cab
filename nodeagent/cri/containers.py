"""Containers of a sandbox, over the runtime: create, start, stop, remove, status.

Who is the container's parent. Each container has its own supervisor (runtime/process/shim.py,
the role of conmon or containerd-shim): a small single-threaded process, made by the runtime's
zygote (zygote.py), that is the parent of the container's init, pumps its stdout/stderr into the
CRI log file, and writes exit.json (exit code, signal, OOM kill read from the cgroup, finish
time) atomically when the init exits — whether the agent is alive or not. The agent is nobody's
parent: `kill -9` of the agent loses nothing, and a new agent reads the same files. (A per-pod
supervisor would save a process per container; the per-container one already existed, is tested,
and keeps one container's crash-handling independent of its neighbours'.)

    create   1. the sandbox must be ready; the image must be in the store
             2. the OCI spec (spec.py: pure) — every input error is a CreateContainerError
                naming the field, before anything is made
             3. cri/containers/<id>/ with container.json ("creating") and bundle/config.json
             4. the zygote creates it (cgroup with limits, overlay, namespaces joined by path,
                init waiting for "start"); any failure there is undone by the runtime itself
             5. container.json complete ("created")
    start    the supervisor lets the init execve (runtime.container.start)
    stop     the stop signal, `timeout` seconds, SIGKILL to every process of its cgroup (the
             waits are the service's, on the event loop: signal and kill_all here)
    remove   the runtime deletes processes, cgroup, overlay and state; then our directory

Status is derived at every call from the runtime's files (state.json, started.json, exit.json),
never cached: that is what makes a restarted agent see the exits it missed.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import time
from pathlib import Path

from nodeagent.cri.api import (ContainerConfig, ContainerMetadata, ContainerState, ContainerStatus,
                               CreateContainerError, NotFound, PodSandboxConfig,
                               RunContainerError)
from nodeagent.cri.spec import SandboxView, build_spec
from nodeagent.cri.store import Store, creator, new_id, valid_id


def parse_time(text: str | None) -> float | None:
    """An RFC 3339 time with up to nanoseconds (as the runtime writes them) → epoch seconds."""
    if not text:
        return None
    main, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.datetime.fromisoformat(main).replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def stop_signal(name: str | None) -> int:
    if not name:
        return signal.SIGTERM
    name = name.upper()
    if name.isdigit():
        return int(name)
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise CreateContainerError(f"stop signal {name!r} is not a signal name") from None


class Containers:
    def __init__(self, store: Store, images):
        self.store = store
        self.images = images              # runtime.images.ImageStore
        self.root = str(store.runtime_root)
        self.storage = str(store.storage)

    # --- create --------------------------------------------------------------------------------------
    def create(self, sid: str, config: ContainerConfig, sandbox_config: PodSandboxConfig) -> str:
        from runtime.errors import ContainerError, StepError
        from runtime.images import ImageError
        from runtime.spec.bundle import write_bundle

        from nodeagent.cri import zygote

        sbx = self.store.sandbox(sid)
        if sbx is None:
            raise NotFound(f"pod sandbox {sid} not found")
        if sbx.get("phase") != "ready":
            raise CreateContainerError(f"pod sandbox {sid} is not ready ({sbx.get('phase')})")
        try:
            image = self.images.get(config.image)
        except (ImageError, ValueError) as e:
            raise CreateContainerError(f"image {config.image!r} is not present on this node: {e}") from None
        cid = new_id()
        d = self.store.sandbox_dir(sid)
        view = SandboxView(namespaces=sbx.get("namespaces", {}),
                           etc_files={"/etc/hostname": str(d / "hostname"),
                                      "/etc/hosts": str(d / "hosts"),
                                      "/etc/resolv.conf": str(d / "resolv.conf")},
                           cgroup_parent=sbx["cgroup_parent"], host_pid=sandbox_config.host_pid,
                           hostname=sandbox_config.hostname or socket.gethostname())
        rootfs = os.path.join(self.storage, cid, "rootfs")
        from runtime.rootfs.devices import host_devices
        spec = build_spec(cid, config, view, image, rootfs,
                          host_devices() if config.security.privileged else ())
        sig = stop_signal(config.stop_signal or image.config.stop_signal or None)
        log_path = ""
        if config.log_path:
            log_path = os.path.join(sandbox_config.log_directory or sbx["config"]["log_directory"],
                                    config.log_path)
        record = {"id": cid, "sandbox_id": sid, "phase": "creating", "created_at": time.time(),
                  "metadata": {"name": config.metadata.name, "attempt": config.metadata.attempt},
                  "image": config.image, "image_ref": image.id, "log_path": log_path,
                  "labels": dict(config.labels), "annotations": dict(config.annotations),
                  "stop_signal": int(sig), "tty": config.tty, "creator": creator()}
        cdir = self.store.container_dir(cid)
        try:
            (cdir / "bundle").mkdir(parents=True)
            self.store.put_container(cid, record)
            write_bundle(spec, str(cdir / "bundle"))
            if log_path:
                os.makedirs(os.path.dirname(log_path), exist_ok=True)
            zygote.create(self.root, self.storage, cid, str(cdir / "bundle"),
                          log_path or str(cdir / "container.log"),
                          stdin=config.stdin and not config.tty, stdin_once=config.stdin_once)
        except StepError as e:
            self.store.drop_container(cid)
            # The runtime looks for the program at create (as runc does): a missing one is
            # docker's "ContainerCannotRun", whichever call found it.
            if e.step in ("find the executable", "execve"):
                raise RunContainerError(str(e)) from None
            raise CreateContainerError(str(e)) from None
        except ContainerError as e:
            self.store.drop_container(cid)
            raise CreateContainerError(str(e)) from None
        except (OSError, RuntimeError) as e:         # the zygote cannot be reached or started
            self.store.drop_container(cid)
            raise CreateContainerError(f"the runtime could not create the container: {e}") from None
        except BaseException:
            self.store.drop_container(cid)
            raise
        record["phase"] = "created"
        self.store.put_container(cid, record)
        return cid

    # --- start, stop, remove --------------------------------------------------------------------------
    def start(self, cid: str) -> None:
        from runtime.container.start import start
        from runtime.errors import ContainerError

        self._record(cid)
        try:
            start(self.root, cid)
        except ContainerError as e:
            raise RunContainerError(str(e)) from None

    def signal(self, cid: str, sig: int) -> None:
        """Send `sig` to the container's init (a no-op once it has exited)."""
        from runtime.container.kill import kill
        from runtime.errors import ContainerNotFound, InvalidState

        try:
            kill(self.root, cid, sig)
        except (InvalidState, ContainerNotFound):
            pass

    def kill_all(self, cid: str) -> None:
        """SIGKILL to every process of the container (through its cgroup)."""
        from runtime.container.kill import kill
        from runtime.errors import ContainerNotFound, InvalidState

        try:
            kill(self.root, cid, signal.SIGKILL, all_processes=True)
        except (InvalidState, ContainerNotFound):
            pass

    def remove(self, cid: str) -> None:
        from runtime.container.delete import delete
        from runtime.errors import ContainerError, ContainerNotFound

        if not valid_id(cid):
            return                          # names nothing we made

        try:
            delete(self.root, cid, force=True)
        except ContainerNotFound:
            pass
        except ContainerError as e:
            from nodeagent.cri.api import CRIError
            raise CRIError(f"removing container {cid}: {e}") from None
        self.store.drop_container(cid)

    # --- status -----------------------------------------------------------------------------------------
    def _record(self, cid: str) -> dict:
        rec = self.store.container(cid)
        if rec is None:
            raise NotFound(f"container {cid} not found")
        return rec

    def runtime_state(self, cid: str):
        from runtime.container.state import StateDir
        from runtime.errors import ContainerNotFound

        if not valid_id(cid):
            return None

        try:
            return StateDir(self.root, cid).load()
        except ContainerNotFound:
            return None

    def status(self, cid: str, rec: dict | None = None) -> ContainerStatus:
        rec = rec or self._record(cid)
        st = self.runtime_state(cid)
        extra: dict = {}
        if st is None or st.status == "creating":
            state = ContainerState.UNKNOWN if st is None else ContainerState.CREATED
        elif st.status == "created":
            state = ContainerState.CREATED
            extra["pid"] = st.pid
        elif st.status == "running":
            state = ContainerState.RUNNING
            extra.update(pid=st.pid, started_at=parse_time(st.started_at))
        else:
            state = ContainerState.EXITED
            code = st.exit_code if st.exit_code is not None else 255
            reason = st.reason or ("Completed" if code == 0 else "Error")
            message = ""
            if st.exit_code is None:
                reason, message = "Error", st.reason or "exit status unknown"
            elif reason == "StartError":
                reason = "ContainerCannotRun"
                message = _exit_message(self.root, cid)
            extra.update(started_at=parse_time(st.started_at), finished_at=parse_time(st.finished_at),
                         exit_code=code, reason=reason, message=message)
        md = rec["metadata"]
        return ContainerStatus(
            id=cid, pod_sandbox_id=rec["sandbox_id"],
            metadata=ContainerMetadata(md["name"], md.get("attempt", 0)), state=state,
            created_at=rec["created_at"], image=rec["image"], image_ref=rec["image_ref"],
            log_path=rec.get("log_path", ""), labels=rec.get("labels", {}),
            annotations=rec.get("annotations", {}), **extra)

    def shim_process(self, cid: str) -> tuple[int, int] | None:
        """(pid, start time) of the container's supervisor while it runs, else None."""
        st = self.runtime_state(cid)
        if st is None or st.status not in ("created", "running"):
            return None
        rec = st.record
        return (rec["shim_pid"], rec["shim_start"]) if rec.get("shim_pid") else None

    def cgroup(self, cid: str):
        from runtime.cgroups.base import load_cgroup

        st = self.runtime_state(cid)
        if st is None or "cgroup" not in st.record:
            return None
        return load_cgroup(st.record["cgroup"])


def _exit_message(root: str, cid: str) -> str:
    from runtime.container.state import read_json

    rec = read_json(str(Path(root) / cid / "exit.json")) or {}
    return rec.get("message", "")
