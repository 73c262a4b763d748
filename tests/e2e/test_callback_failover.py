"""The failover queue phase on the real lab: after the agent phase, the contact is dialled alone and,
once answered, waits in the lab's `failover` queue (members 1003 and 1004) until a member takes it.
Counted on the SIPp side (INVITEs per number and per member) and in the callback's record."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest
from callback_lab import MEMBERS, Lab, leg_channel, unique_number, until_equal

from asterisk_cb.core.model import Callback, EventKind, FinishReason, LegRole, Outcome, Phase, State
from asterisk_cb.telephony.ari import AriNotFound
from asterisk_cb.telephony.progress import queue_channel_id

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
RETRY_S = 3


async def _failover_settings(lab: Lab, **more: str) -> None:
    await lab.set(
        failover_queue="failover",
        retry_interval=f"{RETRY_S}s",
        agent_ring_timeout="5s",
        contact_ring_timeout="2s",
        **more,
    )


async def _queue_priority(lab: Lab, queued: Callback) -> str | None:
    """QUEUE_PRIO on the half of the queue's Local channel that runs Queue(). QUEUED is committed
    before that channel is created and dialled (its variables are copied then): wait for it."""
    attempt = queued.current_attempt
    assert attempt is not None
    async with asyncio.timeout(10):
        while True:
            with contextlib.suppress(AriNotFound):
                if priority := await lab.ari.get_variable(f"{queue_channel_id(attempt.id)}-2", "QUEUE_PRIO"):
                    return priority
            await asyncio.sleep(0.05)


def _gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def test_agent_phase_attempts_then_a_queue_member_reaches_the_contact(
    lab: Lab, members_answer: None
) -> None:
    lab.phone(AGENT, "answer")
    await _failover_settings(lab, max_attempts="2", queue_max_attempts="2", queue_timeout="20s")
    number = unique_number("20204")  # rings 4 s, then answers: never within the agent phase's 2 s
    member_invites = {m: len(lab.agent_invites(m).times(m)) for m in MEMBERS}

    scheduled = await lab.schedule(number, AGENT, in_s=0.5, name="Queue Test")
    await lab.wait_for(scheduled.id, lambda cb: cb.phase is Phase.QUEUE, timeout_s=40)
    # The user gives the queue phase a longer contact ring (run-time setting, as `settings set` does).
    await lab.set(contact_ring_timeout="10s")
    talking = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS, timeout_s=40)
    await lab.ari.hangup(leg_channel(talking, LegRole.CONTACT))  # the contact ends the talk
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=15)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert (done.agent_attempts, done.queue_attempts) == (2, 0)
    agent_phase, queue_phase = done.attempts[:2], done.attempts[2:]
    assert [a.outcome for a in agent_phase] == [Outcome.NO_ANSWER, Outcome.NO_ANSWER]
    [queued] = queue_phase
    assert queued.phase is Phase.QUEUE and queued.outcome is Outcome.COMPLETED
    member_leg = queued.leg(LegRole.MEMBER)
    assert member_leg is not None and member_leg.endpoint in {f"PJSIP/{m}" for m in MEMBERS}
    invites = lab.contact_invites().times(number)
    assert len(invites) == 3  # max_attempts in the agent phase, one in the queue phase
    assert all(gap >= RETRY_S for gap in _gaps(invites))
    rung = {m: len(lab.agent_invites(m).times(m)) - n for m, n in member_invites.items()}
    assert rung[member_leg.endpoint.removeprefix("PJSIP/")] == 1
    kinds = await lab.kinds(scheduled.id)
    for kind in (EventKind.FAILOVER, EventKind.QUEUE_ENTERED, EventKind.MEMBER_ANSWERED, EventKind.COMPLETED):
        assert kind in kinds
    await until_equal(lab.our_channels, [])
    assert lab.answer_marks() == []  # the daemon saw the member answer: nothing recorded


async def test_contact_never_answers_in_the_queue_phase_either_exhausted(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await _failover_settings(lab, max_attempts="1", queue_max_attempts="2", queue_timeout="20s")
    number = unique_number("480")  # rings until cancelled

    scheduled = await lab.schedule(number, AGENT, in_s=0.5)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=60)

    assert (done.state, done.finish_reason) == (State.EXHAUSTED, FinishReason.QUEUE_ATTEMPTS)
    assert (done.agent_attempts, done.queue_attempts) == (1, 2)
    assert [a.phase for a in done.attempts] == [Phase.AGENT, Phase.QUEUE, Phase.QUEUE]
    assert all(a.outcome is Outcome.NO_ANSWER for a in done.attempts)
    invites = lab.contact_invites().times(number)
    assert len(invites) == 3
    assert all(gap >= RETRY_S for gap in _gaps(invites))
    await until_equal(lab.our_channels, [])


async def test_no_member_answers_within_queue_timeout_counts_queue_attempts(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    for member in MEMBERS:
        lab.phone(member, "noanswer")
    try:
        await _failover_settings(
            lab, max_attempts="1", queue_max_attempts="2", queue_timeout="4s", queue_priority="5"
        )
        number = unique_number("20204")  # rings 4 s, then answers: never within the agent phase's 2 s
        scheduled = await lab.schedule(number, AGENT, in_s=0.5)
        await lab.wait_for(scheduled.id, lambda cb: cb.phase is Phase.QUEUE, timeout_s=20)
        await lab.set(contact_ring_timeout="10s")
        queued = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.QUEUED, timeout_s=20)
        priority = await _queue_priority(lab, queued)
        done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=60)
    finally:
        for member in MEMBERS:
            lab.phone(member, "answer")

    assert priority == "5"  # what Queue() reads as the entry priority
    assert (done.state, done.finish_reason) == (State.EXHAUSTED, FinishReason.QUEUE_ATTEMPTS)
    queue_phase = done.attempts[1:]
    assert [a.outcome for a in queue_phase] == [Outcome.QUEUE_TIMEOUT, Outcome.QUEUE_TIMEOUT]
    for attempt in queue_phase:  # answered, then waited queue_timeout for a member
        assert attempt.ended_at is not None
        assert (attempt.ended_at - attempt.started_at).total_seconds() >= 4 + 4
    assert len(lab.contact_invites().times(number)) == 3
    assert EventKind.MEMBER_ANSWERED not in await lab.kinds(scheduled.id)
    await until_equal(lab.our_channels, [])


async def test_a_member_who_answered_while_no_daemon_watched_completes_the_callback_without_redialling(
    lab: Lab, members_answer: None
) -> None:
    """The daemon is gone while the contact waits in the queue; a member answers and hangs up before a
    new daemon takes over (the contact's leg stays, alone in the app): the answer Asterisk recorded on
    the queue's Local channel makes it completed, and the contact is not called again."""
    lab.phone(AGENT, "answer")
    for member in MEMBERS:
        Lab.phone(member, "answer", ring_s=2)
    await _failover_settings(lab, max_attempts="1", queue_timeout="30s")
    number = unique_number("2030430")  # rings 4 s (more than the agent phase's 2 s), then talks 30 s

    scheduled = await lab.schedule(number, AGENT, in_s=0.5)
    await lab.wait_for(scheduled.id, lambda cb: cb.phase is Phase.QUEUE, timeout_s=20)
    await lab.set(contact_ring_timeout="10s")
    queued = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.QUEUED, timeout_s=20)
    waiting = queue_channel_id(queued.attempts[-1].id)

    async def member_answered() -> bool:  # the channel is created just after QUEUED is committed
        with contextlib.suppress(AriNotFound):
            return (await lab.ari.get_channel(waiting)).state == "Up"
        return False

    async def waiting_in_queue() -> bool:  # the queue channel dialled: its half runs Queue()
        with contextlib.suppress(AriNotFound):
            return bool((await lab.ari.get_channel(f"{waiting}-2")).app_name)
        return False

    await until_equal(waiting_in_queue, True)  # the daemon goes only once the contact waits in the queue
    restarting = asyncio.create_task(lab.restart_daemon(10.0))
    try:
        await until_equal(member_answered, True)
        await lab.ari.hangup(f"{waiting}-2")  # the member's side ends the talk, while no daemon is up
    finally:
        await restarting  # a new daemon runs whatever happened, and the fixture stops it
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert (done.agent_attempts, done.queue_attempts) == (1, 0)
    assert len(lab.contact_invites().times(number)) == 2  # the agent phase's, the queue phase's
    assert EventKind.MEMBER_ANSWERED in await lab.kinds(scheduled.id)
    await until_equal(lab.our_channels, [])
    assert lab.answer_marks() == [f"/acb/{waiting}"]  # kept: the daemon may not delete it
