"""The event consumer stops when cancelled even if its store call swallowed the cancellation, as the
Redis client sometimes does (seen as hanging stops in the lab's consumer tests): a fake store is the
only way to make that happen every time; the normal paths run against the lab in
tests/integration/test_consumer.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from asterisk_cb.consumer import ConsumerOptions, EventConsumer
from asterisk_cb.store import StreamEntry, StreamEvent


class SwallowingSource:
    """An event source whose read swallows the first cancellation and returns nothing."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.swallowed = False

    async def ensure_group(self, group: str, start_id: str = "0") -> None:
        return None

    async def read_group(
        self, group: str, consumer: str, count: int = 100, block_ms: int | None = None
    ) -> Sequence[StreamEntry]:
        self.reading.set()
        if self.swallowed:  # only the first: a test that fails must still be able to stop it
            await asyncio.sleep(60)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.swallowed = True  # what a client that loses the cancellation does
        return []

    async def take_over_stale(
        self, group: str, consumer: str, min_idle_ms: int, count: int = 500
    ) -> Sequence[StreamEntry]:
        return []

    async def ack(self, group: str, entry_ids: Sequence[str]) -> int:
        return 0

    async def park_event(self, group: str, entry: StreamEntry, error: str) -> None:
        return None


async def ignore(events: Sequence[StreamEvent]) -> None:
    return None


async def test_a_cancellation_swallowed_by_the_store_still_stops_the_consumer() -> None:
    source = SwallowingSource()
    consumer = EventConsumer(source, "g", "c", ignore, ConsumerOptions(poll_s=0.01))
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(source.reading.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done == {task}, "the consumer went on after its cancellation"
    assert task.cancelled()
