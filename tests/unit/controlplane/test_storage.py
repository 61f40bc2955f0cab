"""The SQLite store: revisions, compare-and-swap, MVCC list, history, durability across reopen."""

import asyncio

import pytest

from controlplane.storage import Compacted, Conflict, KeyExists, KeyNotFound
from controlplane.storage.sqlite import SQLiteStorage
from controlplane.storage.watchcache import WatchCache


def run(coro):
    return asyncio.run(coro)


def test_revisions_cas_and_history(tmp_path):
    async def main():
        s = await SQLiteStorage.open(tmp_path / "db")
        events = []
        s.subscribe(events.append)
        a = await s.create("/registry/pods/ns/a", b"1")
        b = await s.create("/registry/pods/ns/b", b"2")
        assert (a.mod_rev, b.mod_rev) == (1, 2)
        with pytest.raises(KeyExists):
            await s.create("/registry/pods/ns/a", b"x")
        a2 = await s.update("/registry/pods/ns/a", b"1b", a.mod_rev)
        assert a2.mod_rev == 3 and a2.create_rev == 1
        with pytest.raises(Conflict):
            await s.update("/registry/pods/ns/a", b"1c", a.mod_rev)  # stale revision
        d = await s.delete("/registry/pods/ns/b")
        assert d.mod_rev == 4 and d.value == b"2"
        with pytest.raises(KeyNotFound):
            await s.delete("/registry/pods/ns/b")
        # The store as of revision 2 still has b and the first value of a.
        items, rev, _ = await s.list("/registry/pods/", 2)
        assert [(i.key, i.value) for i in items] == [("/registry/pods/ns/a", b"1"), ("/registry/pods/ns/b", b"2")]
        items, rev, _ = await s.list("/registry/pods/")
        assert rev == 4 and [i.value for i in items] == [b"1b"]
        assert [(e.type, e.revision) for e in events] == [("PUT", 1), ("PUT", 2), ("PUT", 3), ("DELETE", 4)]
        hist = await s.events_since(2)
        assert [(e.type, e.revision, e.prev.mod_rev if e.prev else None) for e in hist] == \
            [("PUT", 3, 1), ("DELETE", 4, 2)]
        await s.compact(3)
        with pytest.raises(Compacted):
            await s.list("/registry/pods/", 2)
        await s.close()
        s = await SQLiteStorage.open(tmp_path / "db")  # reopen: state and counter survive
        assert s.revision == 4
        assert (await s.get("/registry/pods/ns/a")).value == b"1b"
        assert (await s.create("/registry/pods/ns/c", b"3")).mod_rev == 5
        await s.close()
    run(main())


def test_paging_and_prefixes(tmp_path):
    async def main():
        s = await SQLiteStorage.open(tmp_path / "db")
        for i in range(5):
            await s.create(f"/registry/pods/ns/p{i}", b"x")
        await s.create("/registry/podsx/ns/q", b"y")  # a neighbour prefix must not leak in
        page, rev, more = await s.list("/registry/pods/", 0, "", 2)
        assert [k.key[-2:] for k in page] == ["p0", "p1"] and more
        page, _, more = await s.list("/registry/pods/", rev, page[-1].key, 10)
        assert [k.key[-2:] for k in page] == ["p2", "p3", "p4"] and not more
        await s.close()
    run(main())


def test_group_commit_serializes_concurrent_cas(tmp_path):
    async def main():
        s = await SQLiteStorage.open(tmp_path / "db")
        kv = await s.create("/k", b"0")
        results = await asyncio.gather(*(s.update("/k", str(i).encode(), kv.mod_rev) for i in range(10)),
                                       return_exceptions=True)
        assert sum(not isinstance(r, Exception) for r in results) == 1  # exactly one CAS wins
        assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
        await s.close()
    run(main())


def test_watch_cache_window_and_expiry(tmp_path):
    async def main():
        s = await SQLiteStorage.open(tmp_path / "db")
        c = WatchCache(s, lambda kv: kv.value.decode(), window=3)
        await c.start("/")
        for i in range(5):
            await s.create(f"/registry/x/{i}", b"v%d" % i)
        assert [e.obj for e in c.list("/registry/x/")[0]] == ["v0", "v1", "v2", "v3", "v4"]
        w = c.watch("/registry/x/", 3)  # the window holds revisions 3..5
        assert [(await w.next()).revision for _ in range(2)] == [4, 5]
        with pytest.raises(Compacted):
            c.watch("/registry/x/", 1)
        await s.update("/registry/x/0", b"new", 1)
        ev = await w.next()
        assert (ev.type, ev.entry.obj, ev.prev.obj) == ("MODIFIED", "new", "v0")
        c.stop(w)
        await s.close()
    run(main())
