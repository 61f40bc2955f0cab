"""The allocation store: one file per allocated IP, under one lock per network.

    /var/lib/cni/networks/<network>/
        lock                     flock(2) held while allocating or releasing
        10.244.1.2               "<container id>\\r\\n<ifname>": who holds 10.244.1.2
        10.244.1.3               ...
        last_reserved_ip.0       the last address handed out from range set 0
        .attachments/<container id>/<ifname>/10.244.1.2   a hard link to the file above

Why files? Allocation must survive the runtime and the agent restarting (the pods keep their
addresses), and must be safe when many plugin processes run at once for different pods (the CNI
spec allows parallel ADDs for different containers). A file per IP makes "is 10.244.1.7 free?" an
atomic question for the kernel: we write the owner into a temporary file and link(2) it to the IP's
name — link fails with EEXIST if the name exists, so two allocators can never both win, and no
reader ever sees a half-written owner. The lock makes the whole search-and-reserve (and the
duplicate check before it) one step relative to other allocators, in this process or another;
flock locks belong to an open file description, so threads of one process exclude each other too.

The `.attachments` index answers "what does this container hold?" without reading every file (the
reference plugin reads them all on each ADD and DEL: with 110 pods on a node that is 110 files per
pod start). Each entry is a *hard link* to the IP's file — the same inode under a second name — so
it cannot disagree with the file about the owner, and `os.path.samefile` tells a live entry from
one whose address another plugin released meanwhile. Plugins that do not know the index (the
reference host-local, sharing a data dir) stay correct: they see one more hidden directory.

Allocation is round-robin: start after the last address handed out, wrap around, skip the gateway.
A just-freed address is thus reused last, which keeps a stale ARP/conntrack entry for a deleted pod
from hitting the next one.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

from cni.errors import TRY_AGAIN_LATER, CNIError, ConfigError
from cni.ipam.ranges import Range

LINE_BREAK = "\r\n"
LAST_RESERVED = "last_reserved_ip."
INDEX = ".attachments"


class DuplicateAllocation(CNIError):
    pass


class Store:
    """Use as a context manager: the lock is held inside the `with` block."""

    def __init__(self, data_dir: str | os.PathLike, network: str):
        self.dir = Path(data_dir) / network
        self._lock_fd = -1

    def __enter__(self) -> "Store":
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)
            fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise ConfigError(f"cannot use IPAM data dir {self.dir}", e.strerror or str(e), 5) from e
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd
        return self

    def __exit__(self, *exc) -> None:
        fd, self._lock_fd = self._lock_fd, -1
        os.close(fd)  # closing the (only) descriptor releases the flock

    # --- reading ---------------------------------------------------------------------------------
    def entries(self) -> Iterator[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str, str]]:
        """(ip, container id, ifname) of every allocation; ifname is "" in files of old plugins."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        for name in names:
            try:
                ip = ipaddress.ip_address(name)
            except ValueError:
                continue  # lock, last_reserved_ip.N, temporaries
            try:
                # bytes, not read_text(): universal newlines would turn the "\r\n" separator into "\n"
                text = (self.dir / name).read_bytes().decode()
            except OSError:
                continue
            cid, _, ifname = text.partition(LINE_BREAK)
            yield ip, cid.strip(), ifname.strip()

    def _index(self, container_id: str, ifname: str) -> Path:
        return self.dir / INDEX / container_id.strip() / ifname

    def find(self, container_id: str, ifname: str) -> list:
        """The addresses (container_id, ifname) holds, from the index; drops stale index entries."""
        idx = self._index(container_id, ifname)
        try:
            names = os.listdir(idx)
        except FileNotFoundError:
            return []
        held = []
        for name in names:
            try:
                ip = ipaddress.ip_address(name)
                live = os.path.samefile(idx / name, self.dir / name)
            except (ValueError, FileNotFoundError):
                live = False
            if live:
                held.append(ip)
            elif self._lock_fd >= 0:  # released behind our back: forget it (only under the lock)
                (idx / name).unlink(missing_ok=True)
        return sorted(held)

    def last_reserved(self, set_index: int):
        try:
            return ipaddress.ip_address((self.dir / f"{LAST_RESERVED}{set_index}").read_text().strip())
        except (OSError, ValueError):
            return None

    # --- writing (call with the lock held, i.e. inside `with`) -----------------------------------
    def reserve(self, ip, container_id: str, ifname: str, set_index: int) -> bool:
        """Claim `ip` for (container_id, ifname); False if somebody holds it already."""
        assert self._lock_fd >= 0, "reserve() outside the store's lock"
        tmp = self.dir / f".tmp-{os.getpid()}-{ip}"
        tmp.write_bytes((container_id.strip() + LINE_BREAK + ifname).encode())
        try:
            os.link(tmp, self.dir / str(ip))
            idx = self._index(container_id, ifname)
            idx.mkdir(parents=True, exist_ok=True)
            os.link(tmp, idx / str(ip))       # the same inode, reachable by attachment
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        (self.dir / f"{LAST_RESERVED}{set_index}").write_text(str(ip))
        return True

    def _drop_index(self, container_id: str, ifname: str, ip) -> None:
        idx = self._index(container_id, ifname)
        (idx / str(ip)).unlink(missing_ok=True)
        for d in (idx, idx.parent):  # remove the attachment's (and then the container's) empty dirs
            try:
                d.rmdir()
            except OSError:
                break

    def release(self, container_id: str, ifname: str) -> list:
        """Free every address held by (container_id, ifname). Missing is fine (DEL is idempotent)."""
        assert self._lock_fd >= 0, "release() outside the store's lock"
        freed = []
        for ip in self.find(container_id, ifname):
            try:
                (self.dir / str(ip)).unlink()
                freed.append(ip)
            except FileNotFoundError:
                pass
            self._drop_index(container_id, ifname, ip)
        return freed

    def gc(self, valid: set[tuple[str, str]]) -> list:
        """Free every address whose (container id, ifname) is not in `valid`."""
        assert self._lock_fd >= 0, "gc() outside the store's lock"
        valid_ids = {c for c, _ in valid}
        freed = []
        for ip, cid, ifname in list(self.entries()):
            keep = (cid, ifname) in valid if ifname else cid in valid_ids
            if not keep:
                try:
                    (self.dir / str(ip)).unlink()
                    freed.append(ip)
                except FileNotFoundError:
                    pass
                if ifname:
                    self._drop_index(cid, ifname, ip)
        return freed

    # --- allocation ------------------------------------------------------------------------------
    def allocate(self, ranges: tuple[Range, ...], set_index: int, container_id: str, ifname: str,
                 requested=None) -> tuple[Range, object]:
        """Reserve one address from range set `ranges` (or exactly `requested`). Returns (range, ip)."""
        held = [ip for ip in self.find(container_id, ifname) if any(ip in r for r in ranges)]
        if held:
            raise DuplicateAllocation(
                7, f"{held[0]} has been allocated to {container_id}, duplicate allocation is not allowed",
                f"attachment ({container_id}, {ifname}) already holds an address; DEL it first")
        if requested is not None:
            rng = next((r for r in ranges if requested in r), None)
            if rng is None:
                raise CNIError(7, f"requested IP {requested} is not in range set "
                                  f"{', '.join(str(r) for r in ranges)}")
            if requested == rng.gateway:
                raise CNIError(7, f"requested IP {requested} is the subnet's gateway")
            if not self.reserve(requested, container_id, ifname, set_index):
                raise CNIError(TRY_AGAIN_LATER, f"requested IP {requested} is already allocated")
            return rng, requested
        for rng, ip in _round_robin(ranges, self.last_reserved(set_index)):
            if self.reserve(ip, container_id, ifname, set_index):
                return rng, ip
        total = sum(r.size() for r in ranges)
        raise CNIError(TRY_AGAIN_LATER,
                       # host-local's words (allocator.go, and main.go's "for range %d" prefix)
                       f"failed to allocate for range {set_index}: no IP addresses available in "
                       f"range set: {','.join(str(r) for r in ranges)}",
                       f"all {total} addresses are allocated; delete pods or use a larger subnet")

    def free_count(self, ranges: tuple[Range, ...]) -> int:
        used = sum(1 for ip, _, _ in self.entries() if any(ip in r for r in ranges) and
                   not any(ip == r.gateway for r in ranges))
        return sum(r.size() for r in ranges) - used


def _addresses(rng: Range, first, last) -> Iterator[tuple[Range, object]]:
    ip = first
    while ip <= last:
        if ip != rng.gateway:
            yield rng, ip
        ip += 1


def _round_robin(ranges: tuple[Range, ...], last) -> Iterator[tuple[Range, object]]:
    """Every allocatable address of the set once, starting just after `last` (if it is in the set),
    lazily: a /16 is 65k candidates and we usually need the first."""
    k = next((i for i, r in enumerate(ranges) if last is not None and last in r), None)
    if k is None:
        for r in ranges:
            yield from _addresses(r, r.start, r.end)
        return
    here = ranges[k]
    if last < here.end:
        yield from _addresses(here, last + 1, here.end)
    for j in range(1, len(ranges)):
        other = ranges[(k + j) % len(ranges)]
        yield from _addresses(other, other.start, other.end)
    yield from _addresses(here, here.start, last)
