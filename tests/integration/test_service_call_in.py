"""The contact calls in first: the service's lookup of a caller's pending callbacks and their settlement,
against the lab's real Redis (a random namespace, numbers keyed under the German plan)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from test_service import AGENT_1001, NOW, Clock, Directory, refused, request

from asterisk_cb.core import lifecycle
from asterisk_cb.core.inputs import Due
from asterisk_cb.core.model import EventKind, FinishReason, State
from asterisk_cb.core.numbers import NumberPlan
from asterisk_cb.core.settings import CallInAgent, OnCallIn, Settings
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.service import ADMIN, CallbackService, ErrorCode
from asterisk_cb.store import LeaseLost, Store, StreamEvent

pytestmark = pytest.mark.lab

NUMBER = "+4930123456"
FORMS = ("+4930123456", "004930123456", "030123456", "+49 30 123456")


@pytest.fixture
async def store(redis: RedisClient) -> AsyncIterator[Store]:
    store = Store(redis, Keys("test-" + uuid.uuid4().hex[:12], NumberPlan("49")))
    yield store
    await store.delete_namespace()


@pytest.fixture
def settings() -> dict[str, Settings]:
    """The settings each agent's callbacks resolve to (no queue); tests replace entries."""
    return {"default": Settings()}


@pytest.fixture
def service(store: Store, settings: dict[str, Settings]) -> CallbackService:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return settings.get(str(agent), settings["default"])

    return CallbackService(store, Directory(), settings_for, Clock())


async def schedule(service: CallbackService, number: str, agent: str = "1001", hours: int = 2) -> str:
    due = NOW + timedelta(hours=hours)
    created = await service.schedule(ADMIN, request(contact_number=number, agent=agent, due_at=due))
    return created.callback.id


async def test_a_number_is_found_in_any_form_soonest_due_first(service: CallbackService) -> None:
    later = await schedule(service, "+4930123456", hours=3)
    sooner = await schedule(service, "030123456", agent="1002", hours=1)
    await schedule(service, "+4930999")
    for form in FORMS:
        found = await service.pending_for_number(ADMIN, form)
        assert [callback.id for callback in found.pending] == [sooner, later], form
        assert found.first is not None and found.first.agent == "1002"


async def test_only_pending_callbacks_are_listed(service: CallbackService) -> None:
    kept = await schedule(service, NUMBER)
    cancelled = await schedule(service, NUMBER, hours=1)
    await service.cancel(ADMIN, cancelled)
    assert [callback.id for callback in (await service.pending_for_number(ADMIN, NUMBER)).pending] == [kept]


@pytest.mark.parametrize("number", ["+4930555", "anonymous", "", "+49&Local/1"])
async def test_an_unknown_or_unusable_number_is_simply_unknown(service: CallbackService, number: str) -> None:
    await schedule(service, NUMBER)
    found = await service.pending_for_number(ADMIN, number)
    assert (found.pending, found.first) == ((), None)


async def test_a_talk_with_the_owner_completes_the_owners_callbacks_only(
    service: CallbackService, store: Store
) -> None:
    mine = [await schedule(service, NUMBER, hours=1), await schedule(service, "030123456", hours=5)]
    theirs = await schedule(service, NUMBER, agent="1002")
    settled = await service.settle_call_in(ADMIN, "004930123456", "1001", 25)
    assert sorted(callback.id for callback in settled) == sorted(mine)
    for callback_id in mine:
        done = await store.get(callback_id)
        assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.CONTACT_CALLED_IN)
        assert (done.called_in_agent, done.called_in_talk_s, done.finished_at) == ("1001", 25, NOW)
    assert (await store.get(theirs)).state is State.SCHEDULED
    assert [callback.id for callback in (await service.pending_for_number(ADMIN, NUMBER)).pending] == [theirs]
    await store.ensure_group("test")
    entries = await store.read_group("test", "reader", count=100)
    completed = [e for e in entries if isinstance(e, StreamEvent) and e.event.kind is EventKind.COMPLETED]
    assert {entry.event.callback_id for entry in completed} == set(mine)
    assert all(entry.event.attributes["reason"] == "contact_called_in" for entry in completed)


async def test_a_short_talk_changes_nothing(service: CallbackService, store: Store) -> None:
    callback_id = await schedule(service, NUMBER)
    assert await service.settle_call_in(ADMIN, NUMBER, "1001", 19) == []
    assert (await store.get(callback_id)).state is State.SCHEDULED


