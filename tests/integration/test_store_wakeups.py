"""An agent turning free brings its waiting callbacks forward (``Claims.wake_waiting``), on the lab's
Redis: only those scheduled to look at the busy agent again, oldest due first, at most the limit, never
a claimed one, never later than they were; the waiting order is kept by every write."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import test_store
from test_store import changed, create, make_callback

from asterisk_cb.core.codec import time_to_ms
from asterisk_cb.core.model import Callback
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _now_is_the_tests_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """test_store's helpers date callbacks from its NOW, which its own autouse fixture resets only
    for its own tests: in a full run, the e2e tests first, the value from collection is long past."""
    monkeypatch.setattr(test_store, "NOW", datetime.now(UTC))


def later() -> datetime:
    """The reschedule delay's look at the agent: a minute after the test's start."""
    return test_store.NOW + timedelta(minutes=1)


async def waiting(store: Store, callback_id: str, due_in: float, **changes: object) -> Callback:
    """A callback that was due ``due_in`` s from the test's start and now waits a minute for its agent."""
    callback = make_callback(callback_id, due_in=due_in, **changes)
    await create(store, callback)
    (claim,) = (await store.claim(1, "daemon-a")).claims
    after = changed(claim.callback, next_at=later(), waiting_for_agent=True)
    await store.commit(claim, after, [])
    return after


async def due_score(store: Store, callback_id: str) -> float | None:
    return await store._redis.zscore(store._keys.due, callback_id)


async def test_only_the_agent_s_waiting_callbacks_move_to_their_due_time_oldest_first(store: Store) -> None:
    older = await waiting(store, "cb-old", due_in=-30)
    newer = await waiting(store, "cb-new", due_in=-10)
    other_agent = await waiting(store, "cb-1002", due_in=-20, agent="1002")
    retry = make_callback("cb-retry", due_in=-40)  # scheduled later for another reason: stays
    await create(store, retry)
    (claim,) = (await store.claim(1, "daemon-a")).claims
    await store.commit(claim, changed(claim.callback, next_at=later()), [])

    assert await store.wake_waiting("1001") == 2
    assert await due_score(store, older.id) == time_to_ms(older.due_at)
    assert await due_score(store, newer.id) == time_to_ms(newer.due_at)
    assert await due_score(store, other_agent.id) == time_to_ms(later())
    assert await due_score(store, retry.id) == time_to_ms(later())
    claimed = (await store.claim(10, "daemon-b")).claims
    assert [claim.callback.id for claim in claimed] == [older.id, newer.id]  # oldest due first
    assert await store.wake_waiting("1001") == 0  # claimed: not in the due set, nothing to move


async def test_a_wake_up_moves_at_most_the_limit_and_is_idempotent(store: Store) -> None:
    for n in range(5):
        await waiting(store, f"cb-{n}", due_in=-50 + n)
    assert await store.wake_waiting("1001", limit=3) == 3
    assert await store.wake_waiting("1001", limit=3) == 0  # the same three: already due
    moved = [await due_score(store, f"cb-{n}") for n in range(5)]
    assert moved[3:] == [time_to_ms(later())] * 2


async def test_a_callback_whose_due_time_is_ahead_is_moved_to_now_not_to_its_due_time(store: Store) -> None:
    ahead = make_callback("cb-ahead", due_in=30, next_at=later(), waiting_for_agent=True)
    await create(store, ahead)
    before = time.time() * 1000
    assert await store.wake_waiting("1001") == 1
    score = await due_score(store, ahead.id)
    assert score is not None and before - 1000 <= score <= time.time() * 1000 + 1000  # the server's now
    assert score < time_to_ms(ahead.due_at)


async def test_the_waiting_order_follows_every_write(store: Store) -> None:
    callback = await waiting(store, "cb-w", due_in=-5)
    key = store._keys.agent_waiting("1001")
    assert await store._redis.zrange(key, 0, -1) == [callback.id]
    assert await store.wake_waiting("1001") == 1
    (claim,) = (await store.claim(1, "daemon-a")).claims
    await store.commit(claim, changed(claim.callback, next_at=later(), waiting_for_agent=False), [])
    assert await store._redis.zrange(key, 0, -1) == []


async def test_callbacks_not_in_the_due_set_are_passed_over_not_counted(store: Store) -> None:
    claimed = await waiting(store, "cb-a", due_in=-60)
    for n in range(4):
        await waiting(store, f"cb-{n}", due_in=-50 + n)
    assert await store.wake_waiting("1001", limit=1) == 1  # the oldest
    (taken,) = (await store.claim(1, "daemon-b")).claims  # claimed: no longer in the due set
    assert taken.callback.id == claimed.id
    assert await store.wake_waiting("1001", limit=2) == 2  # passes over the claimed one
    assert await due_score(store, "cb-2") == time_to_ms(later())
