"""Callbacks through the real lab Asterisk: agent first, then the contact, every outcome counted on the
SIPp phones (INVITEs per number) as well as in the callback's record."""

from __future__ import annotations

import pytest
from callback_lab import Lab, device_state, leg_channel, pbx_lab, unique_number, until, until_equal

from asterisk_cb.core.model import Callback, EventKind, FinishReason, LegRole, Outcome, State

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
SECOND_AGENT = "1002"


async def test_agent_answers_contact_answers_callback_completed(lab: Lab) -> None:
    lab.phone(AGENT, "answer", ring_s=2)
    await lab.set(agent_ring_timeout="5s", contact_ring_timeout="5s", caller_id='"ACME Support" <0140000000>')
    number = unique_number("20104")  # answers, hangs up after 4 s
    agent_invites_before = len(lab.agent_invites(AGENT).times(AGENT))

    scheduled = await lab.schedule(number, AGENT, in_s=1, name="Alice Martin")
    ringing = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.AGENT_RINGING)
    agent_display = await _shown_to_agent(lab, ringing)
    talking = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS)
    marks = await _marks_of_live_call(lab, talking)
    linkedids = await _linkedids_in_asterisk(lab, talking)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert done.state is State.COMPLETED
    assert done.finish_reason is FinishReason.TALKED
    assert (done.agent_attempts, done.missed_agent_rings) == (0, 0)
    [attempt] = done.attempts
    assert attempt.outcome is Outcome.COMPLETED
    agent_leg, contact_leg = attempt.leg(LegRole.AGENT), attempt.leg(LegRole.CONTACT)
    assert agent_leg is not None and agent_leg.uniqueid == agent_leg.channel_id
    assert contact_leg is not None and contact_leg.uniqueid == contact_leg.channel_id
    # the contact leg was created with the agent leg as originator: one linkedid for the call, the
    # agent leg's own uniqueid (recorded without asking Asterisk: checked here against Asterisk)
    assert agent_leg.linkedid == contact_leg.linkedid == agent_leg.channel_id
    assert linkedids == (agent_leg.channel_id, agent_leg.channel_id)
    assert len(lab.contact_invites().times(number)) == 1
    assert len(lab.agent_invites(AGENT).times(AGENT)) == agent_invites_before + 1
    # what the agent's phone showed, and the marks on both legs (the Local channel's dialplan half
    # inherited them from the half we created)
    assert agent_display == ("CB Alice Martin", number)
    assert marks["agent"] == (scheduled.id, attempt.id)
    assert marks["contact dialplan half"] == (scheduled.id, attempt.id)
    assert marks["contact caller ID"] == ("ACME Support", "0140000000")  # from the settings
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit
    assert lab.answer_marks() == []  # the daemon saw the answer: it removed the recording handler


async def _shown_to_agent(lab: Lab, callback: Callback) -> tuple[str, str]:
    """The agent leg's connected line: what its INVITE's From carries (its caller is already the
    caller ID the contact will see)."""
    channel = await lab.ari.get_channel(leg_channel(callback, LegRole.AGENT))
    return channel.connected.name, channel.connected.number


async def _linkedids_in_asterisk(lab: Lab, callback: Callback) -> tuple[str | None, str | None]:
    return (
        await lab.ari.get_variable(leg_channel(callback, LegRole.AGENT), "CHANNEL(linkedid)"),
        await lab.ari.get_variable(leg_channel(callback, LegRole.CONTACT), "CHANNEL(linkedid)"),
    )


async def _marks_of_live_call(lab: Lab, callback: Callback) -> dict[str, tuple[str | None, ...]]:
    attempt = callback.attempts[-1]
    agent, contact = attempt.leg(LegRole.AGENT), attempt.leg(LegRole.CONTACT)
    assert agent is not None and agent.channel_id and contact is not None and contact.local_peer_id
    dialplan_half = await lab.ari.get_channel(contact.local_peer_id)
    marks: dict[str, tuple[str | None, ...]] = {
        "contact caller ID": (dialplan_half.caller.name, dialplan_half.caller.number)
    }
    for leg, channel_id in (("agent", agent.channel_id), ("contact dialplan half", contact.local_peer_id)):
        marks[leg] = (
            await lab.ari.get_variable(channel_id, "ACB_CALLBACK_ID"),
            await lab.ari.get_variable(channel_id, "ACB_ATTEMPT_ID"),
        )
    return marks


