"""Answering machine detection through the real lab Asterisk: app_amd listening to the lab's in-Asterisk
answerers (scripts/lab/README.md: ``701SS...`` says "hello" then waits, ``702SS...`` plays a 4 s
greeting; both hang up SS seconds after answering).

These contacts never reach SIPp, so calls are counted in Asterisk's own records: the CDR row of each
call the answerer took (``dcontext = lab-answerers``), and the CEL bridge entries and exits of the
contact's channel, which say how long the contact was bridged with the agent after answering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime

import asyncpg
import pytest
from callback_lab import Lab, channel_app, unique_number, until_equal

from asterisk_cb.core.model import Callback, EventKind, FinishReason, LegRole, Outcome, Phase, State

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
REJECTING_AGENT = "1002"  # misses its one ring, so the callback goes straight to the failover queue
MEMBERS = ("1003", "1004")  # the lab's failover queue
CONNECTED_S = 0.5  # bridged with the agent longer than this after answering: the two could talk


async def answerer_calls(lab: Lab, number: str, expected: int) -> list[asyncpg.Record]:
    """The CDR rows of the calls the lab's answerer took for ``number`` (written when each call ends)."""
    connection = await asyncpg.connect(lab.info["postgres"]["dsn"])
    try:
        async with asyncio.timeout(15):
            while True:
                rows = await connection.fetch(
                    "SELECT billsec, lastapp FROM cdr WHERE dcontext = 'lab-answerers' AND dst = $1"
                    " ORDER BY calldate",
                    number,
                )
                if len(rows) >= expected:
                    return rows
                await asyncio.sleep(0.2)
    finally:
        await connection.close()


async def bridged_after_answer_s(lab: Lab, channel_id: str) -> float:
    """Seconds the contact's channel spent in the agent's bridge after it answered (CEL)."""
    connection = await asyncpg.connect(lab.info["postgres"]["dsn"])
    try:
        rows = await connection.fetch(
            "SELECT eventtype, eventtime FROM cel WHERE uniqueid = $1 ORDER BY eventtime, id", channel_id
        )
    finally:
        await connection.close()
    return _time_in_bridge_after_answer([(row["eventtype"], row["eventtime"]) for row in rows])


def _time_in_bridge_after_answer(events: list[tuple[str, datetime]]) -> float:
    answered_at = next((at for kind, at in events if kind == "ANSWER"), None)
    assert answered_at is not None, "the contact's channel never answered"
    total, entered = 0.0, None
    for kind, at in events:
        if kind == "BRIDGE_ENTER":
            entered = at
        elif kind == "BRIDGE_EXIT" and entered is not None:
            total += max(0.0, (at - max(entered, answered_at)).total_seconds())
            entered = None
    return total


def contact_channel(callback: Callback, index: int = -1) -> str:
    leg = callback.attempts[index].leg(LegRole.CONTACT)
    assert leg is not None and leg.channel_id is not None
    return leg.channel_id


