"""Pull: from a reference to a verified, unpacked image record in the store.

    reference ──GET manifest──► index? ──select platform──► manifest ──► config (diff_ids, defaults)
                                                                  └──► layers, in parallel:
        have the layer (by diff_id)?  yes → done, nothing downloaded
        have the blob?                no  → download to ingest/ (resuming), verify digest, publish
        unpack blob → tmp/, verify diff_id, rename into layers/ (in a worker thread)
    ──► write the image record (name → manifest, config, layers)

Only after every layer is in place is the record written, so an interrupted or failed pull leaves
no image behind — only verified blobs and layers that the next pull reuses (or GC removes).
Each layer runs under its store lock, so concurrent pulls (tasks or processes) of images that share
layers download and unpack each layer once; the other waits, then finds it done.

Progress is reported as `Progress` events (the CLI draws bars from them; the agent may log them).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

from runtime.images.auth import Keychain
from runtime.images.digest import hex_of
from runtime.images.errors import ManifestError, StoreError
from runtime.images.manifest import (Descriptor, Index, Manifest, Platform, check_layers_match,
                                     parse_config, parse_manifest_or_index)
from runtime.images.reference import Reference, parse_reference
from runtime.images.registry import RegistryClient, RegistryConfig
from runtime.images.store import ImageRecord, ImageStore, LayerRef


@dataclass(frozen=True)
class Progress:
    layer: str      # the layer's blob digest
    phase: str      # "exists" | "waiting" | "downloading" | "verifying" | "extracting" | "done"
    done: int = 0   # bytes so far (downloading)
    total: int = 0  # the blob's size


ProgressFn = Callable[[Progress], None]


async def run_blocking(fn, *args):
    """Run blocking work in a thread. A thread cannot be cancelled, so if we are cancelled we still
    wait for it to finish before passing the cancellation on: the caller's locks stay held until
    the disk is consistent again."""
    fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        await asyncio.wait([fut])
        raise


class Puller:
    def __init__(self, store: ImageStore, *, keychain: Keychain | None = None,
                 config: RegistryConfig | None = None, platform: Platform | None = None,
                 progress: ProgressFn | None = None, max_parallel: int = 3,
                 session=None):
        self.store = store
        self.keychain = keychain or Keychain()
        self.config = config or RegistryConfig()
        self.platform = platform or Platform.host()
        self.progress = progress or (lambda p: None)
        self.max_parallel = max_parallel
        self._session = session       # borrowed if given; else one per pull() call
        self.client: RegistryClient | None = None

    async def pull(self, reference: str | Reference) -> ImageRecord:
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        if self._session is not None:
            return await self._pull(ref, self._session)
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return await self._pull(ref, session)

    async def _pull(self, ref: Reference, session) -> ImageRecord:
        self.client = client = RegistryClient(session, keychain=self.keychain, config=self.config)
        async with self.store.gc_lock(shared=True):
            fetched = await client.get_manifest(ref)
            doc = parse_manifest_or_index(fetched.raw, fetched.content_type)
            index_digest, manifest_digest, raw = None, fetched.digest, fetched.raw
            if isinstance(doc, Index):
                await run_blocking(self.store.put_blob, fetched.digest, fetched.raw)
                chosen = doc.select(self.platform)
                index_digest = fetched.digest
                fetched = await client.get_manifest(ref, chosen.digest)
                doc = parse_manifest_or_index(fetched.raw, fetched.content_type)
                manifest_digest, raw = fetched.digest, fetched.raw
                if not isinstance(doc, Manifest):
                    raise ManifestError(f"{ref}: index entry {chosen.digest} is not an image manifest")
            assert isinstance(doc, Manifest)
            await run_blocking(self.store.put_blob, manifest_digest, raw)

            if self.store.has_blob(doc.config.digest):
                config_raw = await run_blocking(self.store.read_blob, doc.config.digest)
            else:
                config_raw = await client.get_blob_bytes(ref, doc.config)
                await run_blocking(self.store.put_blob, doc.config.digest, config_raw)
            config = parse_config(config_raw)
            check_layers_match(doc, config)

            layers = tuple(LayerRef(d.digest, diff, d.media_type, d.size)
                           for d, diff in zip(doc.layers, config.diff_ids))
            limit = asyncio.Semaphore(self.max_parallel)
            try:
                async with asyncio.TaskGroup() as tg:   # one failure cancels the rest
                    for desc, lr in zip(doc.layers, layers):
                        tg.create_task(self._layer(ref, desc, lr, limit))
            except BaseExceptionGroup as group:
                raise _first_error(group) from None

            plat = Platform(config.os, config.architecture, config.variant)
            rec = ImageRecord(name=str(ref), manifest_digest=manifest_digest,
                              config_digest=doc.config.digest, layers=layers, config=config,
                              platform=str(plat), index_digest=index_digest, created=time.time())
            return await run_blocking(self.store.put_image, rec)

    async def _layer(self, ref: Reference, desc: Descriptor, lr: LayerRef,
                     limit: asyncio.Semaphore) -> None:
        store, emit = self.store, self.progress
        if store.has_layer(lr.diff_id):
            emit(Progress(lr.digest, "exists", lr.size, lr.size))
            return
        emit(Progress(lr.digest, "waiting", 0, lr.size))
        async with limit, store.locked(f"layer-{hex_of(lr.diff_id)}"):
            if store.has_layer(lr.diff_id):          # another pull did it while we waited
                emit(Progress(lr.digest, "exists", lr.size, lr.size))
                return
            if not store.has_blob(lr.digest):
                async with store.locked(f"blob-{hex_of(lr.digest)}"):
                    if not store.has_blob(lr.digest):
                        await self.client.fetch_blob(
                            ref, desc, store.ingest_path(lr.digest),
                            lambda n: emit(Progress(lr.digest, "downloading", n, lr.size)))
                        emit(Progress(lr.digest, "verifying", lr.size, lr.size))
                        await run_blocking(store.commit_ingest, lr.digest)
            emit(Progress(lr.digest, "extracting", lr.size, lr.size))
            await run_blocking(store.unpack_blob, lr)
        emit(Progress(lr.digest, "done", lr.size, lr.size))


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The error to show for a failed TaskGroup: the first real one (not a sibling's cancellation)."""
    leaves = []
    stack = [group]
    while stack:
        e = stack.pop(0)
        if isinstance(e, BaseExceptionGroup):
            stack[:0] = list(e.exceptions)
        else:
            leaves.append(e)
    return next((e for e in leaves if not isinstance(e, asyncio.CancelledError)), leaves[0])


async def pull(store: ImageStore, reference: str, **kw) -> ImageRecord:
    """Convenience: Puller(store, **kw).pull(reference)."""
    return await Puller(store, **kw).pull(reference)


PULL_POLICIES = ("Always", "IfNotPresent", "Never")


async def ensure_image(store: ImageStore, reference: str | Reference, *, policy: str = "IfNotPresent",
                       **kw) -> ImageRecord:
    """The agent's entry point, with Kubernetes' imagePullPolicy semantics:
    Always        ask the registry every time (cheap when nothing changed: only the manifest is
                  fetched, layers already here are not downloaded again);
    IfNotPresent  use the stored image if there is one, else pull;
    Never         use the stored image or fail (StoreError, which the agent reports as
                  ErrImageNeverPull)."""
    if policy not in PULL_POLICIES:
        raise ValueError(f"imagePullPolicy {policy!r}: want one of {', '.join(PULL_POLICIES)}")
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    if policy != "Always":
        try:
            return await run_blocking(store.get, ref)
        except StoreError:
            if policy == "Never":
                raise
    return await Puller(store, **kw).pull(ref)
