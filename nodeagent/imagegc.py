"""Image garbage collection (the kubelet's images/image_gc_manager.go).

Images pile up: every tag a pod ever ran stays in the store after its pods are gone. The kubelet
keeps the image filesystem below a threshold by deleting the images no container uses, least
recently used first:

    every 5 min (ImageGCPeriod; the first pass at start)
      1. detect     list images and containers: an image a container (running or exited) was
                    made from is in use, and its lastUsed is now; an image seen for the first
                    time gets firstDetected = now
      2. measure    usage = 100 - available * 100 / capacity of the store's filesystem
      3. if usage >= ImageGCHighThresholdPercent (85):
                    free capacity * (100 - ImageGCLowThresholdPercent (80)) / 100 - available
                    bytes: remove unused images, oldest lastUsed (then firstDetected) first,
                    skipping images detected less than ImageMinimumGCAge (2 min) ago
      4. if less could be freed than needed: a Warning event on the Node, FreeDiskSpaceFailed,
                    "Failed to garbage collect required amount of images. Attempted to free N
                    bytes, but only found M bytes eligible to free."

The thresholds are the kubelet's flags (--image-gc-high-threshold, --image-gc-low-threshold,
--minimum-image-ttl-duration); a high threshold of 100 turns image GC off.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

from nodeagent.cri.api import CRIError, ImageService, RuntimeService
from nodeagent.errors import AgentError

log = logging.getLogger("nodeagent.imagegc")

GC_PERIOD = 300.0


@dataclass(frozen=True)
class ImageGCPolicy:
    high_threshold: int = 85          # percent of the image filesystem used that starts a GC
    low_threshold: int = 80           # ... and where it stops
    min_age: float = 120.0            # seconds since an image was first seen before it may go

    def __post_init__(self):
        if not 0 <= self.high_threshold <= 100:
            raise AgentError(f"--image-gc-high-threshold: {self.high_threshold} must be 0..100")
        if not 0 <= self.low_threshold <= 100:
            raise AgentError(f"--image-gc-low-threshold: {self.low_threshold} must be 0..100")
        if self.low_threshold > self.high_threshold:
            raise AgentError(f"--image-gc-low-threshold ({self.low_threshold}) must not be greater "
                             f"than --image-gc-high-threshold ({self.high_threshold})")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")


def parse_duration(text: str, flag: str) -> float:
    """A Go duration ("2m0s", "90s", "0s", "1h") in seconds."""
    if text in ("0", ""):
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise AgentError(f"{flag}: {text!r} is not a duration (like 2m0s, 90s, 0s)")
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


@dataclass
class _Record:
    first_detected: float
    last_used: float
    size: int


def _fs_usage(path: str) -> tuple[int, int]:
    import psutil
    du = psutil.disk_usage(path)
    return du.total, du.free


class ImageGC:
    def __init__(self, runtime: RuntimeService, images: ImageService, store_dir: str,
                 policy: ImageGCPolicy, node_event=None, fs_usage=_fs_usage):
        self.runtime, self.images, self.store_dir, self.policy = runtime, images, store_dir, policy
        self.node_event = node_event or (lambda type_, reason, message: None)
        self.fs_usage = fs_usage                 # (capacity, available) of the store's filesystem
        self._records: dict[str, _Record] = {}   # image ID → what we know; owned by the loop
        self.removed: list[str] = []             # image IDs removed (for logs and tests)

    async def detect(self, now: float) -> set[str]:
        """Record every image; the IDs in use (by any container, running or not)."""
        in_use = {c.image_ref for c in await self.runtime.list_containers()}
        images = await self.images.list_images()
        for img in images:
            rec = self._records.setdefault(img.id, _Record(now, 0.0, img.size))
            rec.size = img.size
            if img.id in in_use:
                rec.last_used = now
        for gone in set(self._records) - {i.id for i in images}:
            del self._records[gone]
        return in_use

    async def garbage_collect(self) -> int:
        """One pass; the bytes freed."""
        if self.policy.high_threshold >= 100:
            return 0
        now = time.time()
        in_use = await self.detect(now)
        capacity, available = await asyncio.to_thread(self.fs_usage, self.store_dir)
        if capacity <= 0:
            return 0
        usage = 100 - int(available * 100 / capacity)
        if usage < self.policy.high_threshold:
            return 0
        to_free = capacity * (100 - self.policy.low_threshold) // 100 - available
        log.info("image filesystem %d%% used (threshold %d%%): freeing %d bytes",
                 usage, self.policy.high_threshold, to_free)
        freed = await self._free(to_free, in_use, now)
        if freed < to_free:
            self.node_event("Warning", "FreeDiskSpaceFailed",
                            f"Failed to garbage collect required amount of images. Attempted to "
                            f"free {to_free} bytes, but only found {freed} bytes eligible to free.")
        return freed

    async def delete_unused(self) -> int:
        """DeleteUnusedImages: every image no container uses (and old enough), whatever the
        thresholds — the eviction manager's node-level reclaim under disk pressure. The bytes
        freed."""
        now = time.time()
        return await self._free(1 << 63, await self.detect(now), now)

    async def _free(self, to_free: int, in_use: set[str], now: float) -> int:
        candidates = sorted(((i, r) for i, r in self._records.items() if i not in in_use),
                            key=lambda ir: (ir[1].last_used, ir[1].first_detected))
        freed = 0
        for image_id, rec in candidates:
            if freed >= to_free:
                break
            if now - rec.first_detected < self.policy.min_age:
                continue
            try:
                await self.images.remove_image(image_id)
            except CRIError as e:
                log.warning("image GC: removing %s: %s", image_id, e)
                continue
            log.info("image GC: removed %s (%d bytes)", image_id, rec.size)
            self.removed.append(image_id)
            self._records.pop(image_id, None)
            freed += rec.size
        return freed

    async def run(self) -> None:
        while True:
            try:
                await self.garbage_collect()
            except (CRIError, OSError) as e:
                log.warning("image GC: %s", e)
                self.node_event("Warning", "ImageGCFailed", str(e))
            await asyncio.sleep(GC_PERIOD)
