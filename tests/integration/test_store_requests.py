"""A person's change of a live callback as a request to its holder, against the lab's real Redis.

What the store promises: the request is on record (a crash loses nothing) and announced; every holder
commit hands it over; the holder keeps the callback until it applied or refused it, even when its call
ended meanwhile; a taken-over claim carries it; one request at a time; the requester gets the outcome.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from test_store import NOW, changed, create, event, following, make_callback, ringing

from asterisk_cb.core.codec import time_to_ms
from asterisk_cb.core.inputs import Cancel, ChangeRequest, Reschedule
from asterisk_cb.core.model import EventKind, State
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.store import (
    CallbackNotLive,
    ChangePending,
    Claim,
    RequestOutcome,
    StaleToken,
    Store,
)

pytestmark = pytest.mark.lab

CANCEL = ChangeRequest("r1", Cancel("supervisor"))


async def live_claim(store: Store, callback_id: str = "c1", lease_ms: int = 30_000) -> Claim:
    """A callback claimed by daemon-a whose agent ring is recorded (live)."""
    await create(store, make_callback(callback_id))
    (claim,) = (await store.claim(1, "daemon-a", lease_ms)).claims
    return await store.commit(claim, ringing(claim.callback), [])


async def test_a_request_needs_a_live_call(store: Store) -> None:
    await create(store, make_callback("c1"))
    with pytest.raises(CallbackNotLive):
        await store.request_change("c1", CANCEL)
    assert await store.pending_request("c1") is None


async def test_request_is_recorded_and_announced(redis: RedisClient, store: Store) -> None:
    claim = await live_claim(store)
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(store.keys.requests_channel)
        await pubsub.get_message(timeout=1)  # the subscription's confirmation
        await store.request_change("c1", CANCEL)
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    assert message is not None and message["data"] == "c1"
    assert await store.pending_request("c1") == CANCEL
    assert claim.request is None


async def test_follow_requests_hears_each_request_by_its_callback(store: Store) -> None:
    await live_claim(store)
    async with following(store.follow_requests) as heard:
        await store.request_change("c1", CANCEL)
        assert await asyncio.wait_for(heard.get(), 5) == "c1"


async def test_one_request_at_a_time_and_no_direct_edit_meanwhile(store: Store) -> None:
    claim = await live_claim(store)
    await store.request_change("c1", CANCEL)
    with pytest.raises(ChangePending) as second:
        await store.request_change("c1", ChangeRequest("r2", Cancel("agent")))
    assert second.value.pending == CANCEL
    with pytest.raises(ChangePending):
        await store.edit(claim.callback, changed(claim.callback, note="x"), [])


async def test_holder_applies_it_and_the_requester_gets_the_outcome(redis: RedisClient, store: Store) -> None:
    claim = await live_claim(store)
    await store.request_change("c1", CANCEL)
    cancelled = changed(claim.callback, state=State.CANCELLED, cancelled_by="supervisor")
    after = await store.commit(claim, cancelled, [event(cancelled, EventKind.CANCELLED)], applying=CANCEL)

    assert after.request is None
    assert await store.pending_request("c1") is None
    assert await store.await_outcome("r1", 1) == RequestOutcome(True, "applied", cancelled.version)
    assert await redis.zscore(store.keys.leases, "c1") is None  # finished: let go


async def test_every_commit_hands_the_pending_request_over(store: Store) -> None:
    claim = await live_claim(store)
    await store.request_change("c1", CANCEL)
    still_live = await store.commit(claim, changed(claim.callback), [])
    assert still_live.request == CANCEL
    assert await store.pending_request("c1") == CANCEL  # not consumed by a commit that does not apply it


async def test_holder_keeps_a_callback_whose_call_ended_while_a_request_waits(
    redis: RedisClient, store: Store
) -> None:
    """The ring ended (a missed ring) just as the request came: the callback is scheduled again but
    stays with the holder, out of the due set, until the request is dealt with."""
    claim = await live_claim(store)
    await store.request_change("c1", CANCEL)
    retry_at = NOW + timedelta(minutes=1)
    missed = await store.commit(claim, changed(claim.callback, state=State.SCHEDULED, next_at=retry_at), [])

    assert missed.request == CANCEL
    assert await redis.zscore(store.keys.due, "c1") is None
    assert await redis.zscore(store.keys.leases, "c1") is not None
    with pytest.raises(ChangePending):  # the first one is still to be dealt with
        await store.request_change("c1", ChangeRequest("r2", Cancel("agent")))


async def test_a_refused_request_leaves_the_callback_and_lets_a_kept_one_go(
    redis: RedisClient, store: Store
) -> None:
    claim = await live_claim(store)
    await store.request_change("c1", CANCEL)
    retry_at = NOW + timedelta(minutes=1)
    kept = await store.commit(claim, changed(claim.callback, state=State.SCHEDULED, next_at=retry_at), [])
    settled = await store.settle(kept, CANCEL, "the contact answered")

    assert settled.request is None
    refused = RequestOutcome(False, "the contact answered", kept.callback.version)
    assert await store.await_outcome("r1", 1) == refused
    assert await redis.zscore(store.keys.due, "c1") == time_to_ms(retry_at)
    assert await redis.zscore(store.keys.leases, "c1") is None
    assert (await store.get("c1")) == kept.callback


async def test_refused_while_live_the_holder_keeps_its_call(redis: RedisClient, store: Store) -> None:
    claim = await live_claim(store)
    await store.request_change("c1", CANCEL)
    await store.settle(claim, CANCEL, "call in progress")
    assert await redis.zscore(store.keys.leases, "c1") is not None
    assert await store.pending_request("c1") is None


async def test_a_takeover_claim_carries_the_request(store: Store) -> None:
    """The holder died between the request and its application: whoever resumes gets it."""
    await live_claim(store, lease_ms=200)
    moved = ChangeRequest("r1", Reschedule(NOW + timedelta(hours=2), "supervisor"))
    await store.request_change("c1", moved)
    await asyncio.sleep(0.3)
    (resumed,) = (await store.claim(1, "daemon-b")).claims
    assert (resumed.resume, resumed.request) == (True, moved)


async def test_a_takeover_of_a_kept_callback_carries_it_even_while_paused(store: Store) -> None:
    await create(store, make_callback("c1"))
    (claim,) = (await store.claim(1, "daemon-a", 200)).claims
    live = await store.commit(claim, ringing(claim.callback), [])
    await store.request_change("c1", CANCEL)
    retry_at = NOW + timedelta(minutes=1)
    await store.commit(live, changed(live.callback, state=State.SCHEDULED, next_at=retry_at), [])
    await store.set_paused(True)
    await asyncio.sleep(0.3)
    (taken,) = (await store.claim(1, "daemon-b")).claims
    assert (taken.resume, taken.request) == (False, CANCEL)


async def test_a_late_holder_cannot_settle(store: Store) -> None:
    claim = await live_claim(store, lease_ms=200)
    await store.request_change("c1", CANCEL)
    await asyncio.sleep(0.3)
    await store.claim(1, "daemon-b")
    with pytest.raises(StaleToken):
        await store.settle(claim, CANCEL, "too late")
    assert await store.pending_request("c1") == CANCEL


async def test_no_outcome_yet(store: Store) -> None:
    assert await store.await_outcome("nobody", 0.1) is None
