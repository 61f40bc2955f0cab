"""Which unpacked layers are in use right now — asked of the kernel, not of a bookkeeping file.

A layer directory is in use while some overlay mount has it as a lowerdir. Deleting it then would
pull files out from under a running container. Containers' mounts live in their own mount
namespaces, invisible in ours, so we look at every mount namespace on the machine: one
/proc/<pid>/mountinfo per distinct /proc/<pid>/ns/mnt, and in it every overlay mount's
`lowerdir=a:b:c` super-block option (mountinfo escapes ' ', '\\t', '\\n' and '\\\\' as octal; overlay
itself escapes ':' in paths as '\\:'). The image GC keeps whatever this finds, plus whatever the
agent says it is about to use.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def overlay_lowerdirs(mountinfo_text: str) -> set[str]:
    """Every lowerdir path of every overlay mount in one mountinfo file."""
    out: set[str] = set()
    for line in mountinfo_text.splitlines():
        pre, sep, post = line.partition(" - ")
        if not sep:
            continue
        fields = post.split(" ")
        if len(fields) < 3 or fields[0] != "overlay":
            continue
        for opt in re.split(r"(?<!\\),", fields[2]):
            key, _, value = opt.partition("=")
            if key == "lowerdir":
                out.update(p.replace("\\:", ":") for p in re.split(r"(?<!\\):", _unescape(value)) if p)
    return out


def layers_in_use(store, proc: Path = Path("/proc")) -> set[str]:
    """diff_ids (sha256:<hex>) of the store's layers that some overlay mount uses as a lowerdir."""
    layers_dir = str(store.layers)
    seen_ns: set[str] = set()
    found: set[str] = set()
    for pid in sorted((p for p in os.listdir(proc) if p.isdigit()), key=int):
        try:
            ns = os.readlink(proc / pid / "ns" / "mnt")
            if ns in seen_ns:
                continue
            text = (proc / pid / "mountinfo").read_text()
        except OSError:
            continue          # the process exited, or is not ours to look at
        seen_ns.add(ns)
        for path in overlay_lowerdirs(text):
            if path.startswith(layers_dir + "/"):
                found.add("sha256:" + path[len(layers_dir) + 1:].split("/", 1)[0])
    return found
