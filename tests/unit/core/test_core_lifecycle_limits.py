"""Caps, deadlines, holds, calling hours and creation: the lifecycle at its boundaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from lifecycle_paths import DUE, NO_QUEUE, SETTINGS, T0, apply, new_callback

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle as lc
from asterisk_cb.core import rules
from asterisk_cb.core.effects import DialContact, EnterQueue, HangUp, RingAgent, StopRinging, WaitUntil
from asterisk_cb.core.model import Callback, EventKind, FinishReason, LegRole, Outcome, Phase, State
from asterisk_cb.core.settings import Settings, parse_calling_hours

SECOND = timedelta(seconds=1)


def contact_attempt(callback: Callback, outcome: Outcome, settings: Settings = SETTINGS) -> Callback:
    """One full agent-phase attempt that fails on the contact leg."""
    return apply(
        callback,
        (ev.Due(True), SECOND),
        (ev.AgentAnswered(), 5 * SECOND),
        (ev.ContactFailed(outcome), 30 * SECOND),
        settings=settings,
    )


@pytest.mark.parametrize(
    ("settings", "state", "phase"),
    [(SETTINGS, State.SCHEDULED, Phase.QUEUE), (NO_QUEUE, State.EXHAUSTED, Phase.AGENT)],
)
def test_max_attempts_then_failover_or_exhausted(settings: Settings, state: State, phase: Phase) -> None:
    callback = new_callback(settings)
    for made in range(1, settings.max_attempts + 1):
        callback = contact_attempt(callback, Outcome.NO_ANSWER, settings)
        assert callback.agent_attempts == made
    assert (callback.state, callback.phase) == (state, phase)
    if phase is Phase.QUEUE:  # the contact was just rung: the queue waits one retry interval too
        ended = callback.attempts[-1].ended_at
        assert ended is not None and callback.next_at == ended + settings.retry_interval
    else:
        assert callback.finish_reason is FinishReason.AGENT_ATTEMPTS


def test_retry_interval_spaces_attempts() -> None:
    callback = contact_attempt(new_callback(), Outcome.BUSY)
    ended = callback.attempts[-1].ended_at
    assert ended is not None and callback.next_at == ended + SETTINGS.retry_interval


@pytest.mark.parametrize(("settings", "state"), [(SETTINGS, State.SCHEDULED), (NO_QUEUE, State.EXPIRED)])
def test_missed_agent_rings_are_capped_and_cost_no_contact_attempt(settings: Settings, state: State) -> None:
    callback = new_callback(settings)
    for _ in range(settings.max_missed_agent_rings):
        callback = apply(
            callback,
            (ev.Due(True), SECOND),
            (ev.AgentMissed(Outcome.AGENT_NO_ANSWER), 20 * SECOND),
            settings=settings,
        )
    assert callback.agent_attempts == 0
    assert callback.missed_agent_rings == settings.max_missed_agent_rings
    assert callback.state is state
    assert callback.phase is (Phase.QUEUE if settings.failover_queue else Phase.AGENT)


@pytest.mark.parametrize(("settings", "state"), [(SETTINGS, State.SCHEDULED), (NO_QUEUE, State.EXPIRED)])
def test_agent_hanging_up_before_the_contact_was_dialled_is_a_missed_ring_not_an_attempt(
    settings: Settings, state: State
) -> None:
    """The contact's phone never rang: no contact attempt; the agent's miss is on record and capped."""
    callback = new_callback(settings)
    for _ in range(settings.max_missed_agent_rings):
        callback = apply(
            callback,
            (ev.Due(True), SECOND),
            (ev.AgentAnswered(), 5 * SECOND),
            (ev.AgentHungUp(ev.LegInfo(hangup_cause=16), contact_dialled=False), SECOND),
            settings=settings,
        )
    assert (callback.agent_attempts, callback.missed_agent_rings) == (0, settings.max_missed_agent_rings)
    assert callback.state is state
    assert all(attempt.outcome is Outcome.AGENT_HUNG_UP for attempt in callback.attempts)
    answered = apply(
        new_callback(settings), (ev.Due(True), SECOND), (ev.AgentAnswered(), SECOND), settings=settings
    )
    missed = lc.step(answered, ev.AgentHungUp(contact_dialled=False), T0 + timedelta(hours=1), settings)
    assert [(e.kind, e.attributes.get("outcome")) for e in missed.events] == [
        (EventKind.AGENT_MISSED, Outcome.AGENT_HUNG_UP.value)
    ]


def test_agent_busy_is_not_counted_as_a_miss() -> None:
    callback = apply(new_callback(), (ev.Due(True), SECOND), (ev.AgentMissed(Outcome.AGENT_BUSY), SECOND))
    assert (callback.missed_agent_rings, callback.agent_attempts, callback.state) == (0, 0, State.SCHEDULED)


def test_unavailable_agent_rechecked_until_the_deadline_then_failover() -> None:
    settings = replace(SETTINGS, reschedule_delay=timedelta(minutes=25), max_agent_wait=timedelta(hours=1))
    callback = new_callback(settings)
    seen = []
    while callback.phase is Phase.AGENT:
        now = callback.next_at
        assert now is not None
        callback = lc.step(callback, ev.Due(False), now, settings).callback
        seen.append(now - DUE)
    assert seen == [timedelta(0), timedelta(minutes=25), timedelta(minutes=50), timedelta(hours=1)]
    assert callback.state is State.SCHEDULED and callback.next_at == DUE + timedelta(hours=1)


def test_deadline_counts_from_the_original_due_time_even_after_attempts() -> None:
    settings = replace(SETTINGS, max_agent_wait=timedelta(minutes=10))
    callback = contact_attempt(new_callback(settings), Outcome.NO_ANSWER, settings)  # retry 15 min later
    transition = lc.step(callback, ev.Due(False), callback.next_at or T0, settings)
    assert transition.callback.phase is Phase.QUEUE
    assert [event.kind for event in transition.events] == [EventKind.AGENT_UNAVAILABLE, EventKind.FAILOVER]


@pytest.mark.parametrize("flag", ["paused", "disabled"])
def test_held_callbacks_dial_nothing_and_extend_the_deadline(flag: str) -> None:
    held = replace(SETTINGS, paused=True) if flag == "paused" else replace(SETTINGS, enabled=False)
    callback = new_callback()
    for _ in range(100):  # 100 minutes held, longer than max_agent_wait
        transition = lc.step(callback, ev.Due(False), callback.next_at or T0, held)
        assert not any(isinstance(effect, RingAgent | DialContact) for effect in transition.effects)
        assert [event.attributes["reason"] for event in transition.events] == [flag]
        callback = transition.callback
    assert callback.held_seconds == 100 * 60
    resumed = lc.step(callback, ev.Due(False), callback.next_at or T0, SETTINGS).callback
    assert resumed.phase is Phase.AGENT, "held time does not count toward max_agent_wait"
    assert lc.agent_wait_deadline(resumed, SETTINGS) == DUE + SETTINGS.max_agent_wait + timedelta(minutes=100)


@pytest.mark.parametrize("waiting", [ev.Waiting.CONTACT, ev.Waiting.CALL_LIMIT, ev.Waiting.PBX])
def test_contact_or_lines_taken_by_other_callbacks_hold_without_burning_anything(waiting: ev.Waiting) -> None:
    callback = new_callback()
    for _ in range(100):  # longer than max_agent_wait: the other calls' time is not this callback's
        transition = lc.step(callback, ev.Due(True, waiting), callback.next_at or T0, SETTINGS)
        assert [effect for effect in transition.effects if not isinstance(effect, WaitUntil)] == []
        assert [(e.kind, e.attributes["reason"]) for e in transition.events] == [
            (EventKind.HELD, waiting.value)
        ]
        callback = transition.callback
    assert (callback.phase, callback.agent_attempts, callback.missed_agent_rings) == (Phase.AGENT, 0, 0)
    assert callback.next_at == (callback.updated_at or T0) + SETTINGS.reschedule_delay
    rung = lc.step(callback, ev.Due(True), callback.next_at or T0, SETTINGS)
    assert rung.callback.state is State.AGENT_RINGING


def test_agent_in_another_callback_is_an_unavailable_agent_that_says_why() -> None:
    settings = replace(SETTINGS, reschedule_delay=timedelta(minutes=25), max_agent_wait=timedelta(hours=1))
    callback, reasons = new_callback(settings), []
    while callback.phase is Phase.AGENT:  # the deadline applies: the agent is busy, if with a callback
        transition = lc.step(callback, ev.Due(True, ev.Waiting.AGENT), callback.next_at or T0, settings)
        reasons += [event.attributes.get("reason") for event in transition.events]
        callback = transition.callback
    assert reasons[:4] == [ev.Waiting.AGENT.value] * 4 and callback.held_seconds == 0
    assert callback.next_at == DUE + timedelta(hours=1)


def test_disabled_refuses_new_callbacks() -> None:
    with pytest.raises(rules.ValidationError, match="turned off"):
        new_callback(replace(SETTINGS, enabled=False))


BERLIN_OFFICE = replace(SETTINGS, calling_hours=parse_calling_hours("mon-fri 09:00-18:00"))


def test_due_outside_calling_hours_waits_for_the_opening() -> None:
    # Created while open; the admin narrowed the hours since: the callback waits, nothing rings.
    friday_evening = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)  # 18:30 in Berlin
    callback = lc.create(
        lc.NewCallback("+4930123", "1001", friday_evening, "a", timezone="Europe/Berlin"),
        "cb2",
        friday_evening - timedelta(hours=1),
        SETTINGS,
    ).callback
    transition = lc.step(callback, ev.Due(True), friday_evening, BERLIN_OFFICE)
    assert [event.kind for event in transition.events] == [EventKind.OUTSIDE_HOURS]
    assert transition.callback.next_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 CET


def test_retry_moves_to_the_next_opening() -> None:
    thursday = datetime(2026, 11, 26, 16, 50, tzinfo=UTC)  # 17:50 in Berlin
    callback = lc.create(
        lc.NewCallback("+4930123", "1001", thursday, "a", timezone="Europe/Berlin"),
        "cb3",
        thursday,
        BERLIN_OFFICE,
    ).callback
    callback = contact_attempt(callback, Outcome.NO_ANSWER, BERLIN_OFFICE)
    assert callback.next_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def test_creation_outside_calling_hours_names_the_next_allowed_time() -> None:
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    request = lc.NewCallback("+4930123", "1001", saturday, "a", timezone="Europe/Berlin")
    with pytest.raises(
        rules.ValidationError, match=r"next allowed time is 2026-11-30T09:00\+01:00"
    ) as raised:
        lc.create(request, "cb4", T0, BERLIN_OFFICE)
    assert raised.value.field == "due_at"


def test_queue_removed_while_in_queue_phase_expires() -> None:
    callback = lc.step(new_callback(), ev.Due(False), DUE + SETTINGS.max_agent_wait, SETTINGS).callback
    finished = lc.step(callback, ev.Due(True), callback.next_at or T0, NO_QUEUE).callback
    assert (finished.state, finished.finish_reason) == (State.EXPIRED, FinishReason.NO_FAILOVER_QUEUE)


def test_the_queue_phase_waits_out_a_pbx_outage_without_spending_an_attempt() -> None:
    """ARI down: dialling now would fail and count; the callback holds and tries again later."""
    callback = lc.step(new_callback(), ev.Due(False), DUE + SETTINGS.max_agent_wait, SETTINGS).callback
    for _ in range(50):  # a long outage: still no attempt spent
        transition = lc.step(callback, ev.Due(waiting=ev.Waiting.PBX), callback.next_at or T0, SETTINGS)
        assert [effect for effect in transition.effects if not isinstance(effect, WaitUntil)] == []
        callback = transition.callback
    assert (callback.state, callback.phase, callback.queue_attempts) == (State.SCHEDULED, Phase.QUEUE, 0)
    assert transition.events[-1].attributes["reason"] == "PBX unreachable"
    dialled = lc.step(callback, ev.Due(), callback.next_at or T0, SETTINGS)
    assert dialled.callback.state is State.CONTACT_RINGING


def test_queue_phase_exhausts_after_its_max_attempts() -> None:
    callback = lc.step(new_callback(), ev.Due(False), DUE + SETTINGS.max_agent_wait, SETTINGS).callback
    for made in range(1, SETTINGS.queue_max_attempts + 1):
        callback = apply(callback, (ev.Due(True), SECOND), (ev.ContactAnswered(), 5 * SECOND))
        callback = apply(callback, (ev.QueueGaveUp(Outcome.QUEUE_TIMEOUT), SETTINGS.queue_timeout))
        assert callback.queue_attempts == made
    assert (callback.state, callback.finish_reason) == (State.EXHAUSTED, FinishReason.QUEUE_ATTEMPTS)


def test_channel_ids_are_recorded_before_the_originate_and_derived_from_the_attempt() -> None:
    transition = lc.step(new_callback(), ev.Due(True), DUE, SETTINGS)
    ring = transition.effects[0]
    assert isinstance(ring, RingAgent)
    attempt = transition.callback.attempts[-1]
    assert attempt.id == "cb1-1" and attempt.outcome is None
    agent_leg, contact_leg = attempt.leg(LegRole.AGENT), attempt.leg(LegRole.CONTACT)
    assert agent_leg is not None and contact_leg is not None
    assert ring.channel_ids == (agent_leg.channel_id,) == ("acb-cb1-1-agent",)
    assert contact_leg.channel_id == "acb-cb1-1-contact"
    assert contact_leg.local_peer_id == "acb-cb1-1-contact-2"
    assert transition.callback.current_attempt == attempt


def test_several_devices_ring_at_once_each_with_an_id_recorded_before_the_originate() -> None:
    transition = lc.step(new_callback(), ev.Due(True, rings=3), DUE, SETTINGS)
    [ring, *_] = transition.effects
    assert isinstance(ring, RingAgent)
    expected = ("acb-cb1-1-agent", "acb-cb1-1-agent-2", "acb-cb1-1-agent-3")
    assert ring.channel_ids == expected
    attempt = transition.callback.attempts[-1]
    assert tuple(leg.channel_id for leg in attempt.legs_of(LegRole.AGENT)) == expected
    assert attempt.channel_ids[:3] == expected  # what a cancel hangs up, what a resumer looks up
    assert [event.kind for event in transition.events] == [EventKind.AGENT_RINGING]


def test_the_device_that_answered_stays_the_agent_leg_and_the_others_stop_ringing() -> None:
    ringing = lc.step(new_callback(), ev.Due(True, rings=3), DUE, SETTINGS).callback
    answered = ev.AgentAnswered(ev.LegInfo(uniqueid="acb-cb1-1-agent-2"))
    transition = lc.step(ringing, answered, DUE + SECOND, SETTINGS)

    stop, dial = transition.effects
    assert stop == StopRinging("cb1-1", ("acb-cb1-1-agent", "acb-cb1-1-agent-3"))
    assert isinstance(dial, DialContact)
    attempt = transition.callback.attempts[-1]
    [agent] = attempt.legs_of(LegRole.AGENT)
    assert (agent.channel_id, agent.uniqueid) == ("acb-cb1-1-agent-2", "acb-cb1-1-agent-2")
    assert transition.callback.state is State.CONTACT_RINGING


def test_one_device_answering_stops_nothing() -> None:
    ringing = lc.step(new_callback(), ev.Due(True), DUE, SETTINGS).callback
    transition = lc.step(ringing, ev.AgentAnswered(ev.LegInfo(uniqueid="acb-cb1-1-agent")), DUE, SETTINGS)
    assert [type(effect) for effect in transition.effects] == [DialContact]


def test_a_missed_ring_of_several_devices_notes_the_leg_it_is_about_and_hangs_up_all() -> None:
    ringing = lc.step(new_callback(), ev.Due(True, rings=2), DUE, SETTINGS).callback
    missed = ev.AgentMissed(Outcome.AGENT_REJECTED, ev.LegInfo(hangup_cause=21, uniqueid="acb-cb1-1-agent-2"))
    transition = lc.step(ringing, missed, DUE + SECOND, SETTINGS)
    attempt = transition.callback.attempts[-1]
    first, second = attempt.legs_of(LegRole.AGENT)
    assert (first.uniqueid, second.uniqueid) == (None, "acb-cb1-1-agent-2")
    assert (attempt.outcome, attempt.hangup_cause) == (Outcome.AGENT_REJECTED, 21)
    [hang_up] = [effect for effect in transition.effects if isinstance(effect, HangUp)]
    assert set(hang_up.channel_ids) >= {"acb-cb1-1-agent", "acb-cb1-1-agent-2"}


def test_due_refuses_zero_rings() -> None:
    with pytest.raises(ValueError, match="rings"):
        ev.Due(True, rings=0)


def test_leg_ids_and_causes_land_in_the_history() -> None:
    callback = apply(
        new_callback(),
        (ev.Due(True), SECOND),
        (ev.AgentAnswered(ev.LegInfo(uniqueid="1.1", linkedid="1.1")), SECOND),
        (ev.ContactFailed(Outcome.BUSY, ev.LegInfo(hangup_cause=17, sip_code=486, uniqueid="1.2")), SECOND),
    )
    attempt = callback.attempts[-1]
    assert (attempt.outcome, attempt.hangup_cause, attempt.sip_code) == (Outcome.BUSY, 17, 486)
    contact = attempt.leg(LegRole.CONTACT)
    agent = attempt.leg(LegRole.AGENT)
    assert contact is not None and contact.uniqueid == "1.2"
    assert agent is not None and agent.linkedid == "1.1"


def test_member_leg_recorded_with_its_endpoint() -> None:
    callback = lc.step(new_callback(), ev.Due(False), DUE + SETTINGS.max_agent_wait, SETTINGS).callback
    callback = apply(
        callback,
        (ev.Due(True), SECOND),
        (ev.ContactAnswered(), SECOND),
        (ev.MemberAnswered("PJSIP/2001", ev.LegInfo(uniqueid="9.9")), SECOND),
    )
    member = callback.attempts[-1].leg(LegRole.MEMBER)
    assert member is not None and (member.endpoint, member.uniqueid) == ("PJSIP/2001", "9.9")


def test_reschedule_is_a_new_promise() -> None:
    callback = contact_attempt(new_callback(), Outcome.NO_ANSWER)
    new_due = T0 + timedelta(days=2)
    moved = lc.step(callback, ev.Reschedule(new_due, "boss"), T0 + timedelta(hours=1), SETTINGS).callback
    assert (moved.due_at, moved.next_at, moved.agent_attempts, moved.phase) == (
        new_due,
        new_due,
        0,
        Phase.AGENT,
    )
    assert len(moved.attempts) == 1, "history is kept"


@pytest.mark.parametrize(
    ("happening", "field"),
    [
        (ev.Reschedule(T0 - timedelta(days=1), "boss"), "due_at"),
        (ev.Reschedule(T0 + timedelta(days=60), "boss"), "due_at"),
        (ev.Edit("boss", contact_number="12a4"), "contact_number"),
        (ev.Edit("boss", contact_name="Bob & Co"), "contact_name"),
        (ev.Edit("boss", note="line\nbreak"), "note"),
        (ev.Edit("boss", agent="no spaces allowed"), "agent"),
        (ev.Edit("boss", timezone="Mars/Olympus"), "timezone"),
    ],
)
def test_person_changes_are_validated(happening: ev.Input, field: str) -> None:
    with pytest.raises(rules.ValidationError) as raised:
        lc.step(new_callback(), happening, T0, SETTINGS)
    assert raised.value.field == field


def test_edit_changes_the_next_attempt() -> None:
    callback = lc.step(new_callback(), ev.Edit("boss", contact_number="+33 1 23 45"), T0, SETTINGS).callback
    ring = lc.step(callback, ev.Due(True), DUE, SETTINGS).effects[0]
    assert isinstance(ring, RingAgent) and ring.contact_number == "+3312345"


def test_bad_outcome_for_an_input_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="not an agent-leg miss"):
        ev.AgentMissed(Outcome.BUSY)
    with pytest.raises(ValueError, match="not a contact-leg failure"):
        ev.ContactFailed(Outcome.AGENT_BUSY)
    with pytest.raises(ValueError, match="not a queue-phase failure"):
        ev.QueueGaveUp(Outcome.NO_ANSWER)


def test_finish_bound_grows_with_each_term() -> None:
    base = lc.finish_bound(NO_QUEUE)
    assert lc.finish_bound(SETTINGS) > base
    assert lc.finish_bound(replace(NO_QUEUE, max_attempts=4)) > base
    assert lc.finish_bound(BERLIN_OFFICE) > lc.finish_bound(SETTINGS)


def test_contact_enters_the_failover_queue_with_the_configured_priority() -> None:
    settings = replace(SETTINGS, queue_priority=5, queue_timeout=timedelta(minutes=2))
    callback = lc.step(new_callback(), ev.Due(False), DUE + SETTINGS.max_agent_wait, settings).callback
    callback = apply(callback, (ev.Due(True), SECOND), settings=settings)
    effects = lc.step(callback, ev.ContactAnswered(), DUE + 2 * SETTINGS.max_agent_wait, settings).effects
    assert effects == (EnterQueue("cb1-1", "overflow", "acb-cb1-1-contact", timedelta(minutes=2), 5),)
