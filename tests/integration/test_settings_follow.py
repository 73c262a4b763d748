"""The overrides cache kept current over the lab's Redis: a `settings set` from another client (the
CLI's store) reaches the daemon's cache through the settings channel at once, not at its max age."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from asterisk_cb.settings_cache import OverridesCache, SettingsFollower
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


async def overridden(cache: OverridesCache, value: int) -> None:
    """Wait until the cache gives ``max_attempts = value`` in [general] (the message is on its way)."""
    async with asyncio.timeout(2):
        while True:
            found = (await cache.setting_layers()).get("general", {}).get("max_attempts")
            if found is not None and found.value == value:
                return
            await asyncio.sleep(0.01)


async def test_a_change_made_elsewhere_reaches_the_cache_at_once(store: Store) -> None:
    cache = OverridesCache(store, max_age_s=3600)  # only the channel can make it read again
    following = asyncio.create_task(SettingsFollower(store, cache).run())
    try:
        await store.set_setting("general", "max_attempts", "4")
        await overridden(cache, 4)
        await store.set_setting("general", "max_attempts", "6")
        await overridden(cache, 6)
        await store.reset_setting("general")
        async with asyncio.timeout(2):
            while "general" in await cache.setting_layers():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
