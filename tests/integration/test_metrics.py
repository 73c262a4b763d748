"""Prometheus metrics against the lab Redis: events counted once across daemons, gauges, /metrics."""

from __future__ import annotations

import asyncio
import re
import socket
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from asterisk_cb.core import lifecycle
from asterisk_cb.core.inputs import ContactCalledIn
from asterisk_cb.core.settings import Settings
from asterisk_cb.metrics import GROUP, Metrics, event_counter, serve
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.scheduler import SchedulerStats
from asterisk_cb.store import Store
from asterisk_cb.telephony.health import HealthFlag

pytestmark = pytest.mark.lab


async def create_callbacks(store: Store, count: int, first: int = 0) -> None:
    now = datetime.now(UTC)
    for number in range(first, first + count):
        request = lifecycle.NewCallback(
            contact_number=f"+4930{number:06d}", agent="1001", due_at=now + timedelta(days=1), created_by="t"
        )
        transition = lifecycle.create(request, f"m{number:04d}", now, Settings())
        await store.create(transition.callback, transition.events)


def sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in:\n{text}"
    return float(match.group(1))


def created(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("asterisk_cb_events_total", {"kind": "created"}) or 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def new_metrics(stats: SchedulerStats | None = None) -> Metrics:
    ari = HealthFlag("ari")
    ari.mark_up()
    return Metrics(stats or SchedulerStats(), lambda: (ari.snapshot(), HealthFlag("ami").snapshot()))


async def until(condition: object, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_each_event_is_counted_by_exactly_one_daemon(store: Store) -> None:
    first, second = new_metrics(), new_metrics()
    await store.ensure_group(GROUP, "$")
    tasks = [
        asyncio.create_task(event_counter(store, first, "daemon-a").run()),
        asyncio.create_task(event_counter(store, second, "daemon-b").run()),
    ]
    try:
        await create_callbacks(store, 40)

        def counted() -> float:
            return sum(created(m) for m in (first, second))

        await until(lambda: counted() == 40)
        await asyncio.sleep(0.3)
        assert counted() == 40
    finally:
        for task in tasks:
            task.cancel()


async def test_a_dead_readers_events_are_taken_over(store: Store) -> None:
    await store.ensure_group(GROUP, "$")
    await create_callbacks(store, 5)
    unacked = await store.read_group(GROUP, "dead-daemon", count=100)
    assert len(unacked) == 5
    taken = await store.take_over_stale(GROUP, "live-daemon", min_idle_ms=0)
    assert sorted(entry.entry_id for entry in taken) == sorted(entry.entry_id for entry in unacked)
    assert await store.ack(GROUP, [entry.entry_id for entry in taken]) == 5


async def test_metrics_endpoint_serves_counters_and_gauges(store: Store) -> None:
    stats = SchedulerStats(handed_off=7, resumed=2)
    metrics = new_metrics(stats)
    await store.ensure_group(GROUP, "$")  # the consumer's group exists before the callbacks' events
    counting = asyncio.create_task(event_counter(store, metrics, "daemon-a").run())
    port = free_port()
    runner = await serve(metrics, "127.0.0.1", port)
    try:
        await create_callbacks(store, 3)
        await until(lambda: created(metrics) == 3)
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as reply:
            assert reply.status == 200
            text = await reply.text()
        assert sample(text, 'asterisk_cb_events_total{kind="created"}') == 3
        assert sample(text, 'asterisk_cb_callbacks{state="scheduled"}') >= 0
        assert sample(text, "asterisk_cb_scheduler_handed_off_total") == 7
        assert sample(text, "asterisk_cb_scheduler_resumed_total") == 2
        assert sample(text, 'asterisk_cb_link_up{link="ari"}') == 1
        assert sample(text, 'asterisk_cb_link_up{link="ami"}') == 0
    finally:
        counting.cancel()
        await runner.cleanup()


async def test_drop_group_releases_the_stream(redis: RedisClient, store: Store) -> None:
    await store.ensure_group(GROUP, "$")
    await store.drop_group(GROUP)
    await store.drop_group(GROUP)  # twice is fine
    groups = await redis.xinfo_groups(store.keys.events)
    assert GROUP not in [group["name"] for group in groups]


async def test_an_event_of_unknown_kind_is_parked_and_counting_and_trimming_go_on(
    redis: RedisClient, store: Store
) -> None:
    """A kind this version does not know (a newer daemon sharing the Redis wrote it) must not stop the
    counting daemon's consumer, nor stay pending and hold back the stream's trimming for good."""
    metrics = new_metrics()
    await store.ensure_group(GROUP, "$")
    counting = asyncio.create_task(event_counter(store, metrics, "daemon-a").run())
    try:
        fields = {"cb": "x1", "kind": "from-a-newer-version", "at": "1", "v": "1"}
        unknown = await redis.xadd(store.keys.events, fields)  # type: ignore[arg-type]
        await create_callbacks(store, 2)
        await until(lambda: created(metrics) == 2)
        await until_nothing_pending(store)
        assert not counting.done()
        parked = await redis.xrange(store.keys.dead_letters(GROUP))
        assert [entry["_id"] for _, entry in parked] == [unknown]
        assert "from-a-newer-version" in parked[0][1]["_error"]
        assert await store.trim_events(timedelta(0)) == 3
        assert await redis.xlen(store.keys.events) == 0
        await create_callbacks(store, 1, first=2)
        await until(lambda: created(metrics) == 3)  # still counting
    finally:
        counting.cancel()
        await asyncio.gather(counting, return_exceptions=True)


async def until_nothing_pending(store: Store) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while any(group.pending for group in await store.event_groups()):
        assert asyncio.get_running_loop().time() < deadline, "entries stay pending"
        await asyncio.sleep(0.05)


async def test_finished_callbacks_are_counted_by_reason(store: Store) -> None:
    """A callback the contact's own call settled shows as completed with reason contact_called_in."""
    metrics = new_metrics()
    await store.ensure_group(GROUP, "$")
    counting = asyncio.create_task(event_counter(store, metrics, "daemon-a").run())
    try:
        await create_callbacks(store, 2)
        for callback_id in ("m0000", "m0001"):
            before = await store.get(callback_id)
            assert before is not None
            settled = lifecycle.step(before, ContactCalledIn("1001", 30), datetime.now(UTC), Settings())
            await store.edit(before, settled.callback, settled.events)

        def called_in() -> float:
            labels = {"kind": "completed", "reason": "contact_called_in"}
            return metrics.registry.get_sample_value("asterisk_cb_finished_total", labels) or 0.0

        await until(lambda: called_in() == 2)
    finally:
        counting.cancel()
        await asyncio.gather(counting, return_exceptions=True)
