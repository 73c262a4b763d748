"""A person's change of a callback whose call rings, through the service, against the lab's real Redis.

The daemon holding the call is played by ``Holder``: it claims the callback, commits its agent ring
through the real store and lifecycle, and deals with requests the way the executor does (the
executor itself, hanging up real rings, is proved end to end in tests/e2e/test_callback_live_changes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from test_service import ADMIN, AGENT_1001, NOW, Clock, Directory, refused, request

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle
from asterisk_cb.core.inputs import Edit
from asterisk_cb.core.model import Outcome, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.service import CallbackService, ChangeOutcome, ErrorCode
from asterisk_cb.store import Claim, Store

pytestmark = pytest.mark.lab

SETTINGS = Settings()
SHORT_WAIT_S = 0.3


class Holder:
    """The daemon holding one callback's ring: ``step`` commits what happened to the call (fenced);
    ``serve`` applies or refuses each change request as it is announced, like the executor."""

    def __init__(self, store: Store, redis: RedisClient, claim: Claim, clock: Clock) -> None:
        self.store, self.redis, self.claim, self.clock = store, redis, claim, clock

    async def step(self, happening: ev.Input) -> None:
        transition = lifecycle.step(self.claim.callback, happening, self.clock(), SETTINGS)
        self.claim = await self.store.commit(self.claim, transition.callback, transition.events)

    async def serve(self, subscribed: asyncio.Event) -> None:
        async with self.redis.pubsub() as pubsub:
            await pubsub.subscribe(self.store.keys.requests_channel)
            subscribed.set()
            async for message in pubsub.listen():
                if message["type"] == "message":
                    await self.take(await self.store.pending_request(message["data"]))

    async def take(self, request: ev.ChangeRequest | None) -> None:
        if request is None:
            return
        try:
            transition = lifecycle.step(self.claim.callback, request.change, self.clock(), SETTINGS)
        except lifecycle.IllegalTransition as refusal:
            self.claim = await self.store.settle(self.claim, request, str(refusal))
            return
        after, events = transition.callback, transition.events
        self.claim = await self.store.commit(self.claim, after, events, applying=request)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store: Store, clock: Clock) -> CallbackService:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return SETTINGS

    return CallbackService(store, Directory(), settings_for, clock)


@pytest.fixture
async def holder(store: Store, redis: RedisClient, service: CallbackService, clock: Clock) -> Holder:
    """A callback of agent 1001, due now, whose agent rings (claimed and committed by the holder)."""
    created = await service.schedule(AGENT_1001, request(due_at=NOW + timedelta(seconds=1)))
    clock.now = created.callback.due_at
    await redis.zadd(store.keys.due, {created.callback.id: 0})  # due on the server's clock
    (claim,) = (await store.claim(1, "daemon-a")).claims
    holder = Holder(store, redis, claim, clock)
    await holder.step(ev.Due(agent_available=True))
    return holder


@pytest.fixture
async def serving(holder: Holder) -> AsyncIterator[Holder]:
    subscribed = asyncio.Event()
    task = asyncio.create_task(holder.serve(subscribed))
    await subscribed.wait()
    yield holder
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_cancel_during_the_ring_is_applied_by_the_holder(
    service: CallbackService, serving: Holder
) -> None:
    change = await service.cancel(ADMIN, serving.claim.callback.id)
    assert change.outcome is ChangeOutcome.APPLIED_BY_HOLDER
    assert (change.callback.state, change.callback.cancelled_by) == (State.CANCELLED, "admin")
    assert change.callback.attempts[-1].outcome is Outcome.CANCELLED
    assert change.callback.missed_agent_rings == 0


async def test_reassign_during_the_ring_is_due_again_for_the_new_agent(
    service: CallbackService, serving: Holder
) -> None:
    change = await service.edit(ADMIN, serving.claim.callback.id, Edit(by="admin", agent="1002"))
    assert change.outcome is ChangeOutcome.APPLIED_BY_HOLDER
    assert (change.callback.state, change.callback.agent) == (State.SCHEDULED, "1002")


async def test_a_contact_answering_before_the_holder_takes_the_request_wins(
    service: CallbackService, store: Store, redis: RedisClient, holder: Holder
) -> None:
    """The request is stored while the contact rings; the holder's next commit is the contact's answer,
    which hands it the request: refused, the call goes on, the requester is told why."""
    callback_id = holder.claim.callback.id
    await holder.step(ev.AgentAnswered())
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(store.keys.requests_channel)
        await pubsub.get_message(timeout=1)  # the subscription's confirmation
        cancelling = asyncio.create_task(service.cancel(ADMIN, callback_id))
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=5) is not None
    await holder.step(ev.ContactAnswered())
    assert holder.claim.request is not None
    await holder.take(holder.claim.request)

    error = await refused(cancelling, ErrorCode.CONFLICT)
    assert "call in progress; it completes at hangup" in error.message
    assert (await service.get(ADMIN, callback_id)).state is State.IN_PROGRESS
    assert await store.pending_request(callback_id) is None


async def test_a_talking_contact_is_refused_at_once(
    service: CallbackService, store: Store, holder: Holder
) -> None:
    await holder.step(ev.AgentAnswered())
    await holder.step(ev.ContactAnswered())
    error = await refused(service.cancel(ADMIN, holder.claim.callback.id, SHORT_WAIT_S), ErrorCode.CONFLICT)
    assert "call in progress; it completes at hangup" in error.message
    assert await store.pending_request(holder.claim.callback.id) is None


async def test_without_a_holder_the_request_stays_pending(
    service: CallbackService, store: Store, holder: Holder
) -> None:
    """The holder is gone: the request is on record for whoever takes the call over."""
    callback_id = holder.claim.callback.id
    change = await service.cancel(ADMIN, callback_id, SHORT_WAIT_S)
    assert change.outcome is ChangeOutcome.PENDING
    assert change.callback.state is State.AGENT_RINGING
    pending = await store.pending_request(callback_id)
    assert pending is not None and pending.change == ev.Cancel("admin")


async def test_two_requests_at_once_give_one_result(service: CallbackService, serving: Holder) -> None:
    callback_id = serving.claim.callback.id
    moved = NOW + timedelta(hours=3)
    results = await asyncio.gather(
        service.cancel(ADMIN, callback_id),
        service.reschedule(ADMIN, callback_id, moved),
        return_exceptions=True,
    )
    applied = [result for result in results if not isinstance(result, BaseException)]
    refusals = [result for result in results if isinstance(result, BaseException)]
    assert applied, results
    assert all(getattr(refusal, "code", None) is ErrorCode.CONFLICT for refusal in refusals), refusals
    # Both applied only one after the other (the first ended the ring, the second found no call and
    # went the direct way): the record is the later one's.
    last = max((change.callback for change in applied), key=lambda callback: callback.version)
    assert await service.get(ADMIN, callback_id) == last
    assert last.state in {State.CANCELLED, State.SCHEDULED}
