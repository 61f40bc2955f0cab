"""Pod volumes: what `volumes` and `volumeMounts` become on the node (the kubelet's volumemanager,
for the volume types a single node serves itself).

Every volume is a directory (or a file) of the agent's, then bind-mounted into each container
that names it in volumeMounts (with subPath and readOnly); the runtime does the mount:

    <pods-dir>/<pod uid>/volumes/<plugin>/<volume name>/

    emptyDir      an empty directory, for the pod's life (shared by its containers); with
                  `medium: Memory` a tmpfs mounted there, of sizeLimit — capped by the pod's
                  memory limit, or the node's allocatable memory when neither is set (the
                  kubelet's calculateEmptyDirMemorySize) — its pages count as the writer's memory
    hostPath      the node's own path; DirectoryOrCreate / FileOrCreate make it, Directory / File
                  / Socket / CharDevice / BlockDevice insist it is there and of that kind (as do
                  the ...OrCreate types for a path that exists); untyped, a missing path is made
                  a directory (containerd's rule for a missing bind-mount source)
    configMap     one file per key (or per `items` entry), mode defaultMode (0644)
    secret        the same, from a Secret's decoded data, on a tmpfs (as downwardAPI and
                  projected are): sized as a memory emptyDir, never on the node's disk
    downwardAPI   the pod's own fields (labels, annotations, name, ...) and resources, as files
    projected     configMap, secret, downwardAPI and serviceAccountToken sources in one
                  directory — what the ServiceAccount admission plugin adds to every pod as
                  `kube-api-access-*`: a token, ca.crt (ConfigMap kube-root-ca.crt), namespace

configMap, secret, downwardAPI and projected volumes are always mounted read-only (the kubelet's
mounters say ReadOnly for API data). With the pod's `fsGroup`, each volume but hostPath is given
to that group as the kubelet's SetVolumeOwnership does: files g+r (API data) or g+rw, directories
setgid and g+x, so that files the containers create there get the group too — an emptyDir once,
when it is made (walking a full one on every sync would cost too much), API data files whenever
they are written.

Files are rewritten when their content changes (an edited ConfigMap reaches running pods on the
next sync, as on a real node) and each write is atomic (a temporary file renamed over the old
one): a program reading a key never sees half of it. A missing ConfigMap or Secret (not
`optional`) is FailedMount, with the kubelet's message, and the containers wait.

A serviceAccountToken is the API's TokenRequest (serviceaccounts/<name>/token, bound to the
pod), asked for again at 80% of its life as the kubelet's token manager does. Our API server
serves it (controlplane/apiserver/serviceaccounts.py) and accepts the token as the pod's
account until the pod is deleted. Against an API server that does not (404 for the route, or
405), the token file is left out and the rest of the volume (ca.crt, namespace) is mounted, so
pods that carry kube-api-access still run.

The tmpfs mounts are the only mounts this module makes (in the agent's mount namespace, under
the pod's directory, where the runtime's bind mounts find them); `remove` and `unmount_all`
take them down before the directory goes, or `nodeagent down` would leave them behind.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Awaitable, Callable

import localfs
from nodeagent.cri.api import Mount
from nodeagent.envvars import ConfigError, Lookup, expand, field_value, resource_value
from nodeagent.errors import AgentError

PLUGIN_DIR = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
              "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
              "projected": "kubernetes.io~projected"}
DEFAULT_MODE = 0o644
READ_ONLY_KINDS = ("configMap", "secret", "downwardAPI", "projected")
MEMORY_BACKED = ("secret", "downwardAPI", "projected")    # on a tmpfs, as the kubelet's
RO_MASK, RW_MASK = 0o440, 0o660     # volume_linux.go: what fsGroup adds to a file's mode

log = logging.getLogger("nodeagent.volumes")

# (namespace, service account, audience, expirationSeconds, pod dict) → the TokenRequest's status
# ({"token", "expirationTimestamp"}), or None when the API does not serve TokenRequest
TokenSource = Callable[[str, str, str, int, dict], Awaitable["dict | None"]]


class VolumeError(AgentError):
    reason = "FailedMount"


def pod_dir(pods_dir: str, uid: str) -> Path:
    return Path(pods_dir) / uid


# --- gathering what to write (async: reads the API) --------------------------------------------------
async def _object_files(kind: str, src: dict, ns: str, lookup: Lookup, vol: str) -> dict[str, tuple[bytes, int]] | None:
    name = src.get("name", "")
    obj = await lookup("configmaps" if kind == "configMap" else "secrets", ns, name)
    if obj is None:
        if src.get("optional"):
            return {}
        word = "configmap" if kind == "configMap" else "secret"
        raise VolumeError(f'MountVolume.SetUp failed for volume "{vol}" : {word} "{name}" not found')
    data: dict[str, bytes] = {}
    if kind == "secret":
        data.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
    else:
        data.update({k: v.encode() for k, v in (obj.get("data") or {}).items()})
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    mode = src.get("defaultMode", DEFAULT_MODE)
    items = src.get("items")
    if not items:
        return {k: (v, mode) for k, v in data.items()}
    out = {}
    for it in items:
        if it["key"] not in data:
            if src.get("optional"):
                continue
            raise VolumeError(f'MountVolume.SetUp failed for volume "{vol}" : configmap references '
                              f'non-existent config key: {it["key"]}' if kind == "configMap" else
                              f'MountVolume.SetUp failed for volume "{vol}" : references non-existent '
                              f'secret key: {it["key"]}')
        out[it.get("path") or it["key"]] = (data[it["key"]], it.get("mode", mode))
    return out


def _downward_files(pod: dict, src: dict, allocatable: dict[str, int]) -> dict[str, tuple[bytes, int]]:
    mode = src.get("defaultMode", DEFAULT_MODE)
    out = {}
    containers = {c["name"]: c for c in (pod.get("spec") or {}).get("containers") or []}
    for it in src.get("items") or []:
        if "fieldRef" in it:
            value = field_value(pod, it["fieldRef"].get("fieldPath", ""))
        else:
            ref = it.get("resourceFieldRef") or {}
            c = containers.get(ref.get("containerName", "")) or next(iter(containers.values()), {})
            value = resource_value(pod, c, ref, allocatable)
        out[it["path"]] = (value.encode(), it.get("mode", mode))
    return out


def memory_size(pod: dict, source: dict, allocatable: dict[str, int]) -> int:
    """The tmpfs size of a `medium: Memory` emptyDir: its sizeLimit, no larger than the pod's
    memory limit (when every container has one) or else the node's allocatable memory."""
    from nodeagent.resources import QuantityError, bytes_of, pod_limits

    cap = pod_limits(pod).memory_limit or allocatable.get("memory") or 0
    try:
        limit = bytes_of(source["sizeLimit"]) if source.get("sizeLimit") else 0
    except QuantityError as e:
        raise VolumeError(f"emptyDir sizeLimit: {e}") from e
    if limit > 0 and (not cap or limit < cap):
        return limit
    return cap


