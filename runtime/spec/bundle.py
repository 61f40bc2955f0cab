"""OCI bundles: a directory with config.json and (usually) the root filesystem in `rootfs/`.

This is the edge where JSON becomes a ContainerSpec (and back): the only place in the runtime that
looks at dictionaries. Every problem is reported as a SpecError naming the field the way config.json
spells it ("process.args[0]", "linux.namespaces[2].type") and the file, so the same bundle that
`runc run` accepts is accepted here, and a bundle we cannot honour is refused with a reason instead
of half-run. Unknown keys are ignored, as the OCI spec asks of runtimes; a known setting we cannot
apply is refused by name, never dropped.
"""

from __future__ import annotations

import json
import os
from typing import Any

from runtime.errors import SpecError
from runtime.spec.limits import check_resources
from runtime.spec.names import check_hostname
from runtime.spec.model import (LAYERS_ANNOTATION, NAMESPACE_TYPES, BlockIO, Capabilities,
                                ContainerSpec, Cpu, Device, DeviceRule, Hook, Hooks,
                                HugepageLimit, IDMapping, Linux, Memory, Mount, Namespace, Network, Pids,
                                Process, Resources, Rlimit, Root, Seccomp, SeccompArg,
                                SeccompRule, User, id_problem)

_U64_MAX = 2**64 - 1


class _Reader:
    """Typed access to one JSON object, knowing its path for error messages."""

    def __init__(self, obj: Any, path: str, source: str | None):
        if not isinstance(obj, dict):
            raise SpecError(path or "config", "must be an object", source)
        self.obj, self.path, self.source = obj, path, source

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> SpecError:
        return SpecError(self._name(key), problem, self.source)

    def child(self, key: str, required: bool = False) -> "_Reader | None":
        if key not in self.obj or self.obj[key] is None:
            if required:
                raise self.fail(key, "is required")
            return None
        return _Reader(self.obj[key], self._name(key), self.source)

    def items(self, key: str) -> list["_Reader"]:
        value = self.obj.get(key) or []
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        return [_Reader(v, f"{self._name(key)}[{i}]", self.source) for i, v in enumerate(value)]

    def str(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return default
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {type(value).__name__}")
        return value

    def int(self, key: str, default: int | None = None, required: bool = False) -> int | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, not {type(value).__name__}")
        return value

    def id(self, key: str, kind: str) -> int:
        """A uid or gid (0 if absent): see runtime.spec.model.MAX_ID for the range and why."""
        value = self.int(key, 0)
        if (problem := id_problem(value, kind)) is not None:
            raise self.fail(key, problem)
        return value

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.obj.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def strs(self, key: str) -> tuple[str, ...]:
        value = self.obj.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)

    def ints(self, key: str) -> tuple[int, ...]:
        value = self.obj.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self.fail(key, "must be a list of integers")
        return tuple(value)


def _rlimit_value(r: _Reader, key: str) -> int:
    v = r.int(key, required=True)
    if v < 0 or v > _U64_MAX:
        raise r.fail(key, "must be between 0 and 2^64-1")
    return -1 if v >= 2**63 else v  # RLIM_INFINITY is all ones: -1 to Python's resource module


def _process(r: _Reader) -> Process:
    args = r.strs("args")
    if not args:
        raise r.fail("args", "must name the program to run (a non-empty list)")
    cwd = r.str("cwd", "/")
    if not cwd.startswith("/"):
        raise r.fail("cwd", f"must be an absolute path, not {cwd!r}")
    for key in ("apparmorProfile", "selinuxLabel"):  # an LSM label we would not apply
        if r.obj.get(key):
            raise r.fail(key, "is not supported by this runtime (no AppArmor or SELinux support)")
    user = User()
    if (u := r.child("user")) is not None:
        if u.str("username"):
            raise u.fail("username", "is for Windows; give uid and gid")
        uid, gid, groups = u.id("uid", "uid"), u.id("gid", "gid"), u.ints("additionalGids")
        for i, g in enumerate(groups):
            if (problem := id_problem(g, "gid")) is not None:
                raise SpecError(f"{u.path}.additionalGids[{i}]", problem, u.source)
        user = User(uid, gid, groups, u.int("umask"))
    caps = Capabilities()
    if (c := r.child("capabilities")) is not None:
        from runtime.sys.consts import CAPABILITIES
        sets = {}
        for name in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            values = c.strs(name)
            for i, v in enumerate(values):
                if v not in CAPABILITIES:
                    raise SpecError(f"{c.path}.{name}[{i}]", f"unknown capability {v!r}", r.source)
            sets[name] = values
        caps = Capabilities(**sets)
    rlimits = []
    for lim in r.items("rlimits"):
        from runtime.sys.consts import RLIMITS
        kind = lim.str("type", required=True)
        if kind not in RLIMITS:
            raise lim.fail("type", f"unknown rlimit {kind!r}")
        soft, hard = _rlimit_value(lim, "soft"), _rlimit_value(lim, "hard")
        if hard != -1 and (soft == -1 or soft > hard):
            raise lim.fail("soft", f"is above the hard limit ({hard})")
        rlimits.append(Rlimit(kind, soft, hard))
    env = r.strs("env")
    for i, e in enumerate(env):
        if "=" not in e:
            raise SpecError(f"{r.path}.env[{i}]", f"{e!r} is not KEY=value", r.source)
    return Process(args=args, env=env, cwd=cwd, user=user, capabilities=caps, rlimits=tuple(rlimits),
                   no_new_privileges=r.bool("noNewPrivileges"), terminal=r.bool("terminal"),
                   oom_score_adj=r.int("oomScoreAdj"))


