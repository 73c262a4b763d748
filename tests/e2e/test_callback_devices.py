"""An agent with two phones (agent 1001's own and the lab's desk phone 1011, given to it by the
daemon's [agents] line): both ring at once, the first to answer takes the callback, the other gets
a CANCEL saying the call was answered elsewhere; a phone that is offline is left out, one on a call
makes the agent busy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from callback_lab import Lab, device_state, pbx_lab, unique_number, until, until_equal

from asterisk_cb.core.model import EventKind, FinishReason, LegRole, Outcome, State

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.agents("1001 = PJSIP/1001 & PJSIP/1011"),
]

AGENT, DESK = "1001", "1011"
ANSWERED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'  # PJSIP's CANCEL for cause 26


@pytest.fixture(autouse=True)
def phones_back_to_answering() -> Iterator[None]:
    """Other tests expect agent 1001 to answer; the desk phone is back for the next test too."""
    yield
    Lab.phone(AGENT, "answer")
    Lab.phone(DESK, "answer")


async def test_both_phones_ring_the_first_to_answer_takes_it_the_other_is_cancelled(lab: Lab) -> None:
    lab.phone(AGENT, "noanswer")  # rings until cancelled
    lab.phone(DESK, "answer", ring_s=2)  # both ring before this one answers
    await lab.set(agent_ring_timeout="10s")
    number = unique_number("20103")  # answers, hangs up after 3 s
    rings_before = {phone: len(lab.agent_invites(phone).times(phone)) for phone in (AGENT, DESK)}

    scheduled = await lab.schedule(number, AGENT, name="Grace Hopper")
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    [attempt] = done.attempts
    [agent_leg] = attempt.legs_of(LegRole.AGENT)  # the desk phone's ring: the second recorded id
    assert agent_leg.channel_id == agent_leg.uniqueid == f"acb-{attempt.id}-agent-2"
    assert {phone: len(lab.agent_invites(phone).times(phone)) for phone in (AGENT, DESK)} == {
        phone: count + 1 for phone, count in rings_before.items()
    }
    rang_at = [lab.agent_invites(phone).times(phone)[-1] for phone in (AGENT, DESK)]
    assert abs(rang_at[0] - rang_at[1]) < 1.0  # together (one originate after the other, ms apart)
    assert lab.agent_invites(AGENT).cancel_reasons() == [ANSWERED_ELSEWHERE]
    assert len(lab.contact_invites().times(number)) == 1
    kinds = await lab.kinds(scheduled.id)
    assert (kinds.count(EventKind.AGENT_RINGING), kinds.count(EventKind.AGENT_ANSWERED)) == (1, 1)
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit


async def test_a_daemon_gone_while_both_ring_is_replaced_by_one_that_follows_both(lab: Lab) -> None:
    lab.phone(AGENT, "noanswer")
    lab.phone(DESK, "answer", ring_s=9)  # answers after the new daemon took over (3 s lease)
    await lab.set(agent_ring_timeout="20s")
    number = unique_number("20102")
    rings_before = _rings(lab)

    scheduled = await lab.schedule(number, AGENT)
    await until(lambda: _rings(lab) == [count + 1 for count in rings_before])
    await lab.restart_daemon(0.5)  # both rings go on; the new daemon resumes the claim
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert EventKind.RESUMED in await lab.kinds(scheduled.id)
    [agent_leg] = done.attempts[-1].legs_of(LegRole.AGENT)
    assert agent_leg.channel_id == f"acb-{done.attempts[-1].id}-agent-2"
    assert lab.agent_invites(AGENT).cancel_reasons()[-1:] == [ANSWERED_ELSEWHERE]
    assert _rings(lab) == [count + 1 for count in rings_before]  # nobody rung again
    assert len(lab.contact_invites().times(number)) == 1


def _rings(lab: Lab) -> list[int]:
    return [len(lab.agent_invites(phone).times(phone)) for phone in (AGENT, DESK)]


async def test_an_offline_phone_is_left_out_and_only_the_ready_one_rings(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    lab.phone(DESK, "offline")
    await until_equal(lambda: device_state(lab, DESK), "UNAVAILABLE")
    number = unique_number("20102")
    desk_rings_before = len(lab.agent_invites(DESK).times(DESK))

    scheduled = await lab.schedule(number, AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert done.state is State.COMPLETED
    [attempt] = done.attempts
    assert [leg.channel_id for leg in attempt.legs_of(LegRole.AGENT)] == [f"acb-{attempt.id}-agent"]
    assert len(lab.agent_invites(DESK).times(DESK)) == desk_rings_before
    assert len(lab.contact_invites().times(number)) == 1


async def test_nobody_answering_either_phone_is_one_missed_ring(lab: Lab) -> None:
    lab.phone(AGENT, "reject")
    lab.phone(DESK, "noanswer")
    await lab.set(agent_ring_timeout="3s", max_missed_agent_rings="1")
    number = unique_number("200")

    scheduled = await lab.schedule(number, AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert (done.state, done.finish_reason) == (State.EXPIRED, FinishReason.AGENT_MISSED)
    [attempt] = done.attempts
    assert (attempt.outcome, attempt.hangup_cause) == (Outcome.AGENT_NO_ANSWER, 19)  # one rang out
    assert done.missed_agent_rings == 1
    assert lab.contact_invites().times(number) == []


async def test_a_phone_on_a_call_makes_the_agent_busy_and_neither_rings(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    lab.phone(DESK, "answer")
    await lab.set(reschedule_delay="2s")
    pbx_lab("call", DESK, "--hold-s", "6")  # the agent talks on its desk phone for 6 s
    await until_equal(lambda: device_state(lab, DESK), "INUSE")
    number = unique_number("20102")
    rings_before = len(lab.agent_invites(AGENT).times(AGENT))

    scheduled = await lab.schedule(number, AGENT, in_s=0.5)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    assert done.state is State.COMPLETED
    events = await lab.events(scheduled.id)
    unavailable = [event.at for event in events if event.kind is EventKind.AGENT_UNAVAILABLE]
    [rung] = [event.at for event in events if event.kind is EventKind.AGENT_RINGING]
    assert unavailable and rung > unavailable[-1]
    assert (rung - scheduled.due_at).total_seconds() >= 4  # not before the desk call was over
    assert len(lab.agent_invites(AGENT).times(AGENT)) == rings_before + 1
