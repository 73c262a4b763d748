"""The overrides cache on its own: read once per change, a read racing a change never kept, read again
once old. (tests/integration/test_settings_follow.py: the change heard over a real Redis channel.)"""

from __future__ import annotations

import asyncio

from asterisk_cb.core.settings import Layers
from asterisk_cb.settings_cache import OverridesCache


class Store:
    """Counts reads; ``gate`` holds a read in flight until the test lets it finish."""

    def __init__(self) -> None:
        self.reads = 0
        self.value = "v1"
        self.gate: asyncio.Event | None = None

    async def setting_layers(self) -> Layers:
        self.reads += 1
        value = self.value
        if self.gate is not None:
            await self.gate.wait()
        return {"general": {"max_attempts": value}}  # type: ignore[dict-item]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_read_once_then_again_only_after_a_change() -> None:
    store, clock = Store(), Clock()
    cache = OverridesCache(store, max_age_s=10, clock=clock)
    assert await cache.setting_layers() == await cache.setting_layers()
    assert store.reads == 1
    store.value = "v2"
    cache.changed("general")
    assert (await cache.setting_layers())["general"] == {"max_attempts": "v2"}  # type: ignore[index]
    assert store.reads == 2


async def test_read_again_once_older_than_max_age() -> None:
    store, clock = Store(), Clock()
    cache = OverridesCache(store, max_age_s=10, clock=clock)
    await cache.setting_layers()
    clock.now = 9.9
    await cache.setting_layers()
    assert store.reads == 1
    clock.now = 10.0
    await cache.setting_layers()
    assert store.reads == 2


async def test_a_read_racing_a_change_is_returned_but_not_kept() -> None:
    store, clock = Store(), Clock()
    cache = OverridesCache(store, max_age_s=10, clock=clock)
    store.gate = asyncio.Event()
    racing = asyncio.create_task(cache.setting_layers())  # reads v1, held in flight
    await asyncio.sleep(0)
    store.value = "v2"
    cache.changed("general")  # announced while the v1 read is in flight
    store.gate.set()
    assert (await racing)["general"] == {"max_attempts": "v1"}  # type: ignore[index]
    assert (await cache.setting_layers())["general"] == {"max_attempts": "v2"}  # type: ignore[index]
    assert store.reads == 2


async def test_a_missed_message_drops_the_cache_too() -> None:
    store, clock = Store(), Clock()
    cache = OverridesCache(store, max_age_s=10, clock=clock)
    await cache.setting_layers()
    cache.changed(None)  # (re)subscribed: something may have been missed
    await cache.setting_layers()
    assert store.reads == 2
