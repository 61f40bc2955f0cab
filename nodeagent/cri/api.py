"""The line between the kubelet and the container runtime, shaped like Kubernetes' CRI.

The real kubelet never touches a namespace or a cgroup file itself: it asks a container runtime
(containerd, CRI-O) through the Container Runtime Interface (k8s.io/cri-api, api.proto) to
"run a pod sandbox", "create a container in it", "stop it", and reads back what happened. We keep
that line, with the same verbs and the same data, so that a student who reads this file has read
the boundary every Kubernetes node has:

    kubelet side (nodeagent/kuberuntime, podworkers, status)      runtime side (nodeagent/cri/service)
    "pod web-1 wants containers a and b, a restarted twice"  ──►   sandboxes, containers, images
                                     ◄── statuses and events ──    (runtime/, cni/, runtime.images)

What stays on the kubelet side: everything that needs the API (env from ConfigMaps and Secrets,
Service env vars, image pull secrets' contents), every decision (what to start, restart or kill;
back-off; probes), and pod status. What stays on the runtime side: every kernel object — netns,
veth, cgroups, mounts, processes — and the image store.

Differences from CRI, on purpose (kept few):
- No gRPC: the kubelet side holds a `RuntimeService` object and awaits its methods.
- Streaming (exec, attach, port-forward) returns open file descriptors instead of a URL to a
  streaming server: the kubelet API (nodeagent/server) serves the protocols itself.
- Times are float seconds since the epoch (CRI: int64 nanoseconds); None when not yet.

Getting the two services (nodeagent/cri/service.py has the details):

    from nodeagent.cri import open_runtime, cleanup
    runtime, images = open_runtime(state_dir, cni=PodNetworkConfig(...), image_store=...)
    ...
    runtime.close()                       # stops watching; pods and containers keep running
    cleanup(state_dir, cni=...)           # `nodeagent down`: removes everything made under state_dir

Contract of every method (as CRI states it): stop and remove are idempotent — stopping a stopped
sandbox or removing a removed container succeeds. Errors are `CRIError` subclasses whose `reason`
is the word the kubelet shows users (CreateContainerError, ErrImagePull, ...).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


# --- errors ----------------------------------------------------------------------------------------
class CRIError(Exception):
    """A runtime operation failed. `reason` is what the kubelet puts in the container's waiting
    state (or the pod's event), `message` says the cause in words a user can act on."""

    reason = "RuntimeError"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(CRIError):
    reason = "NotFound"


class ImagePullError(CRIError):           # kubelet: ErrImagePull, then ImagePullBackOff
    reason = "ErrImagePull"


class InvalidImageName(CRIError):
    reason = "InvalidImageName"


class CreateContainerError(CRIError):     # the runtime could not create it (bad spec, no command)
    reason = "CreateContainerError"


class RunContainerError(CRIError):        # created, but its program could not be started
    reason = "ContainerCannotRun"


class SandboxError(CRIError):             # netns, CNI, pinned namespaces
    reason = "FailedCreatePodSandBox"


class ExecTimeout(CRIError):              # exec_sync ran past its timeout (the process was killed)
    reason = "Timeout"


# --- sandboxes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PodSandboxMetadata:
    name: str
    namespace: str
    uid: str
    attempt: int = 0


@dataclass(frozen=True)
class DNSConfig:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int
    protocol: str = "TCP"                 # TCP | UDP | SCTP
    host_ip: str = ""


@dataclass(frozen=True)
class LinuxContainerResources:
    """What the kubelet computed from requests and limits (kuberuntime's
    generateLinuxContainerResources). None: leave unset."""
    cpu_shares: int | None = None         # from requests.cpu (v2: converted to cpu.weight)
    cpu_quota: int | None = None          # from limits.cpu, microseconds per period
    cpu_period: int | None = None
    memory_limit_in_bytes: int | None = None
    pids_limit: int | None = None
    oom_score_adj: int | None = None


@dataclass(frozen=True)
class PodSandboxConfig:
    metadata: PodSandboxMetadata
    hostname: str
    log_directory: str                    # /var/log/pods/<ns>_<name>_<uid>
    dns: DNSConfig = DNSConfig()
    port_mappings: tuple[PortMapping, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    host_network: bool = False
    host_ipc: bool = False
    host_pid: bool = False
    # The pod's cgroup (ContainerManager.pod_cgroup): a path RELATIVE TO THE AGENT'S OWN CGROUP in
    # every hierarchy (/proc/self/cgroup of the agent), e.g. "kubepods/burstable/pod<uid>"; an
    # absolute path is accepted only if it lies inside the agent's own cgroup. Containers go in
    # <cgroup_parent>/<container id>; missing directories are created by the runtime, which removes
    # only the containers' own. "": the runtime side uses nodeagent-pods/<sandbox id> and removes it
    # with the sandbox (nodeagent/cri/cgroups.py).
    cgroup_parent: str = ""
    sysctls: Mapping[str, str] = field(default_factory=dict)
    # shareProcessNamespace: one pid namespace for all the pod's containers, held by a pause
    # process (CRI's NamespaceMode POD for pid)
    share_pid: bool = False


class SandboxState(enum.Enum):
    READY = "SANDBOX_READY"
    NOTREADY = "SANDBOX_NOTREADY"


@dataclass(frozen=True)
class PodSandboxStatus:
    id: str
    metadata: PodSandboxMetadata
    state: SandboxState
    created_at: float
    ip: str | None = None
    additional_ips: tuple[str, ...] = ()
    netns_path: str | None = None         # None for hostNetwork pods
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


# --- containers ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContainerMetadata:
    name: str
    attempt: int = 0                      # the restart count this container is created for


@dataclass(frozen=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False
    propagation: str = "private"          # private | rslave | rshared


@dataclass(frozen=True)
class SecurityContext:
    """The container's securityContext, already merged with the pod's by the kubelet side."""
    run_as_user: int | None = None        # None: the image's User
    run_as_group: int | None = None
    run_as_username: str | None = None
    supplemental_groups: tuple[int, ...] = ()
    privileged: bool = False
    readonly_rootfs: bool = False
    add_capabilities: tuple[str, ...] = ()
    drop_capabilities: tuple[str, ...] = ()
    no_new_privs: bool = False
    seccomp: str = "RuntimeDefault"       # RuntimeDefault | Unconfined | localhost/<path>


@dataclass(frozen=True)
class ContainerConfig:
    """CRI's ContainerConfig. `command`/`args` are Kubernetes' own fields, passed through: the
    runtime merges them with the image's Entrypoint/Cmd by Kubernetes' rule (command replaces
    Entrypoint and drops Cmd; args alone replace Cmd)."""
    metadata: ContainerMetadata
    image: str                            # an image reference or ID the ImageService has
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""
    envs: tuple[tuple[str, str], ...] = ()  # fully resolved by the kubelet side; image Env added by the runtime
    mounts: tuple[Mount, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    log_path: str = ""                    # relative to the sandbox's log_directory: "<name>/<attempt>.log"
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    resources: LinuxContainerResources = LinuxContainerResources()
    security: SecurityContext = SecurityContext()
    stop_signal: str | None = None        # None: the image's StopSignal, else SIGTERM


class ContainerState(enum.Enum):
    CREATED = "CONTAINER_CREATED"
    RUNNING = "CONTAINER_RUNNING"
    EXITED = "CONTAINER_EXITED"
    UNKNOWN = "CONTAINER_UNKNOWN"


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    pod_sandbox_id: str
    metadata: ContainerMetadata
    state: ContainerState
    created_at: float
    image: str                            # the reference as given
    image_ref: str                        # the image ID (sha256:...) — the pod's imageID
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str = ""                      # "OOMKilled", "Error", "Completed" once exited
    message: str = ""
    log_path: str = ""                    # absolute
    pid: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


class ContainerEventType(enum.Enum):
    CREATED = "CONTAINER_CREATED_EVENT"
    STARTED = "CONTAINER_STARTED_EVENT"
    STOPPED = "CONTAINER_STOPPED_EVENT"
    DELETED = "CONTAINER_DELETED_EVENT"


@dataclass(frozen=True)
class ContainerEvent:
    """CRI's GetContainerEvents item (the "evented PLEG"): something happened to a container."""
    container_id: str
    pod_sandbox_id: str
    type: ContainerEventType
    at: float


# --- streaming -------------------------------------------------------------------------------------
class StreamSession(Protocol):
    """An exec'd or attached process, as open fds owned by the session (closed by close()).
    Without a tty: stdin (write end, or -1), stdout and stderr (read ends). With a tty: one
    pty master in `tty_fd`, stdout/stderr -1."""
    stdin: int
    stdout: int
    stderr: int
    tty_fd: int

    def resize(self, rows: int, cols: int) -> None: ...
    async def wait(self) -> int: ...      # exit code (exec); attach: the container's
    def close(self) -> None: ...


# --- images ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuthConfig:
    """One set of registry credentials, from an imagePullSecret (the kubelet side decodes the
    secret; the runtime never reads the API)."""
    server: str
    username: str = ""
    password: str = ""
    auth: str = ""                        # base64 user:password
    identity_token: str = ""


@dataclass(frozen=True)
class Image:
    id: str                               # sha256:<config digest>
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    size: int
    uid: int | None = None                # the image's User, when numeric
    username: str = ""


# --- the two services ------------------------------------------------------------------------------
class RuntimeService(Protocol):
    async def version(self) -> tuple[str, str]: ...          # (runtime name, version)

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str: ...
    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...     # stops its containers too; idempotent
    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...   # idempotent; frees the IP
    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus: ...
    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]: ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str: ...
    async def start_container(self, container_id: str) -> None: ...
    async def stop_container(self, container_id: str, timeout: float) -> None: ...  # signal, wait, SIGKILL
    async def remove_container(self, container_id: str) -> None: ...
    async def container_status(self, container_id: str) -> ContainerStatus: ...
    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...
    def container_events(self) -> AsyncIterator[ContainerEvent]: ...

    async def exec_sync(self, container_id: str, cmd: list[str],
                        timeout: float) -> tuple[bytes, bytes, int]: ...     # probes
    async def exec(self, container_id: str, cmd: list[str], *, tty: bool,
                   stdin: bool) -> StreamSession: ...
    async def attach(self, container_id: str, *, stdin: bool) -> StreamSession: ...
    async def port_forward(self, sandbox_id: str, port: int) -> int: ...    # a connected socket fd
    # cpu/memory, for /stats: {"id", "cpu_usage_core_nano_seconds", "memory_usage_bytes",
    # "memory_working_set_bytes", "memory_rss_bytes"} (a key is absent when the host has no figure)
    async def container_stats(self, container_id: str) -> dict: ...


class ImageService(Protocol):
    async def pull_image(self, ref: str, auth: tuple[AuthConfig, ...] = ()) -> str: ...  # image ID
    async def image_status(self, ref: str) -> Image | None: ...
    async def list_images(self) -> list[Image]: ...
    async def remove_image(self, ref: str) -> None: ...
