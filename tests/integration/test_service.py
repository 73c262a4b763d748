"""The service (every way in schedules through it) against the lab's real Redis, in a random namespace."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from asterisk_cb.core.inputs import Edit
from asterisk_cb.core.lifecycle import NewCallback
from asterisk_cb.core.model import State
from asterisk_cb.core.settings import Settings
from asterisk_cb.service import (
    ADMIN,
    Actor,
    CallbackService,
    ChangeOutcome,
    ErrorCode,
    Permission,
    Query,
    ServiceError,
)
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
AGENT_1001 = Actor("1001", frozenset({Permission.SCHEDULE}))
AGENT_1002 = Actor("1002", frozenset({Permission.SCHEDULE}))
VISITOR = Actor("guest", frozenset())


class Directory:
    agents = frozenset({"1001", "1002"})
    queues = frozenset({"sales"})

    def has_agent(self, agent: str) -> bool:
        return agent in self.agents

    def has_queue(self, queue: str) -> bool:
        return queue in self.queues


class Clock:
    """The service reads time only through this: tests move it by hand."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def settings() -> dict[str, Settings]:
    """The settings each (agent, queue) resolves to; tests replace entries to change them."""
    return {"default": Settings()}


@pytest.fixture
def service(store: Store, settings: dict[str, Settings]) -> CallbackService:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return settings.get(f"{agent}/{queue}", settings["default"])

    return CallbackService(store, Directory(), settings_for, Clock())


def request(**changes: object) -> NewCallback:
    base = NewCallback(
        contact_number="+4930123456",
        agent="1001",
        due_at=NOW + timedelta(hours=2),
        created_by="1001",
        contact_name="Ada Lovelace",
    )
    return dataclasses.replace(base, **changes)


async def refused(awaitable: object, code: ErrorCode, field: str | None = None) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        await awaitable  # type: ignore[misc]
    assert caught.value.code is code, caught.value.message
    assert caught.value.field == field
    return caught.value


async def test_schedule_stores_a_scheduled_callback(service: CallbackService) -> None:
    created = await service.schedule(AGENT_1001, request())
    assert created.created
    stored = await service.get(AGENT_1001, created.callback.id)
    assert stored.state is State.SCHEDULED
    assert stored.due_at == NOW + timedelta(hours=2)
    assert stored.contact_name == "Ada Lovelace"


async def test_a_retried_request_returns_the_first_callback(service: CallbackService) -> None:
    first = await service.schedule(AGENT_1001, request(), idempotency_key="req-1")
    again = await service.schedule(AGENT_1001, request(), idempotency_key="req-1")
    assert not again.created
    assert again.callback.id == first.callback.id
    assert len(await service.list(ADMIN, Query())) == 1


async def test_scheduling_needs_the_permission(service: CallbackService) -> None:
    await refused(service.schedule(VISITOR, request(agent="guest")), ErrorCode.FORBIDDEN)


async def test_an_agent_cannot_schedule_for_another_agent(service: CallbackService) -> None:
    await refused(service.schedule(AGENT_1002, request(agent="1001")), ErrorCode.FORBIDDEN)


async def test_unknown_agents_and_queues_are_refused(service: CallbackService) -> None:
    await refused(service.schedule(ADMIN, request(agent="9999")), ErrorCode.INVALID, "agent")
    await refused(service.schedule(ADMIN, request(queue="nowhere")), ErrorCode.INVALID, "queue")


@pytest.mark.parametrize("number", ["+49 30 1234&Local/666", "0301234,5", "٣٣٣٣", "12a4", ""])
async def test_undialable_numbers_are_refused(service: CallbackService, number: str) -> None:
    await refused(
        service.schedule(AGENT_1001, request(contact_number=number)), ErrorCode.INVALID, "contact_number"
    )


async def test_a_due_time_beyond_the_horizon_says_why(service: CallbackService) -> None:
    error = await refused(
        service.schedule(AGENT_1001, request(due_at=NOW + timedelta(days=31))), ErrorCode.INVALID, "due_at"
    )
    assert "horizon" in error.message or "30 days" in error.message