async def test_amd_on_a_machine_is_hung_up_never_connected_counted_and_retried(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(amd="yes", retry_interval="3s", max_attempts="2", contact_ring_timeout="10s")
    number = unique_number("70230")  # a machine that would stay 30 s

    scheduled = await lab.schedule(number, AGENT)
    first = await lab.wait_for(scheduled.id, lambda cb: cb.agent_attempts == 1, timeout_s=30)
    assert first.state is State.SCHEDULED  # counted, waiting for the retry
    assert first.attempts[-1].outcome is Outcome.MACHINE
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert (done.state, done.finish_reason) == (State.EXHAUSTED, FinishReason.AGENT_ATTEMPTS)
    assert [attempt.outcome for attempt in done.attempts] == [Outcome.MACHINE, Outcome.MACHINE]
    kinds = await lab.kinds(scheduled.id)
    assert EventKind.CONTACT_ANSWERED not in kinds
    failed = [event for event in await lab.events(scheduled.id) if event.kind is EventKind.ATTEMPT_FAILED]
    assert [event.attributes["outcome"] for event in failed] == ["answering_machine"] * 2
    calls = await answerer_calls(lab, number, expected=2)
    assert len(calls) == 2, "each attempt called the machine once"
    for call in calls:  # hung up by us after the verdict, long before the machine's own 30 s
        assert call["lastapp"] == "Wait" and call["billsec"] < 15
    for index in (0, 1):
        assert await bridged_after_answer_s(lab, contact_channel(done, index)) < CONNECTED_S
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit
    assert lab.answer_marks() == []  # a machine or a seen answer: nothing recorded for a resumer


@pytest.fixture
def agent_rejects() -> Iterator[None]:
    Lab.phone(REJECTING_AGENT, "reject")
    yield
    Lab.phone(REJECTING_AGENT, "answer")


async def _straight_to_the_queue_with_amd(lab: Lab) -> None:
    """One missed agent ring ends the agent phase; the queue phase has one attempt."""
    await lab.set(
        amd="yes",
        failover_queue="failover",
        max_missed_agent_rings="1",
        queue_max_attempts="1",
        contact_ring_timeout="10s",
    )


async def test_amd_on_in_the_queue_phase_a_machine_is_never_put_into_the_queue(
    lab: Lab, agent_rejects: None
) -> None:
    await _straight_to_the_queue_with_amd(lab)
    number = unique_number("70230")
    member_rings = {member: len(lab.agent_invites(member).times(member)) for member in MEMBERS}

    scheduled = await lab.schedule(number, REJECTING_AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    assert (done.state, done.phase, done.finish_reason) == (
        State.EXHAUSTED,
        Phase.QUEUE,
        FinishReason.QUEUE_ATTEMPTS,
    )
    assert [attempt.outcome for attempt in done.attempts] == [Outcome.AGENT_REJECTED, Outcome.MACHINE]
    kinds = await lab.kinds(scheduled.id)
    assert EventKind.CONTACT_ANSWERED not in kinds and EventKind.QUEUE_ENTERED not in kinds
    assert {member: len(lab.agent_invites(member).times(member)) for member in MEMBERS} == member_rings
    [call] = await answerer_calls(lab, number, expected=1)
    assert call["lastapp"] == "Wait" and call["billsec"] < 15
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit


async def test_amd_on_in_the_queue_phase_a_human_waits_in_the_queue_for_a_member(
    lab: Lab, agent_rejects: None
) -> None:
    for member in MEMBERS:
        Lab.phone(member, "answer")
    await _straight_to_the_queue_with_amd(lab)
    number = unique_number("70112")  # says "hello", hangs up 12 s after answering

    scheduled = await lab.schedule(number, REJECTING_AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    assert (done.state, done.phase, done.finish_reason) == (State.COMPLETED, Phase.QUEUE, FinishReason.TALKED)
    assert [attempt.outcome for attempt in done.attempts] == [Outcome.AGENT_REJECTED, Outcome.COMPLETED]
    member = done.attempts[-1].leg(LegRole.MEMBER)
    assert member is not None and member.endpoint in {f"PJSIP/{m}" for m in MEMBERS}
    kinds = await lab.kinds(scheduled.id)
    assert kinds.index(EventKind.CONTACT_ANSWERED) < kinds.index(EventKind.QUEUE_ENTERED)
    [call] = await answerer_calls(lab, number, expected=1)
    assert call["lastapp"] == "Hangup"
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit


async def test_amd_on_a_human_is_connected_to_the_agent_and_completes(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(amd="yes", contact_ring_timeout="10s")
    number = unique_number("70108")  # says "hello", hangs up 8 s after answering

    scheduled = await lab.schedule(number, AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    [attempt] = done.attempts
    assert attempt.outcome is Outcome.COMPLETED
    assert EventKind.CONTACT_ANSWERED in await lab.kinds(scheduled.id)
    [call] = await answerer_calls(lab, number, expected=1)
    assert call["lastapp"] == "Hangup"  # the contact hung up itself, after talking
    # AMD took about 2 s of the 8 s: the rest was spent bridged with the agent
    assert await bridged_after_answer_s(lab, contact_channel(done)) > 3.0
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit
    assert lab.answer_marks() == []  # a machine or a seen answer: nothing recorded for a resumer


async def test_amd_off_a_machine_counts_as_answered(lab: Lab) -> None:
    """Today's behaviour without AMD, documented: the greeting is put through to the agent."""
    lab.phone(AGENT, "answer")
    await lab.set(contact_ring_timeout="10s")
    number = unique_number("70206")  # a 4 s greeting, hangs up 6 s after answering

    scheduled = await lab.schedule(number, AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert [attempt.outcome for attempt in done.attempts] == [Outcome.COMPLETED]
    [call] = await answerer_calls(lab, number, expected=1)
    assert call["lastapp"] == "Hangup"
    assert await bridged_after_answer_s(lab, contact_channel(done)) > 3.0


def test_time_in_bridge_counts_only_after_the_answer() -> None:
    def at(second: float) -> datetime:
        return datetime.fromtimestamp(1_800_000_000 + second)

    screened_machine = [("BRIDGE_ENTER", at(0)), ("ANSWER", at(5)), ("BRIDGE_EXIT", at(5.01))]
    human = [*screened_machine, ("BRIDGE_ENTER", at(7)), ("BRIDGE_EXIT", at(11))]
    assert _time_in_bridge_after_answer(screened_machine) == pytest.approx(0.01)
    assert _time_in_bridge_after_answer(human) == pytest.approx(4.01)
    without_amd = [("BRIDGE_ENTER", at(0)), ("ANSWER", at(1)), ("BRIDGE_EXIT", at(9))]
    assert _time_in_bridge_after_answer(without_amd) == 8


async def test_amd_on_a_daemon_stopped_while_amd_listens_the_next_one_takes_the_verdict(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(amd="yes", contact_ring_timeout="10s")
    number = unique_number("70120")  # says "hello", hangs up 20 s after answering

    scheduled = await lab.schedule(number, AGENT)
    ringing = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.CONTACT_RINGING)
    contact = contact_channel(ringing)
    await until_equal(lambda: channel_app(lab, contact), "AMD")
    await lab.restart_daemon(3.0)  # AMD's verdict (about 2 s) comes while no daemon is up
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert EventKind.RESUMED in await lab.kinds(scheduled.id)
    [call] = await answerer_calls(lab, number, expected=1)
    assert call["lastapp"] == "Hangup"  # the person hung up after talking: never called again
    assert await bridged_after_answer_s(lab, contact) > 3.0
