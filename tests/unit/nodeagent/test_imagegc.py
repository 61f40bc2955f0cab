"""Image GC (nodeagent/imagegc.py): which images go, in which order, and what the node is told,
with the kubelet's thresholds — on fake images and a pretend filesystem."""

import asyncio
from dataclasses import dataclass

import pytest

from nodeagent.cri.api import Image
from nodeagent.errors import AgentError
from nodeagent.imagegc import ImageGC, ImageGCPolicy, parse_duration

MiB = 2**20


@dataclass
class C:
    image_ref: str


class Fake:
    def __init__(self, images: dict[str, int], used: set[str]):
        self.images, self.used, self.removed = dict(images), used, []

    async def list_containers(self):
        return [C(i) for i in self.used]

    async def list_images(self):
        return [Image(id=i, repo_tags=(i,), repo_digests=(), size=s) for i, s in self.images.items()]

    async def remove_image(self, ref):
        self.removed.append(ref)
        self.images.pop(ref)


def gc(fake, capacity, free, policy=ImageGCPolicy(min_age=0)):
    events = []
    g = ImageGC(fake, fake, "/x", policy, node_event=lambda *e: events.append(e),
                fs_usage=lambda _: (capacity, free))
    return g, events


def test_below_the_high_threshold_nothing_goes():
    fake = Fake({"a": 10 * MiB, "b": 10 * MiB}, used=set())
    g, events = gc(fake, capacity=100 * MiB, free=16 * MiB)       # 84% used
    assert asyncio.run(g.garbage_collect()) == 0 and not fake.removed and not events


def test_unused_images_go_least_recently_used_first_down_to_the_low_threshold():
    fake = Fake({"old": 10 * MiB, "newer": 10 * MiB, "busy": 50 * MiB}, used={"busy"})
    g, events = gc(fake, capacity=100 * MiB, free=10 * MiB)        # 90% used: free 10 MiB

    async def main():
        await g.detect(1000.0)                                     # both seen, "busy" in use
        fake.used = {"busy", "newer"}
        await g.detect(2000.0)                                     # "newer" used later than "old"
        fake.used = {"busy"}
        return await g.garbage_collect()
    assert asyncio.run(main()) == 10 * MiB
    assert fake.removed == ["old"] and not events


def test_not_enough_to_free_is_a_node_event_with_the_kubelets_message():
    fake = Fake({"small": 1 * MiB, "busy": 50 * MiB}, used={"busy"})
    g, events = gc(fake, capacity=100 * MiB, free=5 * MiB)         # free 15 MiB; 1 MiB eligible
    asyncio.run(g.garbage_collect())
    assert fake.removed == ["small"]
    assert events == [("Warning", "FreeDiskSpaceFailed",
                       f"Failed to garbage collect required amount of images. Attempted to free "
                       f"{15 * MiB} bytes, but only found {1 * MiB} bytes eligible to free.")]


def test_young_images_are_kept_and_100_turns_gc_off():
    fake = Fake({"new": 10 * MiB}, used=set())
    g, events = gc(fake, capacity=100 * MiB, free=1 * MiB, policy=ImageGCPolicy(min_age=120))
    asyncio.run(g.garbage_collect())
    assert not fake.removed and events[0][1] == "FreeDiskSpaceFailed"
    g, _ = gc(fake, capacity=100 * MiB, free=1 * MiB, policy=ImageGCPolicy(100, 80, 0))
    assert asyncio.run(g.garbage_collect()) == 0 and not fake.removed


def test_flags_are_checked_as_the_kubelet_does():
    assert parse_duration("2m0s", "f") == 120 and parse_duration("0s", "f") == 0
    assert parse_duration("1h30m", "f") == 5400
    with pytest.raises(AgentError, match="--minimum-image-ttl-duration: '2 minutes'"):
        parse_duration("2 minutes", "--minimum-image-ttl-duration")
    with pytest.raises(AgentError, match="must not be greater"):
        ImageGCPolicy(high_threshold=70, low_threshold=80)