def _resources(r: _Reader | None) -> Resources:
    if r is None:
        return Resources()
    memory = cpu = pids = block_io = network = None
    # Settings we cannot apply are refused by name, never dropped: a limit the user believes in
    # must be in force (the cgroup drivers refuse the ones this host lacks).
    for key in ("rdma", "unified"):
        if r.obj.get(key):
            raise r.fail(key, "is not supported by this runtime")
    if (m := r.child("memory")) is not None:
        oom = m.obj.get("disableOOMKiller")
        if oom is not None and not isinstance(oom, bool):
            raise m.fail("disableOOMKiller", "must be true or false")
        if m.obj.get("useHierarchy") is not None:
            raise m.fail("useHierarchy", "is not supported by this runtime")
        memory = Memory(m.int("limit"), m.int("reservation"), m.int("swap"), m.int("kernel"),
                        m.int("kernelTCP"), m.int("swappiness"), oom)
    if (c := r.child("cpu")) is not None:
        cpu = Cpu(c.int("shares"), c.int("quota"), c.int("period"), c.str("cpus") or None,
                  c.str("mems") or None, c.int("realtimeRuntime"), c.int("realtimePeriod"))
        if c.obj.get("idle") is not None:
            raise c.fail("idle", "is not supported by this runtime")
    if (p := r.child("pids")) is not None:
        pids = Pids(p.int("limit", required=True))
    if (b := r.child("blockIO")) is not None:
        for key in ("leafWeight", "weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice",
                    "throttleReadIOPSDevice", "throttleWriteIOPSDevice"):
            if b.obj.get(key) not in (None, []):
                raise b.fail(key, "is not supported by this runtime (only blockIO.weight is)")
        block_io = BlockIO(b.int("weight"))
    hugepages = []
    for h in r.items("hugepageLimits"):
        size = h.str("pageSize", required=True)
        limit = h.obj.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise h.fail("limit", "must be a number of bytes")
        hugepages.append(HugepageLimit(size, limit))
    if (n := r.child("network")) is not None:
        priorities = []
        for pr in n.items("priorities"):
            priorities.append((pr.str("name", required=True), pr.int("priority", required=True)))
        network = Network(n.int("classID"), tuple(priorities))
    devices = []
    for d in r.items("devices"):
        kind = d.str("type", "a")
        if kind not in ("a", "c", "b"):
            raise d.fail("type", f"must be a, c or b, not {kind!r}")
        access = d.str("access", "rwm")
        if not access or set(access) - set("rwm"):
            raise d.fail("access", f"must be letters of 'rwm', not {access!r}")
        devices.append(DeviceRule(d.bool("allow"), kind, d.int("major"), d.int("minor"), access))
    resources = Resources(memory, cpu, pids, block_io, tuple(devices), tuple(hugepages), network)
    check_resources(resources, r.source, r.path)  # before any cgroup file sees them (limits.py)
    return resources


