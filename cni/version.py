"""CNI specification versions: which we speak, how they compare, which one a network config selects.

Spec versions are semantic versions ("0.4.0", "1.0.0", "1.1.0"). A network configuration names the
version it was written for (`cniVersion`) and may list more (`cniVersions`); the runtime must pick the
highest one it supports (SPEC.md section 1, "Version considerations"). A plugin states what it
supports in reply to VERSION. Results changed shape once: before 1.0.0 every IP carried a "version"
("4" or "6"); from 1.0.0 on it does not.
"""

from __future__ import annotations

from cni.errors import INCOMPATIBLE_CNI_VERSION, CNIError, DECODING_FAILURE

CURRENT = "1.1.0"                              # the spec version this code implements
PLUGIN_VERSIONS = ("0.4.0", "1.0.0", "1.1.0")  # what our plugins advertise in VERSION
# What the executor can run: results from 0.3.x on have the rich shape we parse.
RUNTIME_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")


def parse(v: str) -> tuple[int, int, int]:
    try:
        parts = [int(p) for p in v.split(".")]
    except (AttributeError, ValueError):
        raise CNIError(DECODING_FAILURE, f"invalid version {v!r}", "want MAJOR.MINOR.PATCH") from None
    if len(parts) != 3 or any(p < 0 for p in parts):
        raise CNIError(DECODING_FAILURE, f"invalid version {v!r}", "want MAJOR.MINOR.PATCH")
    return parts[0], parts[1], parts[2]


def at_least(v: str, minimum: str) -> bool:
    return parse(v) >= parse(minimum)


def check_supported(config_version: str, supported: tuple[str, ...] = PLUGIN_VERSIONS) -> None:
    """The plugin-side check (libcni's skel reconciler): exact match with a supported version."""
    if config_version not in supported:
        raise CNIError(INCOMPATIBLE_CNI_VERSION, "incompatible CNI versions",
                       f"config is {config_version!r}, plugin supports {list(supported)}")


def highest(candidates: list[str], limit: str = CURRENT) -> str | None:
    """The highest version in `candidates` not above `limit` (unparseable ones are skipped)."""
    ok = []
    for c in candidates:
        try:
            if parse(c) <= parse(limit):
                ok.append(c)
        except CNIError:
            continue
    return max(ok, key=parse) if ok else None
