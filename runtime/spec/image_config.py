"""An image's User (its config's "uid", "uid:gid", or names like "app", "app:staff") resolved to
ids in the image's own /etc/passwd and /etc/group — the container's idea of names, not the host's.

(The image config's other defaults — Entrypoint + Cmd, Env, WorkingDir — are merged with what the
user or the pod asks for in one place, nodeagent/cri/spec.py, for `nodeagent run` and pods alike.)

The image's layers are directories (runtime/images); /etc/passwd is read from the topmost layer
that has one, which is what the container will see (a deleted file would be a whiteout; an image
that deletes /etc/passwd and then names a user has nothing to resolve it against).
"""

from __future__ import annotations

import os

from runtime.errors import SpecError
from runtime.spec.model import User, id_problem


def resolve_user(spec: str, layers_top_first: tuple[str, ...]) -> User:
    if not spec:
        return User()
    name, _, group = spec.partition(":")
    uid, primary_gid = _lookup(name, "etc/passwd", layers_top_first, spec)
    if group:
        gid = _lookup(group, "etc/group", layers_top_first, spec)[0]
    else:
        gid = primary_gid if primary_gid is not None else 0
    return User(uid, gid)


def member_gids(user: str, layers_top_first: tuple[str, ...]) -> tuple[int, ...]:
    """The gids of the image's /etc/group entries that list `user` (a name, or a uid looked up
    in the image's /etc/passwd) as a member, except the group named after it — containerd's
    WithAdditionalGIDs. A uid the image does not know has none."""
    name = user.partition(":")[0]
    if name.isdigit():
        name = next((f[0] for f in _entries("etc/passwd", layers_top_first) if f[2] == name), "")
    if not name:
        return ()
    return tuple(int(f[2]) for f in _entries("etc/group", layers_top_first)
                 if f[0] != name and name in f[3].split(","))


def _lookup(name: str, table: str, layers: tuple[str, ...], spec: str) -> tuple[int, int | None]:
    """(id, primary gid or None) of `name` in the image's passwd or group file. Every ID is
    checked (runtime.spec.model.MAX_ID says why), whether the image's User gave it or its
    /etc/passwd or /etc/group did."""
    kind = "uid" if table == "etc/passwd" else "gid"
    if name.lstrip("-").isdigit():
        _check(int(name), kind, "image config User", f"{spec!r}: ")
        if table == "etc/passwd":
            for fields in _entries(table, layers):
                if fields[2] == name:
                    return int(name), _check(int(fields[3]), "gid", f"the image's /{table}",
                                             f"user {fields[0]!r}: ")
        return int(name), None
    for fields in _entries(table, layers):
        if fields[0] == name:
            found = _check(int(fields[2]), kind, f"the image's /{table}", f"{name!r}: ")
            if table == "etc/passwd":
                return found, _check(int(fields[3]), "gid", f"the image's /{table}", f"user {name!r}: ")
            return found, None
    raise SpecError("image config User", f"{spec!r}: no {name!r} in the image's /{table}")


def _check(value: int, kind: str, field: str, prefix: str) -> int:
    if (problem := id_problem(value, kind)) is not None:
        raise SpecError(field, prefix + problem)
    return value


def _entries(table: str, layers: tuple[str, ...]):
    """Lines of /etc/passwd or /etc/group from the topmost layer that has the file. Opened with
    the layer as "/" (openat2 RESOLVE_IN_ROOT): an image's /etc/passwd that is a symlink to
    /etc/shadow must mean the image's shadow file, never the host's."""
    from runtime.sys import real
    from runtime.sys.consts import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS

    for layer in layers:
        if not os.path.lexists(os.path.join(layer, table)):
            continue
        try:
            rootfd = os.open(layer, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fd = real().openat2(rootfd, table, os.O_RDONLY, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
            finally:
                os.close(rootfd)
            with open(fd, encoding="utf-8", errors="replace") as f:
                for line in f:
                    fields = line.rstrip("\n").split(":")
                    if len(fields) >= 4 and _number(fields[2]) and \
                            (table == "etc/group" or _number(fields[3])):
                        yield fields
        except OSError:
            pass
        return


def _number(text: str) -> bool:
    """An ID field as a number, negative ones included: those are refused, not skipped."""
    return text.lstrip("-").isdigit() and text.count("-") <= 1
