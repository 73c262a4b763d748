"""Faults around a live callback on the real lab: Asterisk itself stopped or killed mid-call.

Last in the e2e run on purpose: they restart the lab's Asterisk (and with it the phones)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from callback_lab import Lab, invite_times, leg_channel, pbx_lab, unique_number, until, until_equal

from asterisk_cb.core.inputs import Waiting
from asterisk_cb.core.model import EventKind, FinishReason, LegRole, Outcome, Phase, State

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"


def _stop_asterisk(info: dict[str, Any]) -> None:
    """A clean stop: Asterisk hangs up every channel and reports it before it goes."""
    pbx_lab("down", "asterisk")


def _kill_asterisk(info: dict[str, Any]) -> None:
    """SIGKILL to our lab's Asterisk: the wrapper in its pid file and the Asterisk process under it."""
    wrapper = int((Path(info["lab_dir"]) / "run" / "asterisk.pid").read_text().split()[0])
    children = Path(f"/proc/{wrapper}/task/{wrapper}/children").read_text().split()
    pids = [wrapper, *map(int, children)]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # gone before `up`, which refuses ports still held


@pytest.mark.parametrize(
    ("take_down", "reason"),
    [(_stop_asterisk, FinishReason.TALKED), (_kill_asterisk, FinishReason.LOST_DURING_TALK)],
    ids=["stopped", "killed"],
)
async def test_asterisk_gone_during_the_talk_completes_the_callback_without_redialling(
    lab: Lab, take_down: Any, reason: FinishReason
) -> None:
    lab.phone(AGENT, "answer")
    number = unique_number("20160")  # would talk a minute

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS)
    assert len(lab.contact_invites().times(number)) == 1
    went_down = time.time()
    # in a thread: the daemon's loop must keep renewing its lease meanwhile, as a real daemon would
    await asyncio.to_thread(take_down, lab.info)
    await asyncio.to_thread(pbx_lab, "up")
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    # the contact was reached: completed, never called again; killed, the outcome is unknown (lost)
    assert (done.state, done.finish_reason) == (State.COMPLETED, reason)
    kinds = await lab.kinds(scheduled.id)
    assert EventKind.RESUMED not in kinds  # the same daemon saw it through
    assert (EventKind.CALL_LOST in kinds) is (reason is FinishReason.LOST_DURING_TALK)
    assert [at for at in lab.contact_invites().times(number) if at > went_down] == []  # no redial


async def test_asterisk_killed_during_the_contact_ring_counts_the_attempt_and_tries_again(
    lab: Lab,
) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(retry_interval="2s", max_attempts="2", contact_ring_timeout="3s", reschedule_delay="1s")
    number = unique_number("480")  # rings until cancelled

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.CONTACT_RINGING)
    await until(lambda: len(lab.contact_invites().times(number)) == 1)  # the contact's phone rings
    await asyncio.to_thread(_kill_asterisk, lab.info)
    await asyncio.to_thread(pbx_lab, "up")
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    # the lost ring is a counted attempt (the contact's phone did ring), then one more, then done
    assert (done.state, done.finish_reason) == (State.EXHAUSTED, FinishReason.AGENT_ATTEMPTS)
    assert [attempt.outcome for attempt in done.attempts] == [Outcome.LOST, Outcome.NO_ANSWER]
    assert len(lab.contact_invites().times(number)) == 2
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit


async def test_asterisk_stopped_during_a_talk_no_daemon_watched_is_completed_not_redialled(lab: Lab) -> None:
    """The daemon is gone while the contact rings; the contact answers; then Asterisk is stopped (and
    started again) before a daemon takes the callback over: the answer was recorded in AstDB as
    Asterisk hung the call up, and survives the restart."""
    lab.phone(AGENT, "answer")
    await lab.set(contact_ring_timeout="20s", retry_interval="2s")
    number = unique_number("20202")  # rings 2 s, answers, stays until hung up

    scheduled = await lab.schedule(number, AGENT)
    ringing = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.CONTACT_RINGING)
    await until(lambda: len(lab.contact_invites().times(number)) == 1)  # it surely rings
    restarting = asyncio.create_task(lab.restart_daemon(15.0))
    contact_channel = leg_channel(ringing, LegRole.CONTACT)

    async def contact_answered() -> str:
        return (await lab.ari.get_channel(contact_channel)).state

    try:
        await until_equal(contact_answered, "Up")
        await asyncio.to_thread(_stop_asterisk, lab.info)
        await asyncio.to_thread(pbx_lab, "up")
    finally:
        await restarting  # a new daemon runs whatever happened, and the fixture stops it
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert len(done.attempts) == 1
    assert len(invite_times(lab.info, number)) == 1  # in every log: a restarted phone starts a new one
    assert lab.answer_marks() == [f"/acb/{contact_channel}"]  # kept: the daemon may not delete it


async def test_the_queue_phase_waits_while_asterisk_is_down_and_spends_no_attempt_on_the_outage(
    lab: Lab,
) -> None:
    """ARI down when a queue-phase attempt comes due: the callback is held ("PBX unreachable") until
    Asterisk is back, then the contact is dialled; the outage costs no queue attempt (before, each due
    time during it failed to create the channel and counted, so a callback could end exhausted
    without ever ringing)."""
    lab.phone(AGENT, "answer")
    await lab.set(
        failover_queue="failover",
        max_attempts="1",
        queue_max_attempts="1",
        contact_ring_timeout="3s",
        retry_interval="4s",
        reschedule_delay="1s",
    )
    number = unique_number("480")  # rings until cancelled

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.phase is Phase.QUEUE, timeout_s=20)
    await asyncio.to_thread(_stop_asterisk, lab.info)  # before the queue attempt is due (4 s)

    async def held_for_the_pbx() -> bool:
        events = await lab.events(scheduled.id)
        return any(event.attributes.get("reason") == Waiting.PBX.value for event in events)

    try:
        await until_equal(held_for_the_pbx, True, timeout_s=20)
        waiting = await lab.store.get(scheduled.id)
        assert waiting is not None and (waiting.state, waiting.queue_attempts) == (State.SCHEDULED, 0)
    finally:
        await asyncio.to_thread(pbx_lab, "up")
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)

    assert (done.state, done.finish_reason) == (State.EXHAUSTED, FinishReason.QUEUE_ATTEMPTS)
    assert [(attempt.phase, attempt.outcome) for attempt in done.attempts] == [
        (Phase.AGENT, Outcome.NO_ANSWER),
        (Phase.QUEUE, Outcome.NO_ANSWER),
    ]
    assert len(invite_times(lab.info, number)) == 2  # every log: the phones restarted with Asterisk
    await until_equal(lab.our_channels, [])