async def _token_file(pod: dict, src: dict, tokens: TokenSource | None, mode: int,
                      vol: str) -> dict[str, tuple[bytes, int]]:
    spec, ns = pod.get("spec") or {}, (pod.get("metadata") or {}).get("namespace", "default")
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    got = None
    if tokens is not None:
        try:
            got = await tokens(ns, account, src.get("audience", ""),
                               int(src.get("expirationSeconds") or 3600), pod)
        except Exception as e:  # noqa: BLE001 - ApiError and friends: the mount waits
            raise VolumeError(f'MountVolume.SetUp failed for volume "{vol}" : failed to fetch '
                              f'token: {e}') from e
    if got is None:                    # TokenRequest not served (see the module's docstring)
        return {}
    return {src.get("path") or "token": (got["token"].encode(), mode)}


async def plan(pod: dict, lookup: Lookup, allocatable: dict[str, int],
               tokens: TokenSource | None = None) -> dict[str, tuple[str, object]]:
    """volume name → (kind, what to make): files for configMap/secret/downwardAPI/projected,
    the spec for emptyDir/hostPath. Raises VolumeError."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    out: dict[str, tuple[str, object]] = {}
    for v in (pod.get("spec") or {}).get("volumes") or []:
        name = v["name"]
        if "emptyDir" in v:
            src = v["emptyDir"] or {}
            if src.get("medium") == "Memory":
                out[name] = ("emptyDir", {"tmpfs": memory_size(pod, src, allocatable)})
            elif src.get("medium") in (None, ""):
                out[name] = ("emptyDir", None)
            else:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : emptyDir '
                                  f'medium {src["medium"]!r} is not supported on this node')
        elif "hostPath" in v:
            out[name] = ("hostPath", v["hostPath"])
        elif "configMap" in v or "secret" in v:
            kind = "configMap" if "configMap" in v else "secret"
            src = dict(v[kind])
            if kind == "secret":
                src["name"] = src.get("secretName", "")
            out[name] = (kind, await _object_files(kind, src, ns, lookup, name))
        elif "downwardAPI" in v:
            out[name] = ("downwardAPI", _downward_files(pod, v["downwardAPI"], allocatable))
        elif "projected" in v:
            files: dict[str, tuple[bytes, int]] = {}
            mode = v["projected"].get("defaultMode", DEFAULT_MODE)
            for s in v["projected"].get("sources") or []:
                if "configMap" in s:
                    files.update(await _object_files("configMap", {"defaultMode": mode, **s["configMap"]},
                                                     ns, lookup, name) or {})
                elif "secret" in s:
                    files.update(await _object_files("secret", {"defaultMode": mode, **s["secret"]},
                                                     ns, lookup, name) or {})
                elif "downwardAPI" in s:
                    files.update(_downward_files(pod, {"defaultMode": mode, **s["downwardAPI"]}, allocatable))
                elif "serviceAccountToken" in s:
                    files.update(await _token_file(pod, s["serviceAccountToken"], tokens, mode, name))
            out[name] = ("projected", files)
        else:
            kind = next((k for k in v if k != "name"), "?")
            raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : volume type {kind} '
                              "is not supported on this node")
    return out


# --- making them (blocking: call in a thread) --------------------------------------------------------
def _write_atomic(path: Path, data: bytes, mode: int, fs_group: int | None = None) -> None:
    if fs_group is not None:
        mode |= RO_MASK
    try:
        st = path.stat()
        if path.read_bytes() == data and (st.st_mode & 0o7777) == mode and \
                (fs_group is None or st.st_gid == fs_group):
            return
    except OSError:
        pass
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    localfs.write_atomic(path, data, mode)
    if fs_group is not None:
        os.chown(path, -1, fs_group)


def _own_dir(d: Path, fs_group: int | None, mode: int) -> None:
    """A volume's directory: `mode`, or with fsGroup that group, setgid and group access."""
    if fs_group is None:
        d.chmod(mode)
        return
    os.chown(d, -1, fs_group)
    d.chmod(mode | 0o2000 | (RW_MASK if mode & 0o002 else RO_MASK) | 0o110)


