"""The event-stream consumer against the lab Redis (own namespace): takeover, NOGROUP, bad entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from test_metrics import create_callbacks

from asterisk_cb.consumer import ConsumerOptions, EventConsumer, HandlerUnavailable
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.store import Store, StreamEntry, StreamEvent

pytestmark = pytest.mark.lab

GROUP = "test-writer"
FAST = ConsumerOptions(poll_s=0.05, stale_ms=0, retry_s=0.05)


@dataclass
class Recorder:
    """A handler keeping what it was given; fails on callbacks named in ``poison``."""

    poison: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)

    async def __call__(self, events: Sequence[StreamEvent]) -> None:
        if any(event.event.callback_id in self.poison for event in events):
            raise ValueError("cannot write this one")
        self.seen += [event.event.callback_id for event in events]


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def consuming(consumer: EventConsumer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(consumer.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled(), "the consumer loop died"


async def pending(store: Store) -> int:
    (group,) = [group for group in await store.event_groups() if group.name == GROUP]
    return group.pending


async def test_a_dead_consumers_entries_are_taken_over_and_acknowledged(store: Store) -> None:
    await store.ensure_group(GROUP, "$")
    await create_callbacks(store, 4)
    assert len(await store.read_group(GROUP, "dead-daemon", count=100)) == 4  # read, never acknowledged
    handler = Recorder()
    async with consuming(EventConsumer(store, GROUP, "live-daemon", handler, FAST)):
        await until(lambda: len(handler.seen) == 4)
        await until_pending(store, 0)
    assert sorted(handler.seen) == [f"m{n:04d}" for n in range(4)]


async def until_pending(store: Store, count: int) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while await pending(store) != count:
        assert asyncio.get_running_loop().time() < deadline, "pending entries stay"
        await asyncio.sleep(0.05)


async def test_a_group_destroyed_under_the_consumer_is_recreated(redis: RedisClient, store: Store) -> None:
    handler = Recorder()
    async with consuming(EventConsumer(store, GROUP, "daemon-a", handler, FAST)) as task:
        await until_group(store, present=True)
        await create_callbacks(store, 2)
        await until(lambda: len(handler.seen) == 2)
        await store.drop_group(GROUP)  # an admin's `events drop-group` while a daemon still reads it
        await until_group(store, present=True)
        await redis.xadd(store.keys.events, {"cb": "later", "kind": "created", "at": "1", "v": "1"})
        await until(lambda: "later" in handler.seen)
        assert not task.done()


async def until_group(store: Store, present: bool) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while (GROUP in [group.name for group in await store.event_groups()]) is not present:
        assert asyncio.get_running_loop().time() < deadline, "group not (re)created"
        await asyncio.sleep(0.05)


async def test_bad_entries_are_parked_and_the_loop_goes_on(redis: RedisClient, store: Store) -> None:
    await store.ensure_group(GROUP, "$")
    good = {"kind": "created", "at": "1", "v": "1"}
    await redis.xadd(store.keys.events, {"cb": "before", **good})
    undecodable = await redis.xadd(store.keys.events, {"cb": "broken", "kind": "no-such-kind"})
    unhandled = await redis.xadd(store.keys.events, {"cb": "poison", **good})
    await redis.xadd(store.keys.events, {"cb": "after", **good})
    handler = Recorder(poison={"poison"})
    async with consuming(EventConsumer(store, GROUP, "daemon-a", handler, FAST)):
        await until(lambda: len(handler.seen) == 2)
        await until_pending(store, 0)
    assert handler.seen == ["before", "after"]
    parked = await redis.xrange(store.keys.dead_letters(GROUP))
    assert [fields["_id"] for _, fields in parked] == [undecodable, unhandled]
    assert "no-such-kind" in parked[0][1]["_error"]
    assert parked[1][1]["_error"] == "ValueError: cannot write this one"
    assert parked[1][1]["cb"] == "poison"


@dataclass
class Flaky:
    """The store, whose reads fail ``failures`` times first (Redis away for a moment)."""

    store: Store
    failures: int
    calls: int = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def read_group(
        self, group: str, consumer: str, count: int = 100, block_ms: int | None = None
    ) -> list[StreamEntry]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RedisConnectionError("Redis away")
        return await self.store.read_group(group, consumer, count, block_ms)


async def test_redis_errors_are_retried_after_a_pause(store: Store) -> None:
    await store.ensure_group(GROUP, "$")
    await create_callbacks(store, 3)
    flaky = Flaky(store, failures=3)
    handler = Recorder()
    async with consuming(EventConsumer(flaky, GROUP, "daemon-a", handler, FAST)):  # type: ignore[arg-type]
        await until(lambda: len(handler.seen) == 3)
    assert flaky.calls > 3


@dataclass
class DatabaseDown(Recorder):
    """A handler whose database refuses the first ``outages`` deliveries."""

    outages: int = 3
    tries: int = 0

    async def __call__(self, events: Sequence[StreamEvent]) -> None:
        self.tries += 1
        if self.tries <= self.outages:
            raise HandlerUnavailable("database unreachable")
        await super().__call__(events)


async def test_a_handler_whose_backend_is_down_gets_the_same_entries_again_and_nothing_is_parked(
    redis: RedisClient, store: Store
) -> None:
    await store.ensure_group(GROUP, "$")
    await create_callbacks(store, 3)
    handler = DatabaseDown()
    async with consuming(EventConsumer(store, GROUP, "daemon-a", handler, FAST)):
        await until(lambda: len(handler.seen) == 3)
        await until_pending(store, 0)
    assert sorted(handler.seen) == ["m0000", "m0001", "m0002"]  # each once: the same batch, retried
    assert handler.tries == 4
    assert await redis.xrange(store.keys.dead_letters(GROUP)) == []
