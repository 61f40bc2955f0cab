"""nftables through the `nft` binary's JSON interface (`nft -j -f -`), never iptables.

There are no nftables bindings on PyPI, and the kernel's nf_tables netlink protocol is not meant to be
spoken by hand; `nft` is the reference client. kube-proxy's nftables mode (knftables) drives the
binary the same way. One invocation = one *transaction*: the kernel applies the whole batch or none
of it, so a rule set is never seen half-written.

Idempotency tricks used by callers (nft 1.0.6 has no `destroy` command):
  - `add table/chain/set` is a no-op when the object exists (`create` would fail);
  - `flush chain X` followed by its rules rewrites a chain atomically;
  - "add element K : V" then "delete element K" in one batch deletes K only if it maps to V:
    if K maps to something else the add fails with EEXIST and the whole batch is rolled back. A
    plugin uses this to remove *its own* hostPort mapping and never another pod's.

This module only runs nft and builds the small JSON pieces; what the rules mean lives with the
plugin that owns them (cni/plugins/).
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
from dataclasses import dataclass

from network.errors import NftError

_ERRNO_BY_TEXT = {
    "No such file or directory": errno.ENOENT,
    "File exists": errno.EEXIST,
    "Device or resource busy": errno.EBUSY,
    "Operation not permitted": errno.EPERM,
}


@dataclass(frozen=True)
class Nft:
    binary: str = "nft"

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def run(self, commands: list[dict], what: str) -> None:
        """Apply `commands` (each {"add": {...}}, {"delete": {...}}, ...) as one transaction."""
        if not commands:
            return
        self._exec(["-j", "-f", "-"], json.dumps({"nftables": commands}), what)

    def start(self, commands: list[dict], what: str) -> "Pending":
        """Like run(), but return at once: the transaction proceeds while the caller does other
        work (a pod's netlink configuration), and `Pending.wait()` collects the outcome."""
        try:
            proc = subprocess.Popen([self.binary, "-j", "-f", "-"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except FileNotFoundError as e:
            raise NftError(what, f"{self.binary}: not found (install the nftables package)",
                           errno.ENOENT) from e
        try:  # the batch is small (well under a pipe's 64 KiB), so this write does not block
            proc.stdin.write(json.dumps({"nftables": commands}))
        finally:
            proc.stdin.close()
            proc.stdin = None  # closed by us; communicate() must not touch it again
        return Pending(proc, what)

    def list_table(self, family: str, name: str) -> list[dict] | None:
        """The objects of table `family name` as nft's JSON (tables, chains, sets, maps, rules
        with their handles), or None if there is no such table."""
        try:
            out = self._exec(["-j", "list", "table", family, name], None, f"list table {family} {name}")
        except NftError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        return [o for o in json.loads(out)["nftables"] if "metainfo" not in o]

    def list_tables(self) -> list[tuple[str, str]]:
        out = self._exec(["-j", "list", "tables"], None, "list tables")
        return [(o["table"]["family"], o["table"]["name"]) for o in json.loads(out)["nftables"]
                if "table" in o]

    def text(self, family: str, name: str) -> str:
        """`nft list table` in nft's own syntax, for humans (nodeagent net show)."""
        try:
            return self._exec(["list", "table", family, name], None, f"list table {family} {name}")
        except NftError as e:
            if e.errno == errno.ENOENT:
                return ""
            raise

    def _exec(self, args: list[str], stdin: str | None, what: str) -> str:
        try:
            proc = subprocess.run([self.binary, *args], input=stdin, capture_output=True, text=True,
                                  timeout=30)
        except FileNotFoundError as e:
            raise NftError(what, f"{self.binary}: not found (install the nftables package)",
                           errno.ENOENT) from e
        if proc.returncode != 0:
            code = next((n for t, n in _ERRNO_BY_TEXT.items() if t in proc.stderr), None)
            raise NftError(what, proc.stderr, code)
        return proc.stdout


class Pending:
    """An nft transaction started by Nft.start(); owns the child process until wait() reaps it."""

    def __init__(self, proc: subprocess.Popen, what: str):
        self._proc = proc
        self.what = what

    def wait(self) -> None:
        try:
            _, stderr = self._proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise NftError(self.what, "nft did not finish within 30 s") from None
        if self._proc.returncode != 0:
            code = next((n for t, n in _ERRNO_BY_TEXT.items() if t in stderr), None)
            raise NftError(self.what, stderr, code)


# --- JSON builders for the pieces we use ----------------------------------------------------------

def table(family: str, name: str, comment: str | None = None) -> dict:
    t: dict = {"family": family, "name": name}
    if comment:
        t["comment"] = comment
    return {"table": t}


def chain(family: str, tbl: str, name: str, *, hook: str | None = None, prio: int = 0,
          kind: str = "nat") -> dict:
    c: dict = {"family": family, "table": tbl, "name": name}
    if hook:
        c.update({"type": kind, "hook": hook, "prio": prio, "policy": "accept"})
    return {"chain": c}


def rule(family: str, tbl: str, chain_name: str, expr: list[dict], comment: str | None = None) -> dict:
    r: dict = {"family": family, "table": tbl, "chain": chain_name, "expr": expr}
    if comment:
        r["comment"] = comment
    return {"rule": r}


def set_(family: str, tbl: str, name: str, type_: str | list[str], flags: list[str] | None = None) -> dict:
    s: dict = {"family": family, "table": tbl, "name": name, "type": type_}
    if flags:
        s["flags"] = flags
    return {"set": s}


def map_(family: str, tbl: str, name: str, key: list[str], value: str | list[str]) -> dict:
    return {"map": {"family": family, "table": tbl, "name": name, "type": key, "map": value}}


def elements(family: str, tbl: str, name: str, elems: list) -> dict:
    return {"element": {"family": family, "table": tbl, "name": name, "elem": elems}}


def payload(protocol: str, field: str) -> dict:
    return {"payload": {"protocol": protocol, "field": field}}


def match(left, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def prefix(network) -> dict:
    return {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}