async def test_the_minimum_talk_is_the_callbacks_own_setting(
    service: CallbackService, settings: dict[str, Settings]
) -> None:
    settings["1002"] = dataclasses.replace(Settings(), call_in_min_talk=timedelta(minutes=1))
    strict = await schedule(service, NUMBER, agent="1002")
    settings["default"] = dataclasses.replace(Settings(), call_in_agent=CallInAgent.ANY)
    lenient = await schedule(service, NUMBER)
    assert [c.id for c in await service.settle_call_in(ADMIN, NUMBER, "1002", 59)] == [lenient]
    assert [c.id for c in await service.settle_call_in(ADMIN, NUMBER, "1002", 60)] == [strict]


async def test_with_any_agent_every_pending_callback_of_the_number_completes(
    service: CallbackService, settings: dict[str, Settings]
) -> None:
    settings["default"] = dataclasses.replace(Settings(), call_in_agent=CallInAgent.ANY)
    ids = {await schedule(service, NUMBER), await schedule(service, NUMBER, agent="1002")}
    settled = await service.settle_call_in(ADMIN, NUMBER, "2001", 20)
    assert {callback.id for callback in settled} == ids
    assert {callback.called_in_agent for callback in settled} == {"2001"}


async def test_ignore_leaves_callbacks_to_be_dialled(
    service: CallbackService, settings: dict[str, Settings], store: Store
) -> None:
    settings["1001"] = dataclasses.replace(Settings(), on_call_in=OnCallIn.IGNORE)
    ignored = await schedule(service, NUMBER)
    settled = await schedule(service, NUMBER, agent="1002")
    assert [c.id for c in await service.settle_call_in(ADMIN, NUMBER, "1001", 600)] == []
    assert [c.id for c in await service.settle_call_in(ADMIN, NUMBER, "1002", 600)] == [settled]
    assert (await store.get(ignored)).state is State.SCHEDULED


async def test_a_callback_whose_call_lives_is_never_touched(service: CallbackService, store: Store) -> None:
    ringing_id = await schedule(service, NUMBER, hours=1)
    waiting_id = await schedule(service, NUMBER, hours=3)
    batch = await store.claim(1, "daemon-a")  # the sooner one: due long ago on the server's clock
    [claim] = batch.claims
    assert claim.callback.id == ringing_id
    transition = lifecycle.step(claim.callback, Due(), NOW + timedelta(hours=1), Settings())
    await store.commit(claim, transition.callback, transition.events)

    listed = (await service.pending_for_number(ADMIN, NUMBER)).pending
    assert [callback.id for callback in listed] == [ringing_id, waiting_id], "pending, so described"
    assert [c.id for c in await service.settle_call_in(ADMIN, NUMBER, "1001", 600)] == [waiting_id]
    assert (await store.get(ringing_id)) == transition.callback


async def test_a_claimed_callback_not_yet_dialled_is_settled_and_its_holder_loses_it(
    service: CallbackService, store: Store
) -> None:
    callback_id = await schedule(service, NUMBER)
    [claim] = (await store.claim(1, "daemon-a")).claims
    assert [c.id for c in await service.settle_call_in(ADMIN, NUMBER, "1001", 30)] == [callback_id]
    transition = lifecycle.step(claim.callback, Due(), NOW + timedelta(hours=2), Settings())
    with pytest.raises(LeaseLost):  # the holder never dials it
        await store.commit(claim, transition.callback, transition.events)
    assert (await store.get(callback_id)).finish_reason is FinishReason.CONTACT_CALLED_IN


async def test_settling_again_completes_nothing_more(service: CallbackService) -> None:
    await schedule(service, NUMBER)
    assert len(await service.settle_call_in(ADMIN, NUMBER, "1001", 30)) == 1
    assert await service.settle_call_in(ADMIN, NUMBER, "1001", 30) == []


async def test_the_daemons_face_is_for_the_daemon(service: CallbackService) -> None:
    await refused(service.settle_call_in(AGENT_1001, NUMBER, "1001", 30), ErrorCode.FORBIDDEN)
    await refused(service.pending_for_number(AGENT_1001, NUMBER), ErrorCode.FORBIDDEN)
    await refused(service.settle_call_in(ADMIN, NUMBER, "10 01", 30), ErrorCode.INVALID, "agent")
    await refused(service.settle_call_in(ADMIN, NUMBER, "1001", -1), ErrorCode.INVALID, "talk_s")


async def test_an_agent_may_ask_for_its_own_pending_callbacks_only(service: CallbackService) -> None:
    """The feature code's check: the agent's role has no view_all_callbacks."""
    mine = await schedule(service, NUMBER)
    await schedule(service, NUMBER, agent="1002", hours=1)
    found = await service.pending_for_number(AGENT_1001, "030123456", agent="1001")
    assert [callback.id for callback in found.pending] == [mine]
    for agent in (None, "1002"):
        await refused(service.pending_for_number(AGENT_1001, NUMBER, agent=agent), ErrorCode.FORBIDDEN)