def _seccomp(s: _Reader | None) -> Seccomp | None:
    if s is None:
        return None
    from runtime.sys.seccomp import ACTIONS, ARCHES, OPS

    default = s.str("defaultAction", required=True)
    if default not in ACTIONS:
        raise s.fail("defaultAction", f"unknown action {default!r}")
    arches = s.strs("architectures")
    for i, a in enumerate(arches):
        if a not in ARCHES:
            raise SpecError(f"{s.path}.architectures[{i}]", f"unknown architecture {a!r}", s.source)
    rules = []
    for rule in s.items("syscalls"):
        act = rule.str("action", required=True)
        if act not in ACTIONS:
            raise rule.fail("action", f"unknown action {act!r}")
        args = []
        for a in rule.items("args"):
            op = a.str("op", required=True)
            if op not in OPS:
                raise a.fail("op", f"unknown comparison {op!r}")
            args.append(SeccompArg(a.int("index", required=True), op, a.int("value", required=True),
                                   a.int("valueTwo", 0)))
        names = rule.strs("names")
        if not names:
            raise rule.fail("names", "must list at least one syscall")
        rules.append(SeccompRule(names, act, rule.int("errnoRet"), tuple(args)))
    return Seccomp(default, s.int("defaultErrnoRet"), arches, tuple(rules))


def _linux(r: _Reader | None) -> Linux:
    if r is None:
        return Linux()
    namespaces, seen = [], set()
    for n in r.items("namespaces"):
        kind = n.str("type", required=True)
        if kind not in NAMESPACE_TYPES:
            raise n.fail("type", f"unknown namespace type {kind!r} (one of {', '.join(NAMESPACE_TYPES)})")
        if kind in seen:
            raise n.fail("type", f"namespace {kind!r} is listed twice")
        if kind == "time":
            raise n.fail("type", f"{kind} namespaces are not supported by this runtime")
        seen.add(kind)
        path = n.str("path")
        if path is not None and not path.startswith("/"):
            raise n.fail("path", f"must be an absolute path, not {path!r}")
        namespaces.append(Namespace(kind, path))
    mappings = {}
    for key in ("uidMappings", "gidMappings"):
        found = []
        for m in r.items(key):
            found.append(IDMapping(m.int("containerID", required=True), m.int("hostID", required=True),
                                   m.int("size", required=True)))
            if found[-1].size <= 0 or min(found[-1].container_id, found[-1].host_id) < 0:
                raise m.fail("size", "ids and size must be positive numbers")
        mappings[key] = tuple(found)
    user = next((n for n in namespaces if n.type == "user"), None)
    if (mappings["uidMappings"] or mappings["gidMappings"]) and (user is None or user.path):
        raise r.fail("uidMappings", "ID mappings need a new user namespace in linux.namespaces")
    if user is not None and user.path is None and not (mappings["uidMappings"] and mappings["gidMappings"]):
        raise r.fail("uidMappings", "a new user namespace needs uidMappings and gidMappings")
    devices = []
    for d in r.items("devices"):
        kind = d.str("type", required=True)
        if kind not in ("c", "b", "u", "p"):
            raise d.fail("type", f"must be c, b, u or p, not {kind!r}")
        path = d.str("path", required=True)
        if not path.startswith("/dev/"):
            raise d.fail("path", f"must be under /dev, not {path!r}")
        fifo = kind == "p"  # a FIFO has no device number
        devices.append(Device(path, kind, d.int("major", 0 if fifo else None, required=not fifo),
                              d.int("minor", 0 if fifo else None, required=not fifo),
                              d.int("fileMode", 0o666), d.id("uid", "uid"), d.id("gid", "gid")))
    sysctl = r.obj.get("sysctl") or {}
    if not isinstance(sysctl, dict) or not all(isinstance(v, str) for v in sysctl.values()):
        raise r.fail("sysctl", "must map names to string values")
    for key in ("mountLabel", "intelRdt", "personality"):
        if r.obj.get(key):
            raise r.fail(key, "is not supported by this runtime")
    cgroups_path = r.str("cgroupsPath")
    propagation = r.str("rootfsPropagation")
    if propagation not in (None, "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"):
        raise r.fail("rootfsPropagation", f"unknown propagation {propagation!r}")
    return Linux(namespaces=tuple(namespaces), resources=_resources(r.child("resources")),
                 cgroups_path=cgroups_path, masked_paths=r.strs("maskedPaths"),
                 readonly_paths=r.strs("readonlyPaths"), seccomp=_seccomp(r.child("seccomp")),
                 sysctl=tuple(sorted(sysctl.items())), devices=tuple(devices),
                 rootfs_propagation=propagation, uid_mappings=mappings["uidMappings"],
                 gid_mappings=mappings["gidMappings"])


