"""Callbacks brought into each lifecycle cell through real transitions (no hand-made states)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle as lc
from asterisk_cb.core.model import Callback, Outcome
from asterisk_cb.core.settings import Settings

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DUE = T0 + timedelta(minutes=10)
SETTINGS = Settings(failover_queue="overflow")
NO_QUEUE = replace(SETTINGS, failover_queue=None)


def new_callback(settings: Settings = SETTINGS, due: datetime = DUE, callback_id: str = "cb1") -> Callback:
    request = lc.NewCallback(
        "+4930123456", "1001", due, "agent:1001", timezone="Europe/Berlin", queue="sales"
    )
    return lc.create(request, callback_id, T0, settings).callback


def apply(callback: Callback, *steps: tuple[ev.Input, timedelta], settings: Settings = SETTINGS) -> Callback:
    """Apply inputs, each ``after`` the previous one (a SCHEDULED callback is stepped at its next_at)."""
    now = callback.updated_at or T0
    for happening, after in steps:
        now = callback.next_at if callback.next_at and isinstance(happening, ev.Due) else now + after
        callback = lc.step(callback, happening, now, settings).callback
    return callback


SECOND = timedelta(seconds=1)


def scheduled_agent() -> Callback:
    return new_callback()


def agent_ringing() -> Callback:
    return apply(new_callback(), (ev.Due(True), SECOND))


def contact_ringing_agent() -> Callback:
    return apply(agent_ringing(), (ev.AgentAnswered(), 5 * SECOND))


def in_progress_agent() -> Callback:
    return apply(contact_ringing_agent(), (ev.ContactAnswered(), 10 * SECOND))


def scheduled_queue() -> Callback:
    """Agent unavailable past max_agent_wait: the failover queue takes over at once."""
    callback = new_callback()
    late = callback.due_at + SETTINGS.max_agent_wait
    return lc.step(callback, ev.Due(False), late, SETTINGS).callback


def contact_ringing_queue() -> Callback:
    return apply(scheduled_queue(), (ev.Due(True), SECOND))


def queued() -> Callback:
    return apply(contact_ringing_queue(), (ev.ContactAnswered(), 10 * SECOND))


def in_progress_queue() -> Callback:
    return apply(queued(), (ev.MemberAnswered("PJSIP/2001"), 30 * SECOND))


def completed() -> Callback:
    return apply(in_progress_agent(), (ev.CallEnded(), 60 * SECOND))


def cancelled() -> Callback:
    return apply(new_callback(), (ev.Cancel("agent:1001"), SECOND))


def exhausted() -> Callback:
    return apply(contact_ringing_agent(), (ev.ContactFailed(Outcome.UNALLOCATED), 2 * SECOND))


def expired() -> Callback:
    callback = new_callback(NO_QUEUE)
    late = callback.due_at + NO_QUEUE.max_agent_wait
    return lc.step(callback, ev.Due(False), late, NO_QUEUE).callback


CELLS: dict[str, Callable[[], Callback]] = {
    "scheduled/agent": scheduled_agent,
    "scheduled/queue": scheduled_queue,
    "agent_ringing/agent": agent_ringing,
    "contact_ringing/agent": contact_ringing_agent,
    "contact_ringing/queue": contact_ringing_queue,
    "queued/queue": queued,
    "in_progress/agent": in_progress_agent,
    "in_progress/queue": in_progress_queue,
    "completed/agent": completed,
    "cancelled/agent": cancelled,
    "exhausted/agent": exhausted,
    "expired/agent": expired,
}
