"""The run-time setting overrides, as a daemon resolves them at every step of every call: read from
Redis once per change instead of at each look-up (two round trips and a parse of every override).

A change is announced on the settings channel (``Overrides.set_setting``/``reset_setting`` publish
it); ``SettingsFollower`` hears it and drops the cached layers, and drops them too whenever it
(re)subscribes, as messages may have been missed meanwhile. A read that raced a change is returned
but not kept (a generation count tells), so a change is never hidden behind an older read. While
the channel is unheard of for a while (Redis unreachable, a half-open link not yet detected) the
layers are read again once they are ``max_age_s`` old: a change applies within that at worst.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from asterisk_cb.core.settings import Layers

MAX_AGE_S = 10.0


class LayersSource(Protocol):
    async def setting_layers(self) -> Layers: ...


class OverridesCache:
    """``setting_layers()`` as the store answers it, read again only after a change (or ``max_age_s``)."""

    def __init__(
        self, store: LayersSource, max_age_s: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._max_age_s = max_age_s
        self._clock = clock
        self._generation = 0
        self._cached: tuple[float, Layers] | None = None

    async def setting_layers(self) -> Layers:
        cached = self._cached
        if cached is not None and self._clock() - cached[0] < self._max_age_s:
            return cached[1]
        generation, read_at = self._generation, self._clock()
        layers = await self._store.setting_layers()
        if generation == self._generation:  # no change announced while it was read
            self._cached = (read_at, layers)
        return layers

    def changed(self, _scope: str | None = None) -> None:
        """A scope's overrides changed (None: changes may have been missed): read again next time."""
        self._generation += 1
        self._cached = None


class SettingsChanges(Protocol):
    async def follow_settings(self, on_change: Callable[[str | None], None]) -> None: ...


@dataclass(frozen=True)
class SettingsFollower:
    """Keeps ``cache`` current from the settings channel. Auxiliary: while it is down the cache still
    reads again at ``max_age_s``."""

    store: SettingsChanges
    cache: OverridesCache
    name: str = "settings"
    essential: bool = False

    async def run(self) -> None:
        await self.store.follow_settings(self.cache.changed)