def spec_from_dict(config: dict, bundle_dir: str, source: str | None = None) -> ContainerSpec:
    """A ContainerSpec from a parsed config.json; relative paths are resolved against `bundle_dir`."""
    top = _Reader(config, "", source)
    version = top.str("ociVersion", required=True)
    process = _process(top.child("process", required=True))
    root_r = top.child("root", required=True)
    root_path = root_r.str("path", required=True)
    root_path = os.path.normpath(os.path.join(bundle_dir, root_path))
    annotations = top.obj.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise top.fail("annotations", "must map names to string values")
    layers = tuple(os.path.normpath(os.path.join(bundle_dir, p))
                   for p in annotations.get(LAYERS_ANNOTATION, "").split(":") if p)
    if not layers and not os.path.isdir(root_path):
        raise root_r.fail("path", f"root filesystem {root_path} does not exist or is not a directory")
    for layer in layers:
        if not os.path.isdir(layer):
            raise SpecError(f"annotations.{LAYERS_ANNOTATION}", f"layer {layer} is not a directory", source)
    mounts = []
    for m in top.items("mounts"):
        dest = m.str("destination", required=True)
        if not dest.startswith("/"):
            raise m.fail("destination", f"must be an absolute path, not {dest!r}")
        src = m.str("source")
        kind = m.str("type")
        opts = m.strs("options")
        if src and ("bind" in opts or "rbind" in opts or kind == "bind") and not src.startswith("/"):
            src = os.path.normpath(os.path.join(bundle_dir, src))
        mounts.append(Mount(dest, kind, src, opts))
    hostname = top.str("hostname")
    if hostname:
        check_hostname(hostname, "hostname", source)
    linux = _linux(top.child("linux"))
    if hostname and linux.namespaces and linux.namespace("uts") is None:
        raise top.fail("hostname", "needs a uts namespace (else it would rename the host)")
    return ContainerSpec(process=process, root=Root(root_path, root_r.bool("readonly"), layers),
                         hostname=hostname, mounts=tuple(mounts), linux=linux,
                         annotations=tuple(sorted(annotations.items())), oci_version=version,
                         hooks=_hooks(top.child("hooks")))


def _hooks(r: _Reader | None) -> Hooks:
    if r is None:
        return Hooks()
    found = {}
    for key, attr in Hooks.FIELDS:
        hooks = []
        for h in r.items(key):
            path = h.str("path", required=True)
            if not path.startswith("/"):
                raise h.fail("path", f"must be an absolute path, not {path!r}")
            timeout = h.int("timeout")
            if timeout is not None and timeout <= 0:
                raise h.fail("timeout", f"must be a positive number of seconds, not {timeout}")
            hooks.append(Hook(path, h.strs("args"), h.strs("env"), timeout))
        found[attr] = tuple(hooks)
    return Hooks(**found)


def hooks_from_dict(hooks: dict) -> Hooks:
    """Hooks from config.json's "hooks" object (or the part of it a state file keeps)."""
    return _hooks(_Reader(hooks, "hooks", None))


def hooks_to_dict(hooks: Hooks) -> dict:
    return _drop_none({key: [_drop_none({"path": h.path, "args": list(h.args), "env": list(h.env),
                                         "timeout": h.timeout}) for h in getattr(hooks, attr)]
                       for key, attr in Hooks.FIELDS})


def load_bundle(bundle_dir: str) -> ContainerSpec:
    """Read `bundle_dir`/config.json; a missing or unreadable file is a SpecError too."""
    path = os.path.join(bundle_dir, "config.json")
    try:
        with open(path, "rb") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise SpecError("config.json", f"no such file in bundle {bundle_dir}", path) from None
    except (OSError, ValueError) as e:
        raise SpecError("config.json", f"cannot read it: {e}", path) from None
    except RecursionError:
        # json's parser recurses once per nested array or object; no config.json needs more
        # than a handful, and the interpreter's stack ends at about a thousand.
        raise SpecError("config.json", "is not a config: its arrays or objects are nested too "
                        "deeply to read", path) from None
    return spec_from_dict(config, os.path.abspath(bundle_dir), path)


# --- and back: ContainerSpec → config.json --------------------------------------------------------

def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v not in (None, [], {}, ())}


