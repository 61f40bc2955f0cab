"""The storage contract: a versioned key-value store with one revision counter (etcd's model).

Keys are strings such as "/registry/pods/default/web-1"; values are opaque bytes (the API server
stores JSON). Every successful write — create, update or delete — is given the next value of one
store-wide counter, the *revision*. A key remembers the revision that created it (create_rev) and
the one that last changed it (mod_rev). The API server shows mod_rev to clients as
`metadata.resourceVersion`, and because the counter is store-wide, "resourceVersion 42" names a
moment of the whole cluster, which is what lets a watch resume from any list.

Old revisions are kept for a while (the history); `compact` forgets them, after which listing or
watching from an older revision raises Compacted — the API server turns that into 410 Gone.

Contract for implementations:
- Writes are atomic and durable when they return: an acknowledged write survives a crash.
- create/update/delete are linearizable; `update` and `delete` with `expected_rev` succeed only if
  the key's mod_rev still equals it (compare-and-swap), else Conflict.
- subscribers (see `subscribe`) see every committed event exactly once, in revision order, and
  before the write that caused it returns to its caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol


class StorageError(Exception):
    """Base error of the storage package; carries the key it is about."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


class KeyNotFound(StorageError):
    def __init__(self, key: str):
        super().__init__(key, "not found")


class KeyExists(StorageError):
    def __init__(self, key: str):
        super().__init__(key, "already exists")


class Conflict(StorageError):
    """A compare-and-swap lost: the key changed since the caller read it."""

    def __init__(self, key: str, expected: int, actual: int):
        super().__init__(key, f"modified (expected revision {expected}, found {actual})")
        self.expected, self.actual = expected, actual


class Compacted(StorageError):
    """The revision asked for is older than the kept history."""

    def __init__(self, revision: int, compacted: int):
        super().__init__("*", f"revision {revision} is compacted (oldest kept: {compacted})")
        self.revision, self.compacted = revision, compacted


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_rev: int
    mod_rev: int


@dataclass(frozen=True)
class Event:
    """One committed write. For DELETE, `kv.value` is the last value and kv.mod_rev the deletion's
    revision; `prev` is the value before the write (None for a create)."""

    type: str  # "PUT" (create or update) or "DELETE"
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_rev


class Storage(Protocol):
    @property
    def revision(self) -> int:
        """The newest committed revision."""

    async def get(self, key: str) -> KeyValue | None: ...

    async def list(self, prefix: str, revision: int = 0, start_after: str = "",
                   limit: int = 0) -> tuple[list[KeyValue], int, bool]:
        """Live keys under prefix as of `revision` (0: newest), sorted by key, starting after
        `start_after`, at most `limit` (0: all). Returns (items, revision, more)."""

    async def create(self, key: str, value: bytes) -> KeyValue: ...

    async def update(self, key: str, value: bytes, expected_rev: int) -> KeyValue: ...

    async def delete(self, key: str, expected_rev: int = 0) -> KeyValue:
        """Remove the key; returns the deleted value with mod_rev set to the deletion revision."""

    async def events_since(self, revision: int) -> list[Event]:
        """The history after `revision` in order; Compacted if it is no longer kept."""

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Call `callback` on the event loop for every committed event (see the contract)."""

    async def compact(self, revision: int) -> None: ...

    async def close(self) -> None: ...
