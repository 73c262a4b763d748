"""The event stream: ONE stream for all callbacks' lifecycle events (a stream per callback would cost
~5 KB each: stream nodes are preallocated), written by the same scripts as the callbacks, read through
consumer groups so that each event is handled once per group across every daemon."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import ResponseError

from asterisk_cb.core.codec import event_from_fields
from asterisk_cb.core.model import Event
from asterisk_cb.store.base import StorePart
from asterisk_cb.store.scripts import Script


@dataclass(frozen=True)
class StreamEvent:
    """An event read from the stream through a consumer group; ack ``entry_id`` once handled."""

    entry_id: str
    event: Event


class EventLog(StorePart):
    """Consumer groups on the event stream: create, read, take over, ack, drop; and trimming."""

    async def ensure_group(self, group: str, start_id: str = "0") -> None:
        """Create a consumer group (and the stream) unless it exists; ``start_id="$"`` skips history."""
        try:
            await self._redis.xgroup_create(self._keys.events, group, id=start_id, mkstream=True)
        except ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise

    async def read_group(
        self, group: str, consumer: str, count: int = 100, block_ms: int | None = None
    ) -> list[StreamEvent]:
        """New events for ``consumer``; ``block_ms`` waits for some when there are none."""
        reply = await self._redis.xreadgroup(
            group, consumer, {self._keys.events: ">"}, count=count, block=block_ms
        )
        return [
            StreamEvent(entry_id, event_from_fields(fields))
            for _, entries in reply
            for entry_id, fields in entries
        ]

    async def take_over_stale(
        self, group: str, consumer: str, min_idle_ms: int, count: int = 500
    ) -> list[StreamEvent]:
        """Entries another consumer of ``group`` read but never acknowledged for ``min_idle_ms`` (it died):
        they become ``consumer``'s, so a dead reader never holds back trimming or loses an event."""
        _, entries, _ = await self._redis.xautoclaim(
            self._keys.events, group, consumer, min_idle_ms, start_id="0-0", count=count
        )
        return [StreamEvent(entry_id, event_from_fields(fields)) for entry_id, fields in entries if fields]

    async def drop_group(self, group: str) -> None:
        """Remove a consumer group that nobody will read any more (no error if there is none)."""
        if await self._redis.exists(self._keys.events):
            with contextlib.suppress(ResponseError):
                await self._redis.xgroup_destroy(self._keys.events, group)

    async def ack(self, group: str, entry_ids: Sequence[str]) -> int:
        return int(await self._redis.xack(self._keys.events, group, *entry_ids)) if entry_ids else 0

    async def trim_events(self, retention: timedelta) -> int:
        """Drop events older than ``retention`` that every consumer group has read and acknowledged."""
        retention_ms = int(retention.total_seconds() * 1000)
        return int(await self._scripts.run(Script.TRIM, [self._keys.events], [retention_ms]))
