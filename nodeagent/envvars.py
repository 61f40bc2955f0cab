"""A container's environment, resolved the way the kubelet resolves it (makeEnvironmentVariables).

Order matters, because later entries may refer to earlier ones with `$(NAME)`:

    1. envFrom, source by source (configMapRef / secretRef, each key with the source's prefix);
       every key is passed as it is: since RelaxedEnvironmentVariableValidation went GA (1.34)
       the kubelet no longer skips names that are not C identifiers (nor records
       InvalidEnvironmentVariableNames) — a shell may hide `a.b`, the program still gets it
    2. env, entry by entry: a `value` is expanded against everything defined so far; a
       `valueFrom` reads the pod (fieldRef), the container's resources (resourceFieldRef), or a
       ConfigMap/Secret key — a missing one is CreateContainerConfigError unless `optional`
    3. the same expansion is applied to command and args (kuberuntime's makeContainer...)

`$(NAME)` expansion (third_party/forked/golang/expansion): a defined NAME is replaced, an undefined
one is left as written, and `$$` is a literal `$` — so `$$(NAME)` stays `$(NAME)`.

The image's own Env is not here: the runtime adds it under these (the image's defaults, ours win).
"""

from __future__ import annotations

import base64
import math
import re
from typing import Awaitable, Callable

from nodeagent.errors import AgentError
from nodeagent.resources import amounts, parse_quantity

# (kind, namespace, name) → the object, or None when it does not exist; with name "" → a list
# of every object of that kind in the namespace (used for "services")
Lookup = Callable[[str, str, str], Awaitable["dict | list | None"]]


class ConfigError(AgentError):
    """The container's configuration cannot be made: the kubelet's CreateContainerConfigError."""
    reason = "CreateContainerConfigError"


def expand(text: str, lookup: Callable[[str], "str | None"]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2:end]
            value = lookup(name)
            out.append(value if value is not None else text[i:end + 1])
            i = end + 1
        else:
            out.append(c + nxt)
            i += 2
    return "".join(out)


def _data(obj: dict, kind: str) -> dict[str, str]:
    """A ConfigMap's data (and binaryData) or a Secret's decoded data, as text."""
    out: dict[str, str] = {}
    if kind == "secrets":
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v).decode(errors="replace")
        out.update(obj.get("stringData") or {})
    else:
        out.update(obj.get("data") or {})
        for k, v in (obj.get("binaryData") or {}).items():
            out[k] = base64.b64decode(v).decode(errors="replace")
    return out


_KIND_WORD = {"configmaps": "configmap", "secrets": "secret"}
_KIND_TITLE = {"configmaps": "ConfigMap", "secrets": "Secret"}


async def _source(lookup: Lookup, kind: str, ns: str, name: str, optional: bool) -> dict | None:
    obj = await lookup(kind, ns, name)
    if obj is None and not optional:
        raise ConfigError(f'{_KIND_WORD[kind]} "{name}" not found')
    return obj


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Go's %q (strconv.Quote) of a string: what fieldpath.FormatMap writes for each value."""
    out = []
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def field_value(pod: dict, path: str, pod_ips: tuple[str, ...] | None = None,
                host_ips: tuple[str, ...] | None = None) -> str:
    """A fieldRef (the downward API's pod fields). The IPs are the kubelet's own knowledge when
    given (podFieldSelectorRuntimeValue: the sandbox's IPs, the node's addresses) — the pod's
    status has none of them before its first container starts."""
    md, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if pod_ips is not None and path in ("status.podIP", "status.podIPs"):
        return (pod_ips[0] if pod_ips else "") if path == "status.podIP" else ",".join(pod_ips)
    if host_ips is not None and path in ("status.hostIP", "status.hostIPs"):
        return (host_ips[0] if host_ips else "") if path == "status.hostIP" else ",".join(host_ips)
    m = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if m:
        return (md.get(m.group(1)) or {}).get(m.group(2), "")
    simple = {"metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
              "metadata.uid": md.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"),
              "status.hostIP": status.get("hostIP"), "status.podIP": status.get("podIP"),
              "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs") or []),
              "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs") or [])}
    if path in simple:
        return simple[path] or ""
    if path in ("metadata.labels", "metadata.annotations"):
        items = md.get(path.split(".")[1]) or {}
        return "\n".join(f"{k}={go_quote(v)}" for k, v in sorted(items.items()))
    raise ConfigError(f"fieldRef {path!r} is not a supported field")