def spec_to_dict(spec: ContainerSpec, bundle_dir: str | None = None) -> dict:
    """config.json for `spec`. With `bundle_dir`, a root inside it is written relative ("rootfs"),
    as `runc spec` writes it."""
    p = spec.process
    caps = p.capabilities
    root_path = spec.root.path
    if bundle_dir and os.path.dirname(os.path.abspath(root_path)) == os.path.abspath(bundle_dir):
        root_path = os.path.basename(root_path)
    r = spec.linux.resources
    resources = _drop_none({
        "memory": r.memory and _drop_none({"limit": r.memory.limit, "reservation": r.memory.reservation,
                                           "swap": r.memory.swap, "kernel": r.memory.kernel,
                                           "kernelTCP": r.memory.kernel_tcp,
                                           "swappiness": r.memory.swappiness,
                                           "disableOOMKiller": r.memory.disable_oom_killer}),
        "cpu": r.cpu and _drop_none({"shares": r.cpu.shares, "quota": r.cpu.quota, "period": r.cpu.period,
                                     "cpus": r.cpu.cpus, "mems": r.cpu.mems,
                                     "realtimeRuntime": r.cpu.realtime_runtime,
                                     "realtimePeriod": r.cpu.realtime_period}),
        "hugepageLimits": [{"pageSize": h.page_size, "limit": h.limit} for h in r.hugepage_limits],
        "network": r.network and _drop_none({
            "classID": r.network.class_id,
            "priorities": [{"name": n, "priority": v} for n, v in r.network.priorities]}),
        "pids": r.pids and {"limit": r.pids.limit},
        "blockIO": r.block_io and _drop_none({"weight": r.block_io.weight}),
        "devices": [_drop_none({"allow": d.allow, "type": d.type, "major": d.major, "minor": d.minor,
                                "access": d.access}) | {"allow": d.allow} for d in r.devices],
    })
    sc = spec.linux.seccomp
    seccomp = sc and _drop_none({
        "defaultAction": sc.default_action, "defaultErrnoRet": sc.default_errno_ret,
        "architectures": list(sc.architectures),
        "syscalls": [_drop_none({"names": list(s.names), "action": s.action, "errnoRet": s.errno_ret,
                                 "args": [{"index": a.index, "value": a.value, "valueTwo": a.value_two,
                                           "op": a.op} for a in s.args]}) for s in sc.syscalls],
    })
    annotations = dict(spec.annotations)
    if spec.root.layers:
        annotations[LAYERS_ANNOTATION] = ":".join(spec.root.layers)
    return _drop_none({
        "ociVersion": spec.oci_version,
        "process": _drop_none({
            "terminal": p.terminal,
            "user": _drop_none({"uid": p.user.uid, "gid": p.user.gid, "umask": p.user.umask,
                                "additionalGids": list(p.user.additional_gids)}) | {"uid": p.user.uid, "gid": p.user.gid},
            "args": list(p.args), "env": list(p.env), "cwd": p.cwd,
            "capabilities": _drop_none({k: list(getattr(caps, k)) for k in
                                        ("bounding", "effective", "permitted", "inheritable", "ambient")}),
            "rlimits": [{"type": x.type, "soft": _U64_MAX if x.soft == -1 else x.soft,
                         "hard": _U64_MAX if x.hard == -1 else x.hard} for x in p.rlimits],
            "noNewPrivileges": p.no_new_privileges, "oomScoreAdj": p.oom_score_adj,
        }) | {"terminal": p.terminal},
        "root": {"path": root_path, "readonly": spec.root.readonly},
        "hostname": spec.hostname,
        "mounts": [_drop_none({"destination": m.destination, "type": m.type, "source": m.source,
                               "options": list(m.options)}) for m in spec.mounts],
        "annotations": annotations,
        "hooks": hooks_to_dict(spec.hooks),
        "linux": _drop_none({
            "namespaces": [_drop_none({"type": n.type, "path": n.path}) for n in spec.linux.namespaces],
            "resources": resources,
            "cgroupsPath": spec.linux.cgroups_path,
            "maskedPaths": list(spec.linux.masked_paths),
            "readonlyPaths": list(spec.linux.readonly_paths),
            "seccomp": seccomp,
            "sysctl": dict(spec.linux.sysctl),
            "devices": [{"path": d.path, "type": d.type, "major": d.major, "minor": d.minor,
                         "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid} for d in spec.linux.devices],
            "rootfsPropagation": spec.linux.rootfs_propagation,
            "uidMappings": [{"containerID": m.container_id, "hostID": m.host_id, "size": m.size}
                            for m in spec.linux.uid_mappings],
            "gidMappings": [{"containerID": m.container_id, "hostID": m.host_id, "size": m.size}
                            for m in spec.linux.gid_mappings],
        }),
    })


def write_bundle(spec: ContainerSpec, bundle_dir: str) -> str:
    """Write `bundle_dir`/config.json for `spec`; returns its path."""
    path = os.path.join(bundle_dir, "config.json")
    with open(path, "w") as f:
        json.dump(spec_to_dict(spec, bundle_dir), f, indent=2)
        f.write("\n")
    return path
