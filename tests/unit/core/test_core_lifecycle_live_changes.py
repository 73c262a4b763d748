"""A person's cancel, reschedule or reassignment while the callback's call rings, waits or talks.

The table (test_core_lifecycle_table) covers every cell's state and effects; these pin what the
cells promise beyond that: which channels are hung up, that no attempt is counted, when the callback
is due again and for whom, and the sentence a refusal carries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from lifecycle_paths import (
    SETTINGS,
    agent_ringing,
    contact_ringing_agent,
    contact_ringing_queue,
    in_progress_agent,
    in_progress_queue,
    queued,
)

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle as lc
from asterisk_cb.core.effects import HangUp, WaitUntil
from asterisk_cb.core.model import Callback, Outcome, State

LATER = timedelta(seconds=3)
RINGS = {"agent ring": agent_ringing, "contact ring": contact_ringing_agent}


def _step(callback: Callback, change: ev.Input) -> lc.Transition:
    assert callback.updated_at is not None
    return lc.step(callback, change, callback.updated_at + LATER, SETTINGS)


def _assert_ring_hung_up_uncounted(before: Callback, transition: lc.Transition) -> None:
    after = transition.callback
    attempt = after.attempts[-1]
    assert attempt.outcome is Outcome.CANCELLED
    assert transition.effects[0] == HangUp(attempt.id, before.attempts[-1].channel_ids)
    counters = ("agent_attempts", "queue_attempts", "missed_agent_rings")
    assert [getattr(after, name) for name in counters] == [getattr(before, name) for name in counters]


@pytest.mark.parametrize("ring", list(RINGS))
def test_cancel_during_a_ring_hangs_it_up_and_counts_nothing(ring: str) -> None:
    before = RINGS[ring]()
    transition = _step(before, ev.Cancel("supervisor"))
    _assert_ring_hung_up_uncounted(before, transition)
    assert transition.callback.state is State.CANCELLED
    assert transition.callback.cancelled_by == "supervisor"


@pytest.mark.parametrize("ring", list(RINGS))
def test_reschedule_during_a_ring_hangs_it_up_and_waits_for_the_new_time(ring: str) -> None:
    before = RINGS[ring]()
    new_due = before.due_at + timedelta(hours=2)
    transition = _step(before, ev.Reschedule(new_due, "supervisor"))
    _assert_ring_hung_up_uncounted(before, transition)
    assert (transition.callback.state, transition.callback.next_at) == (State.SCHEDULED, new_due)
    assert transition.effects[1:] == (WaitUntil(new_due),)


@pytest.mark.parametrize("ring", list(RINGS))
def test_reassign_during_a_ring_hangs_it_up_and_is_due_at_once_for_the_new_agent(ring: str) -> None:
    before = RINGS[ring]()
    transition = _step(before, ev.Edit("supervisor", agent="1002"))
    _assert_ring_hung_up_uncounted(before, transition)
    after = transition.callback
    assert (after.state, after.agent, after.next_at) == (State.SCHEDULED, "1002", after.updated_at)


@pytest.mark.parametrize("ring", list(RINGS))
def test_reassign_to_the_same_agent_or_other_details_leave_the_ring_alone(ring: str) -> None:
    before = RINGS[ring]()
    for change in (ev.Edit("supervisor", agent=before.agent), ev.Edit("supervisor", note="urgent")):
        transition = _step(before, change)
        assert transition.callback.state is before.state
        assert transition.effects == ()


def test_reassign_during_a_queue_phase_ring_does_not_cut_the_contact() -> None:
    """The agent is not on a call of the queue phase: only the record changes."""
    transition = _step(contact_ringing_queue(), ev.Edit("supervisor", agent="1002"))
    assert (transition.callback.state, transition.callback.agent) == (State.CONTACT_RINGING, "1002")
    assert transition.effects == ()


CONNECTED = {
    "talk, agent phase": (in_progress_agent, "call in progress; it completes at hangup"),
    "talk, queue phase": (in_progress_queue, "call in progress; it completes at hangup"),
    "waiting in the queue": (queued, "waiting in the failover queue; the call is not cut"),
}
CUTTING_CHANGES: dict[str, Callable[[Callback], ev.Input]] = {
    "cancel": lambda callback: ev.Cancel("boss"),
    "reschedule": lambda callback: ev.Reschedule(callback.due_at + timedelta(days=1), "boss"),
}


@pytest.mark.parametrize("connected", list(CONNECTED))
@pytest.mark.parametrize("change", list(CUTTING_CHANGES))
def test_a_connected_contact_is_never_cut(connected: str, change: str) -> None:
    reach, reason = CONNECTED[connected]
    before = reach()
    with pytest.raises(lc.ChangeRefused, match=reason):
        _step(before, CUTTING_CHANGES[change](before))