def resource_value(pod: dict, container: dict, ref: dict, allocatable: dict[str, int]) -> str:
    """A resourceFieldRef: a request or limit divided by `divisor`, rounded up. An unset limit is
    the node's allocatable amount, as in the kubelet."""
    name = ref.get("containerName")
    if name:
        found = [c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == name]
        if not found:
            raise ConfigError(f"resourceFieldRef: no container {name!r} in the pod")
        container = found[0]
    resource = ref.get("resource", "")
    a = amounts(container)
    lims = ((container.get("resources") or {}).get("limits") or {})
    reqs = ((container.get("resources") or {}).get("requests") or {})
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor <= 0:
        raise ConfigError(f"resourceFieldRef {resource}: divisor must be positive")
    if resource == "limits.cpu":
        value = parse_quantity(f"{a.cpu_limit}m") if a.cpu_limit else allocatable["cpu"] / 1000
    elif resource == "requests.cpu":
        value = parse_quantity(f"{a.cpu_request}m") if a.cpu_request else 0
    elif resource == "limits.memory":
        value = a.memory_limit if a.memory_limit else allocatable["memory"]
    elif resource == "requests.memory":
        value = a.memory_request or 0
    elif resource == "limits.ephemeral-storage":
        value = parse_quantity(lims["ephemeral-storage"]) if "ephemeral-storage" in lims \
            else allocatable["ephemeral-storage"]
    elif resource == "requests.ephemeral-storage":
        value = parse_quantity(reqs.get("ephemeral-storage", 0))
    else:
        raise ConfigError(f"resourceFieldRef {resource!r} is not a supported resource")
    result = math.ceil(parse_quantity(value) / divisor)
    if resource.endswith(".cpu") and result == 0 and value:
        result = 1
    return str(result)


def service_env(services: list[dict]) -> dict[str, str]:
    """Docker-link style variables for Services (envvars.FromServices): for a Service `my-db`
    with ClusterIP 10.96.0.7 and port 5432/TCP named `pg`:

        MY_DB_SERVICE_HOST=10.96.0.7  MY_DB_SERVICE_PORT=5432  MY_DB_SERVICE_PORT_PG=5432
        MY_DB_PORT=tcp://10.96.0.7:5432  MY_DB_PORT_5432_TCP=tcp://10.96.0.7:5432
        MY_DB_PORT_5432_TCP_PROTO=tcp  MY_DB_PORT_5432_TCP_PORT=5432  MY_DB_PORT_5432_TCP_ADDR=10.96.0.7

    Headless Services (no ClusterIP) give none."""
    out: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        name = svc["metadata"]["name"].upper().replace("-", "_")
        out[f"{name}_SERVICE_HOST"] = ip
        out[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                out[f"{name}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
        first = ports[0]
        out[f"{name}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}"
        for p in ports:
            proto = p.get("protocol", "TCP")
            base = f"{name}_PORT_{p['port']}_{proto}"
            out[base] = f"{proto.lower()}://{ip}:{p['port']}"
            out[f"{base}_PROTO"] = proto.lower()
            out[f"{base}_PORT"] = str(p["port"])
            out[f"{base}_ADDR"] = ip
    return out


async def environment(pod: dict, container: dict, lookup: Lookup,
                      allocatable: dict[str, int],
                      services: list[dict] | None = None, *,
                      pod_ips: tuple[str, ...] | None = None,
                      host_ips: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """The container's env as (name, value) pairs, in the order the kubelet produces them:
    the pod's own variables, then the Services' (those the pod did not define itself).
    `pod_ips`, `host_ips`: what status.podIP(s) and status.hostIP(s) resolve to."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    svc_env = service_env(services or [])
    env: dict[str, str] = {}

    def defined(name: str) -> str | None:
        return env[name] if name in env else svc_env.get(name)
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for key, field in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
            ref = src.get(key)
            if not ref:
                continue
            obj = await _source(lookup, field, ns, ref.get("name", ""), bool(ref.get("optional")))
            for k, v in (_data(obj, field) if obj else {}).items():
                env[prefix + k] = v
    for e in container.get("env") or []:
        name = e.get("name", "")
        if "valueFrom" not in e:
            env[name] = expand(e.get("value", ""), defined)
            continue
        vf = e["valueFrom"] or {}
        if "fieldRef" in vf:
            env[name] = field_value(pod, vf["fieldRef"].get("fieldPath", ""), pod_ips, host_ips)
        elif "resourceFieldRef" in vf:
            env[name] = resource_value(pod, container, vf["resourceFieldRef"], allocatable)
        else:
            for key, kind in (("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")):
                ref = vf.get(key)
                if ref is None:
                    continue
                optional = bool(ref.get("optional"))
                obj = await _source(lookup, kind, ns, ref.get("name", ""), optional)
                if obj is None:
                    break
                data = _data(obj, kind)
                if ref.get("key") not in data:
                    if optional:
                        break
                    raise ConfigError(f"couldn't find key {ref.get('key')} in {_KIND_TITLE[kind]} "
                                      f"{ns}/{ref.get('name')}")
                env[name] = data[ref["key"]]
                break
    for k in sorted(svc_env):
        env.setdefault(k, svc_env[k])
    return list(env.items())


def expand_command(words: list[str], env: list[tuple[str, str]]) -> tuple[str, ...]:
    lookup = dict(env).get
    return tuple(expand(w, lookup) for w in words)
