"""Every lifecycle cell (state/phase x input) with its expected result.

Notation of an expected result: ``"<state>/<phase> [a+1] [q+1] [m+1] | <effects>"`` where a, q, m are
the agent-phase attempts, queue-phase attempts and missed agent rings counted by the transition;
``ILLEGAL`` raises IllegalTransition, ``REFUSED`` raises ChangeRefused (a person's change too late).
Cells are reached through real transitions (lifecycle_paths) with the default caps (3/3/3), the
failover queue "overflow" set, and the input arriving well before any deadline.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from lifecycle_paths import CELLS, SETTINGS, T0

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle as lc
from asterisk_cb.core.model import Callback, Outcome

INPUTS: dict[str, ev.Input] = {
    "due_free": ev.Due(True),
    "due_busy": ev.Due(False),
    "due_agent_taken": ev.Due(waiting=ev.Waiting.AGENT),
    "due_contact_taken": ev.Due(waiting=ev.Waiting.CONTACT),
    "due_lines_full": ev.Due(waiting=ev.Waiting.CALL_LIMIT),
    "agent_answered": ev.AgentAnswered(ev.LegInfo(uniqueid="u-a", linkedid="l-1")),
    "agent_no_answer": ev.AgentMissed(Outcome.AGENT_NO_ANSWER, ev.LegInfo(hangup_cause=19)),
    "agent_rejected": ev.AgentMissed(Outcome.AGENT_REJECTED, ev.LegInfo(hangup_cause=21, sip_code=603)),
    "agent_busy": ev.AgentMissed(Outcome.AGENT_BUSY, ev.LegInfo(hangup_cause=17, sip_code=486)),
    "agent_hung_up": ev.AgentHungUp(ev.LegInfo(hangup_cause=16)),
    "agent_hung_up_undialled": ev.AgentHungUp(ev.LegInfo(hangup_cause=16), contact_dialled=False),
    "contact_answered": ev.ContactAnswered(ev.LegInfo(uniqueid="u-c", linkedid="l-1")),
    "contact_no_answer": ev.ContactFailed(Outcome.NO_ANSWER, ev.LegInfo(hangup_cause=19)),
    "contact_busy": ev.ContactFailed(Outcome.BUSY, ev.LegInfo(hangup_cause=17, sip_code=486)),
    "contact_congestion": ev.ContactFailed(Outcome.CONGESTION, ev.LegInfo(hangup_cause=34, sip_code=503)),
    "contact_unallocated": ev.ContactFailed(Outcome.UNALLOCATED, ev.LegInfo(hangup_cause=1, sip_code=404)),
    "contact_machine": ev.ContactFailed(Outcome.MACHINE, ev.LegInfo(uniqueid="u-c")),
    "member_answered": ev.MemberAnswered("PJSIP/2001", ev.LegInfo(uniqueid="u-m")),
    "queue_timeout": ev.QueueGaveUp(Outcome.QUEUE_TIMEOUT),
    "queue_abandoned": ev.QueueGaveUp(Outcome.ABANDONED),
    "call_ended": ev.CallEnded(ev.LegInfo(hangup_cause=16)),
    "call_lost": ev.CallLost(),
    "call_resumed": ev.CallResumed(),
    "cancel": ev.Cancel("supervisor"),
    "reschedule": ev.Reschedule(T0 + timedelta(days=1), "supervisor"),
    "edit": ev.Edit("supervisor", note="call after lunch"),
    "reassign": ev.Edit("supervisor", agent="1002"),
    "called_in": ev.ContactCalledIn("1001", 25),
}

# A reschedule is a new promise: back to the agent phase. A cancel keeps the phase it happened in.
_PERSON = {"cancel": "cancelled/agent | ", "reschedule": "scheduled/agent | WaitUntil"}
_PERSON_Q = {"cancel": "cancelled/queue | ", "reschedule": "scheduled/agent | WaitUntil"}
_PERSON_LIVE = {"cancel": "cancelled/agent | HangUp", "reschedule": "scheduled/agent | HangUp WaitUntil"}
_PERSON_LIVE_Q = {"cancel": "cancelled/queue | HangUp", "reschedule": "scheduled/agent | HangUp WaitUntil"}
# A reassignment hangs up a ring of the agent phase and makes the callback due again for the new agent.
_REASSIGN_RING = {"reassign": "scheduled/agent | HangUp WaitUntil"}
_REFUSED = {"cancel": "REFUSED", "reschedule": "REFUSED", "edit": "REFUSED", "reassign": "REFUSED"}
_FINISHED = {name: "ILLEGAL" for name in INPUTS} | _REFUSED

# The legal cells; every input not listed for a cell is ILLEGAL (checked against lc.accepts too).
LEGAL: dict[str, dict[str, str]] = {
    "scheduled/agent": {
        "due_free": "agent_ringing/agent | RingAgent",
        "due_busy": "scheduled/agent | WaitUntil",
        "due_agent_taken": "scheduled/agent | WaitUntil",
        "due_contact_taken": "scheduled/agent | WaitUntil",
        "due_lines_full": "scheduled/agent | WaitUntil",
        **_PERSON,
        "called_in": "completed/agent | ",
        "edit": "scheduled/agent | ",
        "reassign": "scheduled/agent | ",
    },
    "scheduled/queue": {
        "due_free": "contact_ringing/queue | DialContact",
        "due_busy": "contact_ringing/queue | DialContact",  # the agent does not matter any more
        "due_agent_taken": "contact_ringing/queue | DialContact",
        "due_contact_taken": "scheduled/queue | WaitUntil",  # the contact and the lines still do
        "due_lines_full": "scheduled/queue | WaitUntil",
        **_PERSON_Q,
        "called_in": "completed/queue | ",
        "edit": "scheduled/queue | ",
        "reassign": "scheduled/queue | ",
    },
    "agent_ringing/agent": {
        "agent_answered": "contact_ringing/agent | DialContact",
        "agent_no_answer": "scheduled/agent m+1 | HangUp WaitUntil",
        "agent_rejected": "scheduled/agent m+1 | HangUp WaitUntil",
        "agent_busy": "scheduled/agent | HangUp WaitUntil",
        "call_lost": "scheduled/agent m+1 | HangUp WaitUntil",
        "call_resumed": "agent_ringing/agent | WatchCall",
        **_PERSON_LIVE,
        **_REASSIGN_RING,
        "edit": "agent_ringing/agent | ",
    },
    "contact_ringing/agent": {
        "agent_hung_up": "scheduled/agent a+1 | HangUp WaitUntil",
        "agent_hung_up_undialled": "scheduled/agent m+1 | HangUp WaitUntil",  # the contact never rang
        "contact_answered": "in_progress/agent | Connect",
        "contact_no_answer": "scheduled/agent a+1 | HangUp WaitUntil",
        "contact_busy": "scheduled/agent a+1 | HangUp WaitUntil",
        "contact_congestion": "scheduled/agent a+1 | HangUp WaitUntil",
        "contact_unallocated": "exhausted/agent a+1 | HangUp",
        "contact_machine": "scheduled/agent a+1 | HangUp WaitUntil",
        "call_lost": "scheduled/agent a+1 | HangUp WaitUntil",
        "call_resumed": "contact_ringing/agent | WatchCall",
        **_PERSON_LIVE,
        **_REASSIGN_RING,
        "edit": "contact_ringing/agent | ",
    },
    "contact_ringing/queue": {
        "contact_answered": "queued/queue | EnterQueue",
        "contact_no_answer": "scheduled/queue q+1 | HangUp WaitUntil",
        "contact_busy": "scheduled/queue q+1 | HangUp WaitUntil",
        "contact_congestion": "scheduled/queue q+1 | HangUp WaitUntil",
        "contact_unallocated": "exhausted/queue q+1 | HangUp",
        "contact_machine": "scheduled/queue q+1 | HangUp WaitUntil",
        "call_lost": "scheduled/queue q+1 | HangUp WaitUntil",
        "call_resumed": "contact_ringing/queue | WatchCall",
        **_PERSON_LIVE_Q,
        "edit": "contact_ringing/queue | ",
        "reassign": "contact_ringing/queue | ",  # the agent is not on a queue-phase call
    },
    "queued/queue": {
        "member_answered": "in_progress/queue | ",
        "queue_timeout": "scheduled/queue q+1 | HangUp WaitUntil",
        "queue_abandoned": "scheduled/queue q+1 | HangUp WaitUntil",
        "call_lost": "scheduled/queue q+1 | HangUp WaitUntil",
        "call_resumed": "queued/queue | WatchCall",
        "cancel": "REFUSED",  # the contact waits in the queue: never cut
        "reschedule": "REFUSED",
        "edit": "queued/queue | ",
        "reassign": "queued/queue | ",
    },
    "in_progress/agent": {
        "call_ended": "completed/agent | HangUp",
        "call_lost": "completed/agent | HangUp",
        "call_resumed": "in_progress/agent | WatchCall",
        **_REFUSED,
    },
    "in_progress/queue": {
        "call_ended": "completed/queue | HangUp",
        "call_lost": "completed/queue | HangUp",
        "call_resumed": "in_progress/queue | WatchCall",
        **_REFUSED,
    },
    "completed/agent": _FINISHED,
    "cancelled/agent": _FINISHED,
    "exhausted/agent": _FINISHED,
    "expired/agent": _FINISHED,
}


def expected(cell: str, name: str) -> str:
    return LEGAL[cell].get(name, "ILLEGAL")


def describe(before: Callback, after: Callback, effects: tuple[object, ...]) -> str:
    """The observed result in the table's notation."""
    counted = [
        label
        for label, field in (
            ("a+1", "agent_attempts"),
            ("q+1", "queue_attempts"),
            ("m+1", "missed_agent_rings"),
        )
        if getattr(after, field) == getattr(before, field) + 1
    ]
    head = " ".join([f"{after.state.value}/{after.phase.value}", *counted])
    return f"{head} | {' '.join(type(effect).__name__ for effect in effects)}"


