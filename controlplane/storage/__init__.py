"""controlplane.storage — where the API server keeps its objects.

The interface (interface.py) is the one etcd offers the real kube-apiserver, cut to what we use:

    get(key)                      the newest value of one key
    list(prefix, revision)        every live key under a prefix, as of a revision (MVCC)
    create(key, value)            fails if the key exists
    update(key, value, expected)  compare-and-swap on the key's mod revision
    delete(key, expected)         leaves a tombstone in the history
    events_since(revision)        the history after a revision, for watches

Every write gets the next number of ONE cluster-wide revision counter; that number is the
resourceVersion clients see. sqlite.py implements it on one SQLite file (WAL mode), the embedded
default. An etcd implementation can follow: etcd has the same revision counter, compare-and-swap
transactions and a compacted history.

watchcache.py sits in front of any Storage: it keeps the current objects and a window of recent
events in memory and fans events out to watchers, like the kube-apiserver's watch cache.

May import: the standard library. Never the API server (it knows nothing of HTTP or Kubernetes
kinds: keys are strings, values are bytes).
"""

from controlplane.storage.interface import (
    Compacted, Conflict, Event, KeyExists, KeyNotFound, KeyValue, Storage, StorageError)

__all__ = ["Compacted", "Conflict", "Event", "KeyExists", "KeyNotFound", "KeyValue", "Storage",
           "StorageError"]
