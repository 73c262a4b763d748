"""Reading the event stream as a live follower does (no consumer group), against the lab's Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import LONGEST_BLOCK_S, RedisClient, Timeouts, connect
from asterisk_cb.store import Store, StreamEvent, UnreadableEntry

pytestmark = pytest.mark.lab

GOOD = {"kind": "created", "at": "1", "v": "1"}


async def add(redis: RedisClient, store: Store, callback_id: str) -> str:
    return str(await redis.xadd(store.keys.events, {"cb": callback_id, **GOOD}))


async def test_reads_after_an_id_exclusively_and_from_the_start(redis: RedisClient, store: Store) -> None:
    assert await store.read_events_after("0", 10) == []  # no stream yet
    ids = [await add(redis, store, f"cb{n}") for n in range(5)]
    assert [entry.entry_id for entry in await store.read_events_after("0", 10)] == ids
    assert [entry.entry_id for entry in await store.read_events_after("0-0", 3)] == ids[:3]
    after = await store.read_events_after(ids[1], 10)
    assert [entry.entry_id for entry in after] == ids[2:]
    assert all(isinstance(entry, StreamEvent) for entry in after)
    assert await store.read_events_after(ids[-1], 10) == []


async def test_an_entry_that_does_not_decode_is_read_as_unreadable(redis: RedisClient, store: Store) -> None:
    broken = str(await redis.xadd(store.keys.events, {"cb": "x", "kind": "no-such-kind"}))
    (entry,) = await store.read_events_after("0", 10)
    assert isinstance(entry, UnreadableEntry)
    assert entry.entry_id == broken


async def test_bounds_are_the_first_and_last_entry(redis: RedisClient, store: Store) -> None:
    assert await store.event_bounds() == (None, None)
    ids = [await add(redis, store, f"cb{n}") for n in range(3)]
    assert await store.event_bounds() == (ids[0], ids[-1])


async def test_a_wait_returns_the_newest_id_once_something_comes(redis: RedisClient, store: Store) -> None:
    first = await add(redis, store, "a")
    waiting = asyncio.create_task(store.wait_for_events_after(first, 1000))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    async with redis.pipeline(transaction=True) as pipe:  # two at once: the wait names the newer
        pipe.xadd(store.keys.events, {"cb": "b", **GOOD})
        pipe.xadd(store.keys.events, {"cb": "c", **GOOD})
        _, newest = await pipe.execute()
    assert await waiting == newest
    assert await store.wait_for_events_after(first, 1000) == newest  # already there: no wait


@pytest.fixture
async def tight_store(lab_redis_url: str) -> AsyncIterator[Store]:
    """A store whose client gives up on a reply after the shortest socket timeout a config allows."""
    client = connect(lab_redis_url, timeouts=Timeouts.from_section({"socket_timeout": "2s"}))
    store = Store(client, Keys("test-follow-" + str(time.monotonic_ns())))
    yield store
    await store.delete_namespace()
    await client.aclose()


async def test_a_wait_with_nothing_coming_ends_before_the_socket_timeout(tight_store: Store) -> None:
    """The longest block allowed runs to its end on a client with the shortest socket timeout, twice
    on one pooled connection: no TimeoutError, no connection cut."""
    for _ in range(2):
        started = time.monotonic()
        assert await tight_store.wait_for_events_after("0-0", round(LONGEST_BLOCK_S * 1000)) is None
        assert LONGEST_BLOCK_S * 0.9 <= time.monotonic() - started < 2.0


@pytest.mark.parametrize("block_ms", [0, -1, round(LONGEST_BLOCK_S * 1000) + 1, 5000])
async def test_a_wait_longer_than_allowed_or_for_ever_is_refused(store: Store, block_ms: int) -> None:
    with pytest.raises(ValueError, match="block_ms"):
        await store.wait_for_events_after("0-0", block_ms)


async def test_lost_events_are_told_after_trimming(redis: RedisClient, store: Store) -> None:
    assert not await store.events_lost_after("0")
    assert await store.events_lost_after("1-0")  # no stream at all: nothing the reader saw is left
    old = [await add(redis, store, f"old{n}") for n in range(2)]
    assert not await store.events_lost_after(old[0])
    assert not await store.events_lost_after(old[1])
    await asyncio.sleep(0.01)
    assert await store.trim_events(timedelta(0)) == 2
    assert await store.events_lost_after(old[0])  # old[1] was gone after it
    assert not await store.events_lost_after(old[1])  # the stream is empty: nothing came after it
    new = await add(redis, store, "new")
    assert await store.events_lost_after(old[0])
    assert await store.events_lost_after(old[1])  # older than the first left: it may have missed some
    assert not await store.events_lost_after(new)
    ms, _ = new.split("-")
    assert await store.events_lost_after(f"{int(ms) + 1000}-0")  # ahead of the stream: another stream
    assert not await store.events_lost_after("0-0")