CASES = [(cell, name) for cell in CELLS for name in INPUTS]


@pytest.mark.parametrize(("cell", "name"), CASES, ids=[f"{cell}-{name}" for cell, name in CASES])
def test_cell(cell: str, name: str) -> None:
    before = CELLS[cell]()
    assert f"{before.state.value}/{before.phase.value}" == cell
    now = (before.next_at or before.updated_at or T0) + timedelta(seconds=1)
    outcome = expected(cell, name)
    if outcome in {"ILLEGAL", "REFUSED"}:
        error = lc.ChangeRefused if outcome == "REFUSED" else lc.IllegalTransition
        with pytest.raises(error) as raised:
            lc.step(before, INPUTS[name], now, SETTINGS)
        assert (outcome == "REFUSED") == isinstance(raised.value, lc.ChangeRefused)
        return
    transition = lc.step(before, INPUTS[name], now, SETTINGS)
    assert describe(before, transition.callback, transition.effects).rstrip() == outcome.rstrip()
    assert transition.events, "every transition emits an event"
    assert transition.callback.version == before.version + 1
    assert all(event.version == transition.callback.version for event in transition.events)


@pytest.mark.parametrize("cell", list(CELLS))
def test_table_lists_exactly_what_the_machine_accepts(cell: str) -> None:
    callback = CELLS[cell]()
    legal = {name for name in INPUTS if expected(cell, name) not in {"ILLEGAL", "REFUSED"}}
    assert {type(INPUTS[name]) for name in legal} == lc.accepts(callback)
