"""Callbacks through the real lab Asterisk: agent first, then the contact, every outcome counted on the
SIPp phones (INVITEs per number) as well as in the callback's record."""

from __future__ import annotations

import pytest
from callback_lab import Lab, unique_number

from asterisk_cb.core.model import EventKind, FinishReason, LegRole, Outcome, State

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
SECOND_AGENT = "1002"


async def test_agent_answers_contact_answers_callback_completed(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(agent_ring_timeout="5s", contact_ring_timeout="5s")
    number = unique_number("20102")  # answers, hangs up after 2 s
    agent_invites_before = len(lab.agent_invites(AGENT).times(AGENT))

    scheduled = await lab.schedule(number, AGENT, in_s=1, name="Alice Martin")
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert done.state is State.COMPLETED
    assert done.finish_reason is FinishReason.TALKED
    assert (done.agent_attempts, done.missed_agent_rings) == (0, 0)
    [attempt] = done.attempts
    assert attempt.outcome is Outcome.COMPLETED
    contact_leg = attempt.leg(LegRole.CONTACT)
    assert contact_leg is not None and contact_leg.uniqueid == contact_leg.channel_id
    assert len(lab.contact_invites().times(number)) == 1
    assert len(lab.agent_invites(AGENT).times(AGENT)) == agent_invites_before + 1


async def test_contact_busy_counts_attempts_spaced_by_the_retry_interval(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(retry_interval="3s", max_attempts="2", contact_ring_timeout="5s")
    number = unique_number("486")

    scheduled = await lab.schedule(number, AGENT)
    first_failed = await lab.wait_for(scheduled.id, lambda cb: cb.agent_attempts == 1, timeout_s=20)
    assert first_failed.state is State.SCHEDULED  # counted, and waiting for the retry
    assert first_failed.attempts[-1].outcome is Outcome.BUSY
    assert first_failed.attempts[-1].hangup_cause == 17
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert (done.state, done.finish_reason) == (State.EXHAUSTED, FinishReason.AGENT_ATTEMPTS)
    assert [attempt.outcome for attempt in done.attempts] == [Outcome.BUSY, Outcome.BUSY]
    invites = lab.contact_invites().times(number)
    assert len(invites) == 2
    assert invites[1] - invites[0] >= 3.0  # the retry interval, plus the agent's ring before it
    assert (await lab.kinds(scheduled.id)).count(EventKind.ATTEMPT_FAILED) == 2


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


async def test_agent_rejects_is_a_missed_ring_not_a_contact_attempt(lab: Lab) -> None:
    lab.phone(SECOND_AGENT, "reject")
    await lab.set(max_missed_agent_rings="1")
    number = unique_number("200")

    scheduled = await lab.schedule(number, SECOND_AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=20)

    assert (done.state, done.finish_reason) == (State.EXPIRED, FinishReason.AGENT_MISSED)
    [attempt] = done.attempts
    assert (attempt.outcome, attempt.hangup_cause) == (Outcome.AGENT_REJECTED, 21)
    assert done.agent_attempts == 0
    assert lab.contact_invites().times(number) == []