def _safe_rel(p: str) -> str:
    rel = os.path.normpath(p)
    if rel.startswith("..") or os.path.isabs(rel):
        raise VolumeError(f"volume file path {p!r} must be relative and must not contain '..'")
    return rel


def make(pods_dir: str, uid: str, planned: dict[str, tuple[str, object]],
         fs_group: int | None = None, tmpfs_size: int | None = None) -> dict[str, str]:
    """Create every volume; volume name → host path. `fs_group`: the pod's securityContext
    fsGroup (see the module's docstring). `tmpfs_size`: secret, projected and downwardAPI
    volumes are tmpfs mounts of that size, as the kubelet's (their plugins wrap a memory-backed
    emptyDir: a Secret's bytes never reach the node's disk) — None, or an agent without root
    (the unit tier's), keeps them on disk."""
    paths: dict[str, str] = {}
    base = pod_dir(pods_dir, uid) / "volumes"
    for name, (kind, what) in planned.items():
        if kind == "hostPath":
            paths[name] = _host_path(name, what)
            continue
        d = base / PLUGIN_DIR[kind] / name
        new = not d.is_dir()
        d.mkdir(parents=True, exist_ok=True)
        if kind == "emptyDir":
            if what:
                _mount_tmpfs(d, what["tmpfs"])
            if new or what:
                _own_dir(d, fs_group, 0o777)
        else:
            if kind in MEMORY_BACKED and tmpfs_size is not None and os.geteuid() == 0:
                _mount_tmpfs(d, tmpfs_size)
            try:
                _fill(d, what, fs_group)
            except OSError as e:
                # e.g. ENOSPC: the tmpfs is sized by the pod's memory limit, as the kubelet sizes
                # it, and a tiny limit cannot hold the files — FailedMount, the containers wait
                why = e.strerror or str(e)
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : write '
                                  f'{e.filename or d}: {why[:1].lower()}{why[1:]}') from e
        paths[name] = str(d)
    return paths


