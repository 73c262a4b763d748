"""The "waiting for the agent" mark: set exactly when the lifecycle looks at a busy agent again later,
which the executor's wake-up may bring forward (``agent_wakeups``); never on a wait it must keep (a
retry of the contact, a ring the agent let go, a hold while paused)."""

from __future__ import annotations

import pytest

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle as lc
from asterisk_cb.core.model import Callback, Outcome, State
from asterisk_cb.core.settings import Settings
from tests.unit.core.lifecycle_paths import (
    SECOND,
    SETTINGS,
    agent_ringing,
    apply,
    contact_ringing_agent,
    new_callback,
    scheduled_queue,
)


def test_a_new_callback_waits_for_its_due_time_not_for_the_agent() -> None:
    assert new_callback().waiting_for_agent is False


@pytest.mark.parametrize(
    "due",
    [ev.Due(agent_available=False), ev.Due(True, waiting=ev.Waiting.AGENT)],
    ids=["agent busy", "agent in another callback"],
)
def test_an_unavailable_agent_is_waited_for(due: ev.Due) -> None:
    waiting = apply(new_callback(), (due, SECOND))
    assert (waiting.state, waiting.waiting_for_agent) == (State.SCHEDULED, True)
    assert waiting.next_at == waiting.updated_at + SETTINGS.reschedule_delay  # the poll stays the net


@pytest.mark.parametrize(
    ("outcome", "for_agent"),
    [(Outcome.AGENT_BUSY, True), (Outcome.AGENT_NO_ANSWER, False), (Outcome.AGENT_REJECTED, False)],
)
def test_a_missed_ring_waits_for_the_agent_only_when_it_was_busy(outcome: Outcome, for_agent: bool) -> None:
    missed = apply(agent_ringing(), (ev.AgentMissed(outcome), 5 * SECOND))
    assert (missed.state, missed.waiting_for_agent) == (State.SCHEDULED, for_agent)


def test_ringing_the_agent_ends_the_wait() -> None:
    waiting = apply(new_callback(), (ev.Due(False), SECOND))
    rung = apply(waiting, (ev.Due(True), SECOND))
    assert (rung.state, rung.waiting_for_agent) == (State.AGENT_RINGING, False)


def test_a_contact_retry_is_not_the_agent_s_to_bring_forward() -> None:
    retry = apply(contact_ringing_agent(), (ev.ContactFailed(Outcome.NO_ANSWER), 5 * SECOND))
    assert (retry.state, retry.waiting_for_agent) == (State.SCHEDULED, False)


@pytest.mark.parametrize(
    "settings", [Settings(enabled=False), Settings(paused=True)], ids=["disabled", "paused"]
)
def test_a_hold_is_not_a_wait_for_the_agent(settings: Settings) -> None:
    held = lc.step(new_callback(), ev.Due(True), new_callback().due_at, settings).callback
    assert (held.state, held.waiting_for_agent) == (State.SCHEDULED, False)


def test_the_queue_phase_never_waits_for_the_agent() -> None:
    callback: Callback = scheduled_queue()
    assert callback.waiting_for_agent is False
    assert apply(callback, (ev.Due(True, waiting=ev.Waiting.AGENT), SECOND)).waiting_for_agent is False


def test_a_person_s_reschedule_ends_the_wait() -> None:
    waiting = apply(new_callback(), (ev.Due(False), SECOND))
    moved = apply(waiting, (ev.Reschedule(waiting.due_at + 3600 * SECOND, "agent:1001"), SECOND))
    assert (moved.state, moved.waiting_for_agent) == (State.SCHEDULED, False)