async def test_a_turned_off_feature_schedules_nothing(
    service: CallbackService, settings: dict[str, Settings]
) -> None:
    settings["default"] = Settings(enabled=False)
    await refused(service.schedule(AGENT_1001, request()), ErrorCode.INVALID, "enabled")
    assert await service.list(ADMIN, Query()) == []


async def test_cancel_finishes_it_and_records_who(service: CallbackService) -> None:
    created = await service.schedule(AGENT_1001, request())
    change = await service.cancel(AGENT_1001, created.callback.id)
    assert change.outcome is ChangeOutcome.APPLIED
    cancelled = change.callback
    assert cancelled.state is State.CANCELLED
    assert cancelled.cancelled_by == "1001"
    await refused(service.cancel(AGENT_1001, created.callback.id), ErrorCode.CONFLICT)


async def test_agents_see_and_change_only_their_own(service: CallbackService) -> None:
    created = await service.schedule(AGENT_1001, request())
    await refused(service.get(AGENT_1002, created.callback.id), ErrorCode.NOT_FOUND)
    await refused(service.cancel(AGENT_1002, created.callback.id), ErrorCode.NOT_FOUND)
    await refused(service.list(AGENT_1002, Query(agent="1001")), ErrorCode.FORBIDDEN)
    assert await service.list(AGENT_1002, Query()) == []


async def test_reschedule_moves_the_due_time(service: CallbackService) -> None:
    created = await service.schedule(AGENT_1001, request())
    moved = (await service.reschedule(AGENT_1001, created.callback.id, NOW + timedelta(days=2))).callback
    assert moved.due_at == NOW + timedelta(days=2)
    assert moved.state is State.SCHEDULED


async def test_handing_over_needs_manage_and_a_known_agent(service: CallbackService) -> None:
    created = await service.schedule(AGENT_1001, request())
    callback_id = created.callback.id
    await refused(service.edit(AGENT_1001, callback_id, Edit(by="1001", agent="1002")), ErrorCode.FORBIDDEN)
    await refused(
        service.edit(ADMIN, callback_id, Edit(by="admin", agent="7777")), ErrorCode.INVALID, "agent"
    )
    handed = (await service.edit(ADMIN, callback_id, Edit(by="admin", agent="1002"))).callback
    assert handed.agent == "1002"
    assert [c.id for c in await service.list(ADMIN, Query(agent="1002"))] == [callback_id]


async def test_list_filters_combine(service: CallbackService) -> None:
    first = await service.schedule(AGENT_1001, request(contact_number="+4930111"))
    await service.schedule(AGENT_1001, request(contact_number="+4930222"))
    await service.cancel(AGENT_1001, first.callback.id)
    found = await service.list(ADMIN, Query(agent="1001", state=State.SCHEDULED))
    assert [c.contact_number for c in found] == ["+4930222"]
    found = await service.list(ADMIN, Query(contact_number="+49 30 222"))
    assert [c.contact_number for c in found] == ["+4930222"]
    assert await service.list(ADMIN, Query(contact_number="+49 30 111")) == [], "pending ones only"


def ids(*values: str) -> Callable[[], str]:
    drawn = iter(values)
    return lambda: next(drawn)


async def test_a_replayed_create_script_is_one_callback(store: Store, settings: dict[str, Settings]) -> None:
    """The Redis client re-runs a script whose reply a dropped connection lost: same id, same record."""

    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return settings["default"]

    clock = Clock()
    first = CallbackService(store, Directory(), settings_for, clock, new_id=ids("aaaa000000000001"))
    replay = CallbackService(store, Directory(), settings_for, clock, new_id=ids("aaaa000000000001"))
    created = await first.schedule(AGENT_1001, request())
    again = await replay.schedule(AGENT_1001, request())
    assert again.callback == created.callback
    assert len(await first.list(ADMIN, Query())) == 1


async def test_a_taken_id_draws_another(store: Store, settings: dict[str, Settings]) -> None:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return settings["default"]

    service = CallbackService(
        store, Directory(), settings_for, Clock(), new_id=ids("bbbb000000000001", "bbbb000000000001", "bbbb2")
    )
    await service.schedule(AGENT_1001, request())
    other = await service.schedule(AGENT_1001, request(contact_number="+4930999"))
    assert other.callback.id == "bbbb2"
    assert len(await service.list(ADMIN, Query())) == 2
