"""Runtime setting overrides: a hash per scope, shared by every daemon, announced on a channel when
they change so that each daemon re-resolves its settings without a restart."""

from __future__ import annotations

import logging
from collections.abc import Callable

from asterisk_cb.core.settings import Layers, RuntimeOverrides, is_settings_scope, runtime_layers
from asterisk_cb.redis_conn import follow_channel
from asterisk_cb.store.base import StorePart

log = logging.getLogger(__name__)
# Each unparsable override is logged once per process (it is read at every settings lookup); `asterisk-cb
# doctor` lists them all, every time.
_logged: set[str] = set()


class Overrides(StorePart):
    """Read, set and reset the overrides of every scope ("general", "queue/<name>", "agent/<id>")."""

    async def setting_overrides(self) -> dict[str, dict[str, str]]:
        """Every scope's overrides: {"general" | "queue/<name>" | "agent/<id>": {option: value}}."""
        scopes = sorted(await self._redis.smembers(self._keys.settings_scopes))
        async with self._redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                pipe.hgetall(self._keys.settings(scope))
            values = await pipe.execute()
        return {scope: options for scope, options in zip(scopes, values, strict=True) if options}

    async def runtime_overrides(self) -> RuntimeOverrides:
        """The overrides parsed and validated like the file's values, and those that do not parse."""
        return runtime_layers(await self.setting_overrides())

    async def setting_layers(self) -> Layers:
        """The overrides that parse, ready for ``settings.resolve``; the others are left out, logged."""
        overrides = await self.runtime_overrides()
        for error in overrides.refused:
            if str(error) not in _logged:
                _logged.add(str(error))
                log.error("run-time setting override ignored", extra={"error": str(error)})
        return overrides.layers

    async def set_setting(self, scope: str, option: str, value: str) -> None:
        """Override ``option`` in ``scope`` until reset (the caller validates the value)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.settings(_checked_scope(scope)), option, value)
            pipe.sadd(self._keys.settings_scopes, scope)
            await pipe.execute()
        await self._redis.publish(self._keys.settings_channel, scope)

    async def reset_setting(self, scope: str, option: str | None = None) -> None:
        """Drop one override of ``scope``, or all of them when ``option`` is None."""
        key = self._keys.settings(_checked_scope(scope))
        await (self._redis.delete(key) if option is None else self._redis.hdel(key, option))
        await self._redis.publish(self._keys.settings_channel, scope)

    async def follow_settings(
        self, on_change: Callable[[str | None], None], retry_delay_s: float = 1.0
    ) -> None:
        """Call ``on_change(scope)`` for every change announced, and ``on_change(None)`` when some may
        have been missed (start, reconnect). Runs until cancelled."""
        await follow_channel(self._redis, self._keys.settings_channel, on_change, retry_delay_s)


def _checked_scope(scope: str) -> str:
    if is_settings_scope(scope):
        return scope
    raise ValueError(f"settings scope must be 'general', 'queue/<name>' or 'agent/<id>', not {scope!r}")