@pytest.mark.parametrize(
    ("prefix", "outcome", "cause"),
    [("486", Outcome.BUSY, 17), ("480", Outcome.NO_ANSWER, 19), ("603", Outcome.REJECTED, 21)],
)
async def test_contact_not_reached_counts_attempts_spaced_by_the_retry_interval(
    lab: Lab, prefix: str, outcome: Outcome, cause: int
) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(retry_interval="3s", max_attempts="2", contact_ring_timeout="2s")
    number = unique_number(prefix)

    scheduled = await lab.schedule(number, AGENT)
    first_failed = await lab.wait_for(scheduled.id, lambda cb: cb.agent_attempts == 1, timeout_s=20)
    assert first_failed.state is State.SCHEDULED  # counted, and waiting for the retry
    assert (first_failed.attempts[-1].outcome, first_failed.attempts[-1].hangup_cause) == (outcome, cause)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert (done.state, done.finish_reason) == (State.EXHAUSTED, FinishReason.AGENT_ATTEMPTS)
    assert [attempt.outcome for attempt in done.attempts] == [outcome, outcome]
    invites = lab.contact_invites().times(number)
    assert len(invites) == 2
    assert invites[1] - invites[0] >= 3.0  # the retry interval, plus the agent's ring before it
    assert (await lab.kinds(scheduled.id)).count(EventKind.ATTEMPT_FAILED) == 2
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit


