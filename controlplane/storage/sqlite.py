"""The embedded store: one SQLite file in WAL mode, laid out as a revision log (as k3s's kine does).

Table `log` holds one row per write, never updated in place:

    rev         INTEGER PRIMARY KEY AUTOINCREMENT   the store-wide revision of this write
    key         the object key
    create_rev  the revision that created this incarnation of the key
    prev_rev    the revision of the key's previous row (0 for a create)
    deleted     1 for a tombstone (the value is then the last value the key had)
    value       the bytes

The current value of a key is its row with the highest rev; the store *as of revision R* is, for
every key, its newest row with rev <= R unless that row is a tombstone. So "list at a revision" and
"events since a revision" are plain queries, and compaction deletes rows that a newer row of the
same key has superseded. AUTOINCREMENT makes SQLite never reuse a rev, even after compaction.

Durability: `journal_mode=WAL` with `synchronous=FULL` fsyncs the write-ahead log before a commit
returns, so a write we acknowledged survives `kill -9` of the server and also power loss, provided
the disk honours fsync. (synchronous=NORMAL would survive a process crash but could lose the last
commits on power loss.)

Threads: SQLite calls block, so they never run on the event loop. One writer thread owns the write
connection and does *group commit*: it takes every write waiting in its queue, applies them in one
transaction (each with its own compare-and-swap check), fsyncs once, then hands the results back to
the loop in revision order. One reader thread owns a second connection for get/list/history (WAL
lets it read while the writer writes).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from controlplane.storage.interface import (
    Compacted, Conflict, Event, KeyExists, KeyNotFound, KeyValue, StorageError)

log = logging.getLogger("nodeagent.storage")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    rev        INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT    NOT NULL,
    create_rev INTEGER NOT NULL,
    prev_rev   INTEGER NOT NULL,
    deleted    INTEGER NOT NULL,
    value      BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_NEWEST_ROWS = """
SELECT l.rev, l.key, l.create_rev, l.value FROM log l
JOIN (SELECT key, MAX(rev) AS r FROM log WHERE key > ? AND key < ? AND rev <= ? GROUP BY key) m
  ON l.rev = m.r
