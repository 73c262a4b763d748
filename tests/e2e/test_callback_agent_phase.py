"""Callbacks through the real lab Asterisk: agent first, then the contact, every outcome counted on the
SIPp phones (INVITEs per number) as well as in the callback's record."""

from __future__ import annotations

import pytest
from callback_lab import Lab, unique_number

from asterisk_cb.core.model import FinishReason, LegRole, Outcome, State

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"


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
