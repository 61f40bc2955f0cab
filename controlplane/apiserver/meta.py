"""Object metadata rules shared by every kind: names, generateName, uids, timestamps.

Kubernetes names are DNS-1123 *subdomains* for most kinds (`web-1.example`) and DNS-1123 *labels*
for namespaces and services (no dots), because those names end up in DNS. `generateName` asks the
server to append 5 random characters from an alphabet without vowels or look-alike digits (so no
accidental words), as the kube-apiserver's names.SimpleNameGenerator does.
"""

from __future__ import annotations

import datetime as _dt
import random
import re
import uuid

from controlplane.apiserver.errors import FieldError, invalid, required

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_rng = random.SystemRandom()

# Kinds whose names must be DNS labels (they become DNS names or path parts); the rest: subdomains.
LABEL_NAMED_KINDS = {"Namespace", "Service"}


def now() -> str:
    """RFC 3339 with second precision in UTC, as metav1.Time marshals."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> _dt.datetime | None:
    try:
        return _dt.datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.timezone.utc)
    except (TypeError, ValueError):
        return None


def time_after(seconds: int) -> str:
    t = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(base: str) -> str:
    # Like upstream: the base is cut so base+suffix fits in 63 characters.
    return base[:58] + "".join(_rng.choice(_ALPHABET) for _ in range(5))


def name_errors(kind: str, name: str, path: str = "metadata.name") -> list[FieldError]:
    if not name:
        return [required(path, "name or generateName is required")]
    if kind in LABEL_NAMED_KINDS:
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            return [invalid(path, name, "a lowercase RFC 1123 label must consist of lower case "
                            "alphanumeric characters or '-', and must start and end with an "
                            "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")]
        return []
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return [invalid(path, name, "a lowercase RFC 1123 subdomain must consist of lower case "
                        "alphanumeric characters, '-' or '.', and must start and end with an "
                        "alphanumeric character (e.g. 'example.com', regex used for validation is "
                        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")]
    return []


def namespace_errors(ns: str, path: str = "metadata.namespace") -> list[FieldError]:
    if len(ns) > 63 or not _DNS1123_LABEL.match(ns):
        return [invalid(path, ns, "a lowercase RFC 1123 label must consist of lower case "
                        "alphanumeric characters or '-', and must start and end with an "
                        "alphanumeric character")]
    return []


def qualified_name_errors(key: str, path: str) -> list[FieldError]:
    """Label and annotation keys: an optional DNS-subdomain prefix and '/', then a name."""
    prefix, _, name = key.rpartition("/")
    errs = []
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        errs.append(invalid(path, key, "prefix part must be a lowercase RFC 1123 subdomain"))
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        errs.append(invalid(path, key, "name part must consist of alphanumeric characters, '-', "
                            "'_' or '.', and must start and end with an alphanumeric character"))
    return errs


def label_value_errors(value, path: str) -> list[FieldError]:
    if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
        return [invalid(path, value, "a valid label must be an empty string or consist of "
                        "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                        "alphanumeric character")]
    return []
