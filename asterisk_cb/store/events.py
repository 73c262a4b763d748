"""The event stream: ONE stream for all callbacks' lifecycle events (a stream per callback would cost
~5 KB each: stream nodes are preallocated), written by the same scripts as the callbacks, read through
consumer groups so that each event is handled once per group across every daemon."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import ResponseError

from asterisk_cb.core.codec import CodecError, event_from_fields, event_to_fields
from asterisk_cb.core.model import Event
from asterisk_cb.store.base import StorePart
from asterisk_cb.store.scripts import Script


@dataclass(frozen=True)
class StreamEvent:
    """An event read from the stream through a consumer group; ack ``entry_id`` once handled."""

    entry_id: str
    event: Event


@dataclass(frozen=True)
class UnreadableEntry:
    """A stream entry that does not decode (``error`` says why): its reader parks it and goes on."""

    entry_id: str
    fields: dict[str, str]
    error: str


StreamEntry = StreamEvent | UnreadableEntry


@dataclass(frozen=True)
class GroupInfo:
    """One consumer group of the event stream, as ``XINFO GROUPS`` tells it. ``lag``: entries not yet
    delivered to the group (None when Redis cannot tell: before 7.0, or after some deletions)."""

    name: str
    consumers: int
    pending: int
    last_delivered: str
    lag: int | None

    @property
    def lag_text(self) -> str:
        """The lag as people read it: "?" when Redis cannot tell."""
        return "?" if self.lag is None else str(self.lag)


# A group's dead letters beyond this many (approximately) are dropped, oldest first.
DEAD_LETTERS_KEPT = 10_000


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
    ) -> list[StreamEntry]:
        """New events for ``consumer``; ``block_ms`` waits for some when there are none."""
        reply = await self._redis.xreadgroup(
            group, consumer, {self._keys.events: ">"}, count=count, block=block_ms
        )
        return [_stream_entry(entry_id, fields) for _, entries in reply for entry_id, fields in entries]

    async def take_over_stale(
        self, group: str, consumer: str, min_idle_ms: int, count: int = 500
    ) -> list[StreamEntry]:
        """Entries another consumer of ``group`` read but never acknowledged for ``min_idle_ms`` (it died):
        they become ``consumer``'s, so a dead reader never holds back trimming or loses an event."""
        _, entries, _ = await self._redis.xautoclaim(
            self._keys.events, group, consumer, min_idle_ms, start_id="0-0", count=count
        )
        return [_stream_entry(entry_id, fields) for entry_id, fields in entries if fields]

    async def park_event(self, group: str, entry: StreamEntry, error: str) -> None:
        """Copy an entry ``group`` could not decode or handle to the group's dead letters, with the
        reason: the caller then acknowledges it, so one bad entry never stops a reader."""
        fields = entry.fields if isinstance(entry, UnreadableEntry) else event_to_fields(entry.event)
        parked = {**fields, "_id": entry.entry_id, "_error": error}
        await self._redis.xadd(
            self._keys.dead_letters(group), parked, maxlen=DEAD_LETTERS_KEPT, approximate=True
        )

    async def event_groups(self) -> list[GroupInfo]:
        """Every consumer group of the event stream (none when there is no stream yet)."""
        if not await self._redis.exists(self._keys.events):
            return []
        return [
            GroupInfo(
                name=group["name"],
                consumers=int(group["consumers"]),
                pending=int(group["pending"]),
                last_delivered=group["last-delivered-id"],
                lag=None if group.get("lag") is None else int(group["lag"]),
            )
            for group in await self._redis.xinfo_groups(self._keys.events)
        ]

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


def _stream_entry(entry_id: str, fields: Mapping[str, str]) -> StreamEntry:
    try:
        return StreamEvent(entry_id, event_from_fields(fields))
    except CodecError as error:
        return UnreadableEntry(entry_id, dict(fields), str(error))
