"""One reader of the callbacks' event stream for work done once per event across all daemons.

Each job (metrics today, the CEL writer next) is a handler on its own consumer group, so one job's
backlog or bug never touches another's. Every daemon runs a consumer of the group under its own
name: Redis hands each entry to one of them. The loop owns the chores every such reader needs: take
over entries a dead daemon read but never acknowledged, acknowledge what was handled, pause and retry
when Redis fails, recreate the group when someone removed it (``asterisk-cb events drop-group``), and
park an entry that cannot be decoded or handled (``Keys.dead_letters``) instead of stopping on it,
and retry without parking while a handler says its own backend is down (``HandlerUnavailable``).
A consumer is an auxiliary daemon component (``asterisk_cb.components``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.exceptions import RedisError, ResponseError

from asterisk_cb.store import StreamEntry, StreamEvent, UnreadableEntry

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[StreamEvent]], Awaitable[None]]


class HandlerUnavailable(Exception):
    """Raised by a handler whose own backend is down (the CEL writer's database): the entries are
    fine, so they are retried after a pause until it takes them, never parked as bad ones."""


class EventSource(Protocol):
    """What a consumer needs of the store: its group's reads, acknowledgements and dead letters."""

    async def ensure_group(self, group: str, start_id: str = "0") -> None: ...

    async def read_group(
        self, group: str, consumer: str, count: int = 100, block_ms: int | None = None
    ) -> Sequence[StreamEntry]: ...

    async def take_over_stale(
        self, group: str, consumer: str, min_idle_ms: int, count: int = 500
    ) -> Sequence[StreamEntry]: ...

    async def ack(self, group: str, entry_ids: Sequence[str]) -> int: ...

    async def park_event(self, group: str, entry: StreamEntry, error: str) -> None: ...


@dataclass(frozen=True)
class ConsumerOptions:
    """``start_id``: where a new (or recreated) group starts; "$" = only events from now on, so a
    recreated group never handles the stream's retained history twice. Reads poll every ``poll_s``
    rather than block in Redis: Redis 7.0 can keep a blocked XREADGROUP waiting past its BLOCK time
    once its group was destroyed and recreated, and a blocked read then holds up the daemon's stop."""

    start_id: str = "$"
    batch: int = 500
    poll_s: float = 1.0
    stale_ms: int = 60_000  # an entry read this long ago and not acknowledged: its reader is gone
    retry_s: float = 2.0


class EventConsumer:
    """Reads ``group`` as ``consumer`` and hands batches to ``handler`` until cancelled."""

    essential = False  # a side job: its failure must never stop the callbacks

    def __init__(
        self,
        source: EventSource,
        group: str,
        consumer: str,
        handler: Handler,
        options: ConsumerOptions | None = None,
    ) -> None:
        self.name = f"events:{group}"
        self.group = group
        self.consumer = consumer
        self._source = source
        self._handler = handler
        self._options = options or ConsumerOptions()
        self._grouped = False

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except RedisError as error:
                await self._recover(error)
            self._stop_if_cancelled()

    async def step(self) -> None:
        """One round: make sure the group exists, take over stale entries, read new ones, handle."""
        options = self._options
        if not self._grouped:
            await self._source.ensure_group(self.group, options.start_id)
            self._grouped = True
        stale = await self._source.take_over_stale(self.group, self.consumer, options.stale_ms)
        fresh = await self._source.read_group(self.group, self.consumer, options.batch)
        entries = [*stale, *fresh]
        if entries:
            await self._handle(entries)
            await self._source.ack(self.group, [entry.entry_id for entry in entries])
        if len(fresh) < options.batch:  # caught up: look again in a moment
            await asyncio.sleep(options.poll_s)

    def _stop_if_cancelled(self) -> None:
        """Stop once this task was asked to, even if the cancellation never reached here: the Redis client
        can swallow one that hits its command (the command then returns or fails with a RedisError), and
        a loop going on would keep its daemon's stop waiting forever (seen in the lab tests)."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            log.warning("cancelled inside a Redis command; stopping", extra={"group": self.group})
            raise asyncio.CancelledError

    async def _recover(self, error: RedisError) -> None:
        if isinstance(error, ResponseError) and str(error).startswith("NOGROUP"):
            log.warning("consumer group gone, recreating it", extra={"group": self.group})
            self._grouped = False
            return
        log.warning("event stream unreadable, retrying", extra={"group": self.group, "error": str(error)})
        await asyncio.sleep(self._options.retry_s)

    async def _handle(self, entries: Sequence[StreamEntry]) -> None:
        """The whole batch at once; if the handler fails on it, one by one, parking what fails alone."""
        events = [entry for entry in entries if isinstance(entry, StreamEvent)]
        for entry in entries:
            if isinstance(entry, UnreadableEntry):
                await self._park(entry, entry.error)
        if not events:
            return
        try:
            await self._until_available(events)
        except Exception:
            log.exception("handler failed on a batch, retrying entry by entry", extra={"group": self.group})
            for event in events:
                await self._handle_one(event)

    async def _handle_one(self, event: StreamEvent) -> None:
        try:
            await self._until_available([event])
        except Exception as error:
            log.exception("handler failed on an entry", extra={"group": self.group, "entry": event.entry_id})
            await self._park(event, f"{type(error).__name__}: {error}")

    async def _until_available(self, events: Sequence[StreamEvent]) -> None:
        """Hand ``events`` over, pausing and trying again while the handler says its backend is down."""
        while True:
            try:
                return await self._handler(events)
            except HandlerUnavailable as error:
                log.warning("handler unavailable, retrying", extra={"group": self.group, "error": str(error)})
                await asyncio.sleep(self._options.retry_s)

    async def _park(self, entry: StreamEntry, error: str) -> None:
        log.error("event entry parked", extra={"group": self.group, "entry": entry.entry_id, "error": error})
        await self._source.park_event(self.group, entry, error)