def _fill(d: Path, what: dict | None, fs_group: int | None) -> None:
    """Volume directory d holds exactly the files of `what` ({relative path: (bytes, mode)})."""
    _own_dir(d, fs_group, 0o755)
    wanted = {_safe_rel(rel): v for rel, v in (what or {}).items()}
    for rel, (data, mode) in wanted.items():
        for parent in reversed((d / rel).relative_to(d).parents[:-1]):
            if not (d / parent).is_dir():
                (d / parent).mkdir()
                _own_dir(d / parent, fs_group, 0o755)
        _write_atomic(d / rel, data, mode, fs_group)
    for f in d.rglob("*"):         # a key removed from the ConfigMap goes away too
        if f.is_file() and str(f.relative_to(d)) not in wanted:
            f.unlink()


def _mount_tmpfs(d: Path, size: int) -> None:
    """A tmpfs of `size` bytes on d, once (make runs on every sync)."""
    if os.path.ismount(d):
        return
    from runtime.sys import real

    try:
        real().mount("tmpfs", str(d), "tmpfs", 0, f"size={size}" if size else None)
    except OSError as e:
        raise VolumeError(f"MountVolume.SetUp failed for volume \"{d.name}\" : mounting a tmpfs "
                          f"on {d}: {e}") from e


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below root, deepest first (/proc/self/mountinfo, field 5)."""
    prefix = str(root.resolve()) if root.exists() else str(root)
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4].replace("\\040", " ") for line in f]
    except OSError:
        return []
    return sorted({p for p in points if p == prefix or p.startswith(prefix + "/")},
                  key=len, reverse=True)


def unmount_all(root: str | os.PathLike) -> list[str]:
    """Take down every mount this module made below root (a pod's directory, or the whole pods
    directory for `nodeagent down`); what could not be unmounted."""
    from runtime.sys import real
    from runtime.sys.consts import MNT_DETACH

    left = []
    for point in _mounts_under(Path(root)):
        try:
            real().umount2(point, MNT_DETACH)
        except OSError as e:
            left.append(f"{point}: {e}")
    return left


# hostPath type → (is it that kind?, what the error calls it) — hostpath's checkTypeInternal
_HOST_PATH_KINDS = {
    "Directory": (stat.S_ISDIR, "a directory"), "File": (stat.S_ISREG, "a file"),
    "Socket": (stat.S_ISSOCK, "a socket file"), "CharDevice": (stat.S_ISCHR, "a character device"),
    "BlockDevice": (stat.S_ISBLK, "a block device")}


def _host_path(name: str, spec: dict) -> str:
    """A hostPath volume's path, checked (or made) by its type as the kubelet's hostPath plugin
    does. No type: nothing is checked, and a missing path becomes a directory — what containerd
    does for a bind-mount source that is not there."""
    path, type_ = spec.get("path", ""), spec.get("type", "")
    p = Path(path)
    if type_ in ("", "DirectoryOrCreate") and not p.exists():
        p.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif type_ == "FileOrCreate" and not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=0o644, exist_ok=True)
    kind = _HOST_PATH_KINDS.get(type_.removesuffix("OrCreate")) if type_ else None
    if type_ and kind is None:
        raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {type_} is an invalid '
                          "volume type")
    if kind is not None:
        try:
            ok = kind[0](p.stat().st_mode)
        except OSError:
            ok = False
        if not ok:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : hostPath type check '
                              f'failed: {path} is not {kind[1]}')
    return path


def _sub_path(vm: dict, env: dict[str, str]) -> str:
    """A volumeMount's subPath, or its subPathExpr expanded with the container's env
    (ExpandContainerVolumeMounts), checked as makeMounts checks it. ConfigError: the container's
    config cannot be made (CreateContainerConfigError), with upstream's words."""
    sub = vm.get("subPath") or ""
    if vm.get("subPathExpr"):
        missing: set[str] = set()

        def value(name: str) -> str:
            if not env.get(name):
                missing.add(name)
            return env.get(name, "")
        sub = expand(vm["subPathExpr"], value)
        if missing:
            raise ConfigError(f"missing value for {', '.join(sorted(missing))}")
    if sub and os.path.isabs(sub):
        raise ConfigError(f"error SubPath `{sub}` must not be an absolute path")
    if ".." in sub.split("/"):
        raise ConfigError(f"unable to provision SubPath `{sub}`: must not contain '..'")
    return sub


