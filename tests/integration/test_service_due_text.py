"""Due times as a face hands them over (text), read by the service in the right zone, on the lab's Redis."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from test_service import AGENT_1001, NOW, Clock, Directory, refused

from asterisk_cb.core.settings import Settings
from asterisk_cb.service import CallbackService, ErrorCode, ScheduleRequest
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab

BERLIN_SETTINGS = Settings(default_timezone="Europe/Berlin")


@pytest.fixture
def service(store: Store) -> CallbackService:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return BERLIN_SETTINGS

    return CallbackService(store, Directory(), settings_for, Clock())


def request(due_at: str, **changes: object) -> ScheduleRequest:
    base = ScheduleRequest(contact_number="+4930123456", agent="1001", due_at=due_at, contact_name="Ada")
    return dataclasses.replace(base, **changes)


async def test_a_time_with_an_offset_is_that_instant(service: CallbackService) -> None:
    created = (await service.schedule(AGENT_1001, request("2026-11-26T14:00+01:00"))).callback
    assert created.due_at == datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    assert created.timezone == "Europe/Berlin"
    assert created.created_by == "1001"


async def test_a_time_without_offset_is_read_in_the_contacts_zone(service: CallbackService) -> None:
    created = (
        await service.schedule(AGENT_1001, request("2026-11-26 09:00", timezone="America/New_York"))
    ).callback
    assert created.due_at == datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    assert created.timezone == "America/New_York"


async def test_without_a_zone_the_default_zone_reads_it(service: CallbackService) -> None:
    created = (await service.schedule(AGENT_1001, request("2026-11-26 15:00"))).callback
    assert created.due_at == datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    assert created.timezone == "Europe/Berlin"


async def test_a_relative_time_counts_from_the_service_clock(service: CallbackService) -> None:
    created = (await service.schedule(AGENT_1001, request(" +90m"))).callback
    assert created.due_at == NOW + timedelta(minutes=90)


@pytest.mark.parametrize("text", ["tomorrow at three", "+2 weeks", "2026-13-01 10:00", ""])
async def test_bad_due_text_is_refused_naming_the_field(service: CallbackService, text: str) -> None:
    error = await refused(service.schedule(AGENT_1001, request(text)), ErrorCode.INVALID, "due_at")
    assert error.message.startswith("due_at: ")


async def test_an_unknown_zone_is_refused_naming_the_field(service: CallbackService) -> None:
    error = await refused(
        service.schedule(AGENT_1001, request("2026-11-26 15:00", timezone="Mars/Olympus")),
        ErrorCode.INVALID,
        "timezone",
    )
    assert "unknown time zone 'Mars/Olympus'" in error.message


async def test_reschedule_reads_local_text_in_the_callbacks_zone(service: CallbackService) -> None:
    created = await service.schedule(AGENT_1001, request("+2h", timezone="America/New_York"))
    moved = (await service.reschedule(AGENT_1001, created.callback.id, "2026-11-27 11:00")).callback
    assert moved.due_at == datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    moved = (
        await service.reschedule(AGENT_1001, created.callback.id, "2026-11-27 11:00", timezone="UTC")
    ).callback
    assert moved.due_at == datetime(2026, 11, 27, 11, 0, tzinfo=UTC)
    assert moved.timezone == "America/New_York"  # reading a time in a zone does not move the contact


async def test_reschedule_by_text_relative_and_refused(service: CallbackService) -> None:
    created = await service.schedule(AGENT_1001, request("+2h"))
    moved = (await service.reschedule(AGENT_1001, created.callback.id, "+1d")).callback
    assert moved.due_at == NOW + timedelta(days=1)
    await refused(service.reschedule(AGENT_1001, created.callback.id, "soon"), ErrorCode.INVALID, "due_at")
    await refused(
        service.reschedule(AGENT_1001, created.callback.id, "2026-11-27 11:00", timezone="Nowhere/Land"),
        ErrorCode.INVALID,
        "timezone",
    )
