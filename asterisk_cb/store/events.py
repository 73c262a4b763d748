"""The event stream: ONE stream for all callbacks' lifecycle events (a stream per callback would cost
~5 KB each: stream nodes are preallocated), written by the same scripts as the callbacks, read through
consumer groups so that each event is handled once per group across every daemon."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import ResponseError

from asterisk_cb.core.codec import CodecError, event_from_fields, event_to_fields
from asterisk_cb.core.model import Event
from asterisk_cb.redis_conn import LONGEST_BLOCK_S
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

# The stream's start: reading after it reads everything still there.
STREAM_START = "0-0"
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})\Z")
_ID_PART_MAX = 2**64 - 1


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """A stream id ``<ms>-<seq>`` as a sortable pair (ids do not sort as text: ``9-0`` < ``10-0``);
    ``ValueError`` for anything else, a value Redis would refuse included."""
    match = _STREAM_ID.match(entry_id)
    if match is None or int(match[1]) > _ID_PART_MAX or int(match[2]) > _ID_PART_MAX:
        raise ValueError(f"{entry_id!r} is not a stream id <ms>-<seq>")
    return int(match[1]), int(match[2])


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

    async def read_events_after(self, last_id: str, count: int) -> list[StreamEntry]:
        """Up to ``count`` entries after ``last_id`` (exclusive; ``"0"`` or ``"0-0"``: from the start),
        without waiting: a live follower's catching up, from its own position, with no group."""
        reply = await self._redis.xread({self._keys.events: last_id}, count=count)
        return [_stream_entry(entry_id, fields) for _, entries in reply for entry_id, fields in entries]

    async def wait_for_events_after(self, last_id: str, block_ms: int) -> str | None:
        """Block up to ``block_ms`` for an entry after ``last_id``; the newest id then in the stream, or
        None when none came. The block holds a pooled connection and must end before the client's
        socket timeout cuts it (``Timeouts`` keeps that above ``LONGEST_BLOCK_S``): it is capped there;
        0 would block for ever."""
        if not 0 < block_ms <= LONGEST_BLOCK_S * 1000:
            raise ValueError(f"block_ms must be 1-{LONGEST_BLOCK_S * 1000:g}, not {block_ms}")
        reply = await self._redis.xread({self._keys.events: last_id}, count=1, block=block_ms)
        if not reply:
            return None
        newest = await self._redis.xrevrange(self._keys.events, count=1)
        return str(newest[0][0]) if newest else str(reply[0][1][0][0])

    async def event_bounds(self) -> tuple[str | None, str | None]:
        """The ids of the first and the last entry in the stream (None, None when it holds none)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xrange(self._keys.events, count=1)
            pipe.xrevrange(self._keys.events, count=1)
            first, last = await pipe.execute()
        return (str(first[0][0]) if first else None), (str(last[0][0]) if last else None)

    async def events_lost_after(self, last_id: str) -> bool:
        """Whether a reader resuming after ``last_id`` may have lost entries: ``last_id`` is older than
        the first entry left (trimming removed what followed it, as far as the stream can tell), or,
        the stream emptied, older than its last id, or newer than any id the stream ever gave (another
        stream: the namespace was deleted and began again). Reading on would miss events silently."""
        position = stream_id_key(_full_id(last_id))
        if position == (0, 0):
            return False
        try:
            info = await self._redis.xinfo_stream(self._keys.events)
        except ResponseError:  # no such key: nothing of what the reader saw is left
            return True
        first = info.get("first-entry")
        if position > stream_id_key(info["last-generated-id"]):
            return True
        if first:
            return position < stream_id_key(first[0])
        return position < stream_id_key(info["last-generated-id"])

    async def trim_events(self, retention: timedelta) -> int:
        """Drop events older than ``retention`` that every consumer group has read and acknowledged."""
        retention_ms = int(retention.total_seconds() * 1000)
        return int(await self._scripts.run(Script.TRIM, [self._keys.events], [retention_ms]))


def _full_id(entry_id: str) -> str:
    return STREAM_START if entry_id == "0" else entry_id


def _stream_entry(entry_id: str, fields: Mapping[str, str]) -> StreamEntry:
    try:
        return StreamEvent(entry_id, event_from_fields(fields))
    except CodecError as error:
        return UnreadableEntry(entry_id, dict(fields), str(error))