async def test_agent_does_not_answer_counts_a_missed_ring_and_never_dials_the_contact(lab: Lab) -> None:
    lab.phone(SECOND_AGENT, "noanswer")
    await lab.set(agent_ring_timeout="2s", reschedule_delay="1s", max_missed_agent_rings="2")
    number = unique_number("200")
    rings_before = len(lab.agent_invites(SECOND_AGENT).times(SECOND_AGENT))

    scheduled = await lab.schedule(number, SECOND_AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert (done.state, done.finish_reason) == (State.EXPIRED, FinishReason.AGENT_MISSED)
    assert (done.missed_agent_rings, done.agent_attempts) == (2, 0)
    assert [attempt.outcome for attempt in done.attempts] == [Outcome.AGENT_NO_ANSWER] * 2
    assert [attempt.hangup_cause for attempt in done.attempts] == [19, 19]
    assert lab.contact_invites().times(number) == []
    assert len(lab.agent_invites(SECOND_AGENT).times(SECOND_AGENT)) == rings_before + 2
    assert (await lab.kinds(scheduled.id)).count(EventKind.AGENT_MISSED) == 2


@pytest.mark.parametrize(
    ("behaviour", "cause"),
    [("reject", 21), ("busy", 17)],  # 603 Decline; 486 from an idle phone is its reject key too
)
async def test_agent_rejects_is_a_missed_ring_not_a_contact_attempt(
    lab: Lab, behaviour: str, cause: int
) -> None:
    lab.phone(SECOND_AGENT, behaviour)
    await lab.set(max_missed_agent_rings="1")
    number = unique_number("200")

    scheduled = await lab.schedule(number, SECOND_AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=20)

    assert (done.state, done.finish_reason) == (State.EXPIRED, FinishReason.AGENT_MISSED)
    [attempt] = done.attempts
    assert (attempt.outcome, attempt.hangup_cause) == (Outcome.AGENT_REJECTED, cause)
    assert done.agent_attempts == 0
    assert lab.contact_invites().times(number) == []


async def test_agent_logged_out_is_never_rung_and_the_callback_expires_after_max_agent_wait(
    lab: Lab,
) -> None:
    lab.phone(SECOND_AGENT, "offline")
    await lab.set(reschedule_delay="1s", max_agent_wait="3s")
    number = unique_number("200")
    rings_before = len(lab.agent_invites(SECOND_AGENT).times(SECOND_AGENT))

    scheduled = await lab.schedule(number, SECOND_AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=20)

    assert (done.state, done.finish_reason) == (State.EXPIRED, FinishReason.AGENT_WAIT)
    assert (done.attempts, done.missed_agent_rings) == ((), 0)
    assert (await lab.kinds(scheduled.id)).count(EventKind.AGENT_UNAVAILABLE) >= 3
    assert len(lab.agent_invites(SECOND_AGENT).times(SECOND_AGENT)) == rings_before
    assert lab.contact_invites().times(number) == []


async def test_unallocated_number_finishes_at_once(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(max_attempts="3")
    number = unique_number("404")

    scheduled = await lab.schedule(number, AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=20)

    assert (done.state, done.finish_reason) == (State.EXHAUSTED, FinishReason.UNALLOCATED)
    [attempt] = done.attempts
    assert (attempt.outcome, attempt.hangup_cause) == (Outcome.UNALLOCATED, 1)
    assert len(lab.contact_invites().times(number)) == 1
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit


async def test_agent_hangs_up_while_the_contact_rings(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(max_attempts="1", contact_ring_timeout="20s")
    number = unique_number("480")  # rings until cancelled

    scheduled = await lab.schedule(number, AGENT)
    ringing = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.CONTACT_RINGING)
    await until(lambda: len(lab.contact_invites().times(number)) == 1)
    await lab.ari.hangup(leg_channel(ringing, LegRole.AGENT))
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=10)

    assert (done.state, done.finish_reason) == (State.EXHAUSTED, FinishReason.AGENT_ATTEMPTS)
    assert done.attempts[-1].outcome is Outcome.AGENT_HUNG_UP
    assert len(lab.contact_invites().times(number)) == 1
    await until_equal(lab.our_channels, [])  # the contact's ringing leg was hung up too


async def test_agent_on_another_call_is_not_rung_until_free(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(reschedule_delay="2s")
    pbx_lab("call", AGENT, "--hold-s", "6")  # a normal call keeps the agent busy for 6 s
    await until_equal(lambda: device_state(lab, AGENT), "INUSE")
    number = unique_number("20102")

    scheduled = await lab.schedule(number, AGENT, in_s=0.5)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    assert done.state is State.COMPLETED
    assert done.missed_agent_rings == 0 and len(done.attempts) == 1
    events = await lab.events(scheduled.id)
    unavailable = [event.at for event in events if event.kind is EventKind.AGENT_UNAVAILABLE]
    [rung] = [event.at for event in events if event.kind is EventKind.AGENT_RINGING]
    assert len(unavailable) >= 2  # checked again every reschedule_delay while the agent talked
    assert rung > unavailable[-1]
    assert (rung - scheduled.due_at).total_seconds() >= 4  # not before the other call was over
    assert len(lab.contact_invites().times(number)) == 1


async def test_two_callbacks_due_together_for_one_agent_ring_it_one_after_the_other(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(reschedule_delay="1s")
    numbers = [unique_number("20102"), unique_number("20102")]

    scheduled = [await lab.schedule(number, AGENT, in_s=1) for number in numbers]
    done = [await lab.wait_for(cb.id, lambda cb: cb.state.is_finished, timeout_s=40) for cb in scheduled]

    assert [cb.state for cb in done] == [State.COMPLETED, State.COMPLETED]
    assert [len(lab.contact_invites().times(number)) for number in numbers] == [1, 1]
    spans = sorted((cb.attempts[-1].started_at, cb.attempts[-1].ended_at) for cb in done)
    first_end, second_start = spans[0][1], spans[1][0]
    assert first_end is not None and second_start >= first_end  # never two callback calls at once
    kinds = [await lab.kinds(cb.id) for cb in scheduled]
    assert any(EventKind.AGENT_UNAVAILABLE in history for history in kinds)


async def test_daemon_gone_during_the_talk_resumes_without_dialling_again(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    number = unique_number("20112")  # the contact talks 12 s, then hangs up

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS)
    await lab.restart_daemon(1.0)  # the call stays up; the lease lapses; the new daemon resumes it
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert EventKind.RESUMED in await lab.kinds(scheduled.id)
    assert len(lab.contact_invites().times(number)) == 1
    assert len(done.attempts) == 1


async def test_daemon_gone_during_the_agent_ring_loses_nothing_and_dials_the_contact_once(lab: Lab) -> None:
    lab.phone(AGENT, "answer", ring_s=3)  # the agent picks up while no daemon is there
    await lab.set(reschedule_delay="1s", agent_ring_timeout="10s")
    number = unique_number("20102")

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.AGENT_RINGING)
    await lab.restart_daemon(1.0)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    assert done.state is State.COMPLETED
    assert len(lab.contact_invites().times(number)) == 1
    kinds = await lab.kinds(scheduled.id)
    assert EventKind.RESUMED in kinds or EventKind.CALL_LOST in kinds  # followed again, or lost
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit


async def test_daemon_gone_during_the_contact_ring_resumes_the_same_call(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(contact_ring_timeout="20s")
    number = unique_number("20205")  # rings 5 s, answers, stays until hung up

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.CONTACT_RINGING)
    await until(lambda: len(lab.contact_invites().times(number)) == 1)  # it surely rings
    await lab.restart_daemon(1.0)
    talking = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS, timeout_s=20)
    await lab.ari.hangup(leg_channel(talking, LegRole.AGENT))  # the agent ends the talk
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=10)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert len(done.attempts) == 1
    assert EventKind.RESUMED in await lab.kinds(scheduled.id)
    assert len(lab.contact_invites().times(number)) == 1
    await until_equal(lab.our_channels, [])


async def test_contact_answering_and_hanging_up_while_no_daemon_watches_is_completed_not_dialled_again(
    lab: Lab,
) -> None:
    """The answer and the hang-up happen while no daemon holds the callback: Asterisk records the
    answer (the contact leg's hangup handler), the resumer reads it instead of counting a lost ring."""
    lab.phone(AGENT, "answer")
    await lab.set(contact_ring_timeout="20s", retry_interval="2s")
    number = unique_number("2030303")  # rings 3 s, answers, hangs up 3 s later

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.CONTACT_RINGING)
    await until(lambda: len(lab.contact_invites().times(number)) == 1)  # it surely rings
    await lab.restart_daemon(10.0)  # down for the answer and the whole talk
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert len(done.attempts) == 1
    assert len(lab.contact_invites().times(number)) == 1
    assert EventKind.CONTACT_ANSWERED in await lab.kinds(scheduled.id)
    await until_equal(lab.our_channels, [])
    assert len(lab.answer_marks()) == 1  # what Asterisk wrote stays: the daemon may not delete it