WHERE l.deleted = 0 ORDER BY l.key
"""


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with prefix (etcd's range end)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


@dataclass
class _Write:
    op: str  # create | update | delete
    key: str
    value: bytes
    expected_rev: int
    future: asyncio.Future


class SQLiteStorage:
    """A Storage on one SQLite file. Create with `await SQLiteStorage.open(path)`."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop):
        self.path = path
        self._loop = loop
        self._subscribers: list[Callable[[Event], None]] = []
        self._queue: queue.Queue[_Write | None] = queue.Queue()
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="sqlite-read")
        self._revision = 0  # owned by the event loop: advanced when results are delivered
        self._compacted = 0
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-write", daemon=True)
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path | str) -> SQLiteStorage:
        self = cls(Path(path), asyncio.get_running_loop())
        await self._loop.run_in_executor(self._reader, self._open_connections)
        self._writer.start()
        return self

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _open_connections(self) -> None:
        try:
            self._wconn = self._connect()
            self._wconn.executescript(_SCHEMA)
            self._rconn = self._connect()
        except sqlite3.Error as e:
            raise StorageError(str(self.path), f"cannot open the store: {e}") from e
        row = self._rconn.execute("SELECT seq FROM sqlite_sequence WHERE name='log'").fetchone()
        self._revision = row[0] if row else 0
        row = self._rconn.execute("SELECT value FROM meta WHERE name='compacted'").fetchone()
        self._compacted = row[0] if row else 0

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compacted_revision(self) -> int:
        return self._compacted

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)

    # ---- reads (reader thread) ----

    async def _read(self, fn, *args):
        return await self._loop.run_in_executor(self._reader, fn, *args)

    async def get(self, key: str) -> KeyValue | None:
        return await self._read(self._get, key)

    def _get(self, key: str) -> KeyValue | None:
        row = self._rconn.execute(
            "SELECT rev, key, create_rev, value, deleted FROM log WHERE key = ? "
            "ORDER BY rev DESC LIMIT 1", (key,)).fetchone()
        if row is None or row[4]:
            return None
        return KeyValue(row[1], row[3], row[2], row[0])

    async def list(self, prefix: str, revision: int = 0, start_after: str = "",
                   limit: int = 0) -> tuple[list[KeyValue], int, bool]:
        return await self._read(self._list, prefix, revision, start_after, limit)

    def _list(self, prefix, revision, start_after, limit):
        # Take the read snapshot first: everything below is one consistent SQLite read transaction.
        self._rconn.execute("BEGIN")
        try:
            row = self._rconn.execute("SELECT seq FROM sqlite_sequence WHERE name='log'").fetchone()
            current = row[0] if row else 0
            if revision and revision < self._compacted:
                raise Compacted(revision, self._compacted)
            at = revision or current
            low = start_after or _chr_before(prefix)  # the low bound is exclusive
            sql = _NEWEST_ROWS + (" LIMIT ?" if limit else "")
            args = (low, _prefix_end(prefix), at) + ((limit + 1,) if limit else ())
            rows = self._rconn.execute(sql, args).fetchall()
        finally:
            self._rconn.execute("COMMIT")
        more = bool(limit) and len(rows) > limit
        rows = rows[:limit] if limit else rows
        return [KeyValue(r[1], r[3], r[2], r[0]) for r in rows], at, more

    async def events_since(self, revision: int) -> list[Event]:
        return await self._read(self._events_since, revision)

    def _events_since(self, revision: int) -> list[Event]:
        if revision < self._compacted:
            raise Compacted(revision, self._compacted)
        rows = self._rconn.execute(
            "SELECT l.rev, l.key, l.create_rev, l.deleted, l.value, p.rev, p.create_rev, p.value "
            "FROM log l LEFT JOIN log p ON p.rev = l.prev_rev WHERE l.rev > ? ORDER BY l.rev",
            (revision,)).fetchall()
        events = []
        for rev, key, crev, deleted, value, prev_rev, prev_crev, prev_value in rows:
            prev = KeyValue(key, prev_value, prev_crev, prev_rev) if prev_rev is not None else None
            events.append(Event("DELETE" if deleted else "PUT", KeyValue(key, value, crev, rev), prev))
        return events

    # ---- writes (writer thread, group commit) ----

    def _submit(self, op: str, key: str, value: bytes, expected_rev: int) -> asyncio.Future:
        if self._wconn is None:
            raise StorageError(key, "store is closed")
        fut = self._loop.create_future()
        self._queue.put(_Write(op, key, value, expected_rev, fut))
        return fut

    async def create(self, key: str, value: bytes) -> KeyValue:
        return await self._submit("create", key, value, 0)

    async def update(self, key: str, value: bytes, expected_rev: int) -> KeyValue:
        return await self._submit("update", key, value, expected_rev)

    async def delete(self, key: str, expected_rev: int = 0) -> KeyValue:
        return await self._submit("delete", key, b"", expected_rev)

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while True:  # everything already waiting joins this transaction
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            try:
                results = self._commit(batch)
            except Exception as e:  # never leave a writer waiting on a dead thread
                err = StorageError(str(self.path), f"write failed: {e!r}")
                results = [(w, err) for w in batch]
            self._loop.call_soon_threadsafe(self._deliver, results)

    def _commit(self, batch: list[_Write]) -> list[tuple[_Write, Event | Exception]]:
        conn = self._wconn
        results: list[tuple[_Write, Event | Exception]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for w in batch:
                try:
                    results.append((w, self._apply(conn, w)))
                except StorageError as e:
                    results.append((w, e))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            err = StorageError(str(self.path), f"write failed: {e}")
            return [(w, err) for w in batch]
        return results

    def _apply(self, conn: sqlite3.Connection, w: _Write) -> Event:
        row = conn.execute("SELECT rev, create_rev, deleted, value FROM log WHERE key = ? "
                           "ORDER BY rev DESC LIMIT 1", (w.key,)).fetchone()
        live = row is not None and not row[2]
        prev = KeyValue(w.key, row[3], row[1], row[0]) if live else None
        if w.op == "create":
            if live:
                raise KeyExists(w.key)
            rev = conn.execute("INSERT INTO log (key, create_rev, prev_rev, deleted, value) "
                               "VALUES (?, 0, 0, 0, ?)", (w.key, w.value)).lastrowid
            conn.execute("UPDATE log SET create_rev = rev WHERE rev = ?", (rev,))
            return Event("PUT", KeyValue(w.key, w.value, rev, rev), None)
        if not live:
            raise KeyNotFound(w.key)
        if w.expected_rev and w.expected_rev != prev.mod_rev:
            raise Conflict(w.key, w.expected_rev, prev.mod_rev)
        deleted = w.op == "delete"
        value = prev.value if deleted else w.value
        rev = conn.execute("INSERT INTO log (key, create_rev, prev_rev, deleted, value) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (w.key, prev.create_rev, prev.mod_rev, int(deleted), value)).lastrowid
        kv = KeyValue(w.key, value, prev.create_rev, rev)
        return Event("DELETE" if deleted else "PUT", kv, prev)

    def _deliver(self, results: list[tuple[_Write, Event | Exception]]) -> None:
        # On the loop, in revision order: subscribers first, so that when a writer's await
        # returns, every watcher of the store has already been told about the write.
        for w, res in results:
            if isinstance(res, Event):
                self._revision = res.revision
                for cb in self._subscribers:
                    try:
                        cb(res)
                    except Exception:  # a broken subscriber must not lose the writer its answer
                        log.exception("storage subscriber failed on revision %d", res.revision)
        for w, res in results:
            if w.future.done():
                continue
            if isinstance(res, Exception):
                w.future.set_exception(res)
            else:
                w.future.set_result(res.kv)

    # ---- maintenance ----

    async def compact(self, revision: int) -> None:
        """Forget history up to `revision`: rows superseded by a newer row of their key, and
        tombstones. The newest live row of every key is kept, whatever its age."""
        def run():
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "DELETE FROM log WHERE rev <= ? AND (deleted = 1 OR EXISTS (SELECT 1 FROM log n "
                    "WHERE n.key = log.key AND n.rev > log.rev AND n.rev <= ?))", (revision, revision))
                conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('compacted', ?)",
                             (revision,))
                conn.execute("COMMIT")
            finally:
                conn.close()
        await self._read(run)
        self._compacted = max(self._compacted, revision)

    async def close(self) -> None:
        if self._wconn is None:
            return
        self._queue.put(None)
        await self._loop.run_in_executor(None, self._writer.join)
        def close_all():
            self._wconn.close()
            self._rconn.close()
        await self._read(close_all)
        self._wconn = None
        self._reader.shutdown(wait=True)


def _chr_before(prefix: str) -> str:
    """A string just below every key with this prefix (the low bound is exclusive)."""
    return prefix[:-1] + chr(ord(prefix[-1]) - 1) + "\U0010ffff" if prefix else ""
