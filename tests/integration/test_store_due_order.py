"""The due orders listings page through (every callback, and each agent's, by due time), on the lab's
Redis: kept by every write, equal to the filtered and sorted whole listing, and built once after an
upgrade from the agent sets of earlier versions."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from test_service import NOW, Clock, Directory, request

from asterisk_cb.core.inputs import Edit
from asterisk_cb.core.model import Callback, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.service import ADMIN, CallbackService, Query
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


@pytest.fixture
def service(store: Store) -> CallbackService:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return Settings()

    return CallbackService(store, Directory(), settings_for, Clock())


async def paged(service: CallbackService, query: Query, limit: int) -> list[Callback]:
    page = await service.list_page(ADMIN, query, limit=limit)
    shown = list(page.callbacks)
    while page.next_cursor is not None:
        page = await service.list_page(ADMIN, query, limit=limit, cursor=page.next_cursor)
        shown += page.callbacks
    return shown


async def test_pages_through_the_due_order_equal_the_filtered_sorted_listing(
    service: CallbackService,
) -> None:
    picks = random.Random(7)
    made = []
    for n in range(240):
        due = NOW + timedelta(minutes=picks.randrange(60, 600), seconds=n % 3)
        agent, queue = picks.choice(["1001", "1002"]), picks.choice([None, "sales"])
        made.append((await service.schedule(ADMIN, request(agent=agent, due_at=due, queue=queue))).callback)
    cancelled = made[::7]
    for callback in cancelled:
        await service.cancel(ADMIN, callback.id)
    pending = [callback for callback in made if callback not in cancelled]
    for callback in pending[1::11]:
        await service.reschedule(ADMIN, callback.id, NOW + timedelta(minutes=picks.randrange(60, 900)))
    for callback in pending[2::13]:
        await service.edit(ADMIN, callback.id, Edit(by="admin", agent="1002"))
    window_from, window_until = NOW + timedelta(hours=3), NOW + timedelta(hours=6)
    for query in (
        Query(),
        Query(agent="1001"),
        Query(agent="1002", queue="sales"),
        Query(state=State.CANCELLED),
        Query(state=State.SCHEDULED, agent="1002"),
        Query(due_from=window_from, due_until=window_until),
        Query(agent="1001", due_from=window_from),
    ):
        whole = await service.list(ADMIN, query)
        for limit in (1, 7, 100):
            assert [c.id for c in await paged(service, query, limit)] == [c.id for c in whole], (query, limit)


async def test_a_moved_or_handed_over_callback_moves_in_the_orders(
    service: CallbackService, store: Store, redis: RedisClient
) -> None:
    callback = (
        await service.schedule(ADMIN, request(agent="1001", due_at=NOW + timedelta(hours=2)))
    ).callback
    later = NOW + timedelta(hours=5)
    await service.reschedule(ADMIN, callback.id, later)
    await service.edit(ADMIN, callback.id, Edit(by="admin", agent="1002"))
    keys = store.keys
    expected = int(later.timestamp() * 1_000_000)
    assert await redis.zscore(keys.due_order, callback.id) == expected
    assert await redis.zscore(keys.agent_due_order("1002"), callback.id) == expected
    assert await redis.zscore(keys.agent_due_order("1001"), callback.id) is None
    assert await store.ids_for_agent("1002") == {callback.id}


async def test_an_upgrade_builds_the_orders_once_and_drops_the_agent_sets(
    service: CallbackService, store: Store, redis: RedisClient
) -> None:
    made = [
        (await service.schedule(ADMIN, request(agent=agent, due_at=NOW + timedelta(hours=hours)))).callback
        for agent, hours in (("1001", 3), ("1002", 2), ("1001", 1))
    ]
    keys = store.keys
    # What an earlier version left: agent sets, no orders, no mark.
    await redis.delete(keys.due_order, keys.agent_due_order("1001"), keys.agent_due_order("1002"))
    legacy = keys.prefix + "ix:agent:1001"
    await redis.sadd(legacy, made[0].id, made[2].id)
    assert not await store.due_order_is_built()
    assert await store.build_due_order(batch=2) == 3
    assert await store.due_order_is_built()
    assert not await redis.exists(legacy)
    assert await store.ids_for_agent("1001") == {made[0].id, made[2].id}
    assert [c.id for c in await paged(service, Query(), 2)] == [made[2].id, made[1].id, made[0].id]
    assert await store.build_due_order() == 3  # idempotent