def mounts(container: dict, paths: dict[str, str], read_only: frozenset[str] = frozenset(),
           env: dict[str, str] | None = None) -> list[Mount]:
    """The container's volumeMounts as CRI mounts (subPath made inside the volume if missing);
    the volumes named in `read_only` (API data: read_only_volumes) are read-only whatever the
    volumeMount says. `env`: the container's environment, for subPathExpr."""
    out = []
    for vm in container.get("volumeMounts") or []:
        src = paths.get(vm["name"])
        if src is None:
            raise VolumeError(f'volumeMount "{vm["name"]}" names no volume of the pod')
        sub = _sub_path(vm, env or {})
        if sub:
            src = os.path.join(src, sub)
            if not os.path.exists(src):
                os.makedirs(src, exist_ok=True)
        prop = {"HostToContainer": "rslave", "Bidirectional": "rshared"}.get(
            vm.get("mountPropagation", ""), "private")
        out.append(Mount(container_path=vm["mountPath"], host_path=src,
                         readonly=bool(vm.get("readOnly")) or vm["name"] in read_only,
                         propagation=prop))
    return out


def read_only_volumes(pod: dict) -> frozenset[str]:
    """The pod's volumes that hold API data (configMap, secret, downwardAPI, projected)."""
    return frozenset(v["name"] for v in (pod.get("spec") or {}).get("volumes") or []
                     if any(k in v for k in READ_ONLY_KINDS))


def remove(pods_dir: str, uid: str) -> None:
    """The pod's directory, volumes and termination-log files with it (after its containers);
    its tmpfs volumes are unmounted first."""
    for problem in unmount_all(pod_dir(pods_dir, uid)):
        log.warning("pod %s: %s", uid, problem)
    shutil.rmtree(pod_dir(pods_dir, uid), ignore_errors=True)


class TokenCache:
    """Service-account tokens for projected volumes (the kubelet's token manager): one
    TokenRequest per (pod, account, audience, expiration), asked for again once 80% of its life
    has passed. `request` does the API call and returns the status, or None when the API does
    not serve TokenRequest — remembered for 5 minutes, so a sync does not ask every time."""

    def __init__(self, request: Callable[[str, str, dict], Awaitable["dict | None"]]):
        self.request = request
        self._cache: dict[tuple, tuple[float, dict]] = {}     # key → (refresh at, status)
        self._unserved_until = 0.0

    async def __call__(self, ns: str, account: str, audience: str, expiration: int,
                       pod: dict) -> dict | None:
        now = time.time()
        uid = (pod.get("metadata") or {}).get("uid", "")
        key = (uid, ns, account, audience, expiration)
        hit = self._cache.get(key)
        if hit is not None and now < hit[0]:
            return hit[1]
        if now < self._unserved_until:
            return None
        md = pod.get("metadata") or {}
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else None,
                         "expirationSeconds": expiration,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                            "name": md.get("name"), "uid": uid}}}
        got = await self.request(ns, account, body)
        if got is None:
            self._unserved_until = now + 300
            return None
        self._cache[key] = (now + 0.8 * expiration, got)
        return got

    def forget(self, uid: str) -> None:
        self._cache = {k: v for k, v in self._cache.items() if k[0] != uid}
