"""A person's cancel and reschedule while the callback's call rings, through the real lab: the CLI
asks, the daemon holding the call hangs the ring up (SIPp phones and Asterisk show it), nothing is
counted, and the contact is dialled only when the callback says so."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from callback_lab import Lab, channel_app, device_state, leg_channel, unique_number, until, until_equal

from asterisk_cb.core.model import EventKind, FinishReason, LegRole, Outcome, State

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
RING_S = "30s"  # far longer than the test needs: a ring that ends did so because it was hung up


async def test_cancel_during_the_agent_ring_stops_it_and_never_dials_the_contact(
    lab: Lab, tmp_path: Path
) -> None:
    lab.phone(AGENT, "noanswer")
    await lab.set(agent_ring_timeout=RING_S)
    number = unique_number("20102")
    rings_before = len(lab.agent_invites(AGENT).times(AGENT))

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.AGENT_RINGING)
    await until(lambda: len(lab.agent_invites(AGENT).times(AGENT)) == rings_before + 1)  # it rings
    await until_equal(lambda: device_state(lab, AGENT), "RINGING")
    code, out, err = await lab.cli(tmp_path, "cancel", scheduled.id, "--wait", "10")

    assert (code, err) == (0, ""), out
    assert out.startswith("done: its call was ringing and has been hung up")
    await until_equal(lambda: device_state(lab, AGENT), "NOT_INUSE")  # the phone stopped ringing
    await until_equal(lab.our_channels, [])
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished)
    assert (done.state, done.cancelled_by) == (State.CANCELLED, "cli:" + getpass.getuser())
    assert [attempt.outcome for attempt in done.attempts] == [Outcome.CANCELLED]
    assert (done.missed_agent_rings, done.agent_attempts) == (0, 0)
    assert lab.contact_invites().times(number) == []
    assert len(lab.agent_invites(AGENT).times(AGENT)) == rings_before + 1
    assert (await lab.kinds(scheduled.id))[-1] is EventKind.CANCELLED


async def test_reschedule_during_the_contact_ring_stops_it_and_calls_again_at_the_new_time(
    lab: Lab, tmp_path: Path
) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(contact_ring_timeout=RING_S, max_attempts="1")
    number = unique_number("480")  # rings until cancelled

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.CONTACT_RINGING)
    await until(lambda: len(lab.contact_invites().times(number)) == 1)  # the contact's phone rings
    new_due = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    code, out, err = await lab.cli(tmp_path, "reschedule", scheduled.id, "--at", new_due.isoformat())

    assert (code, err) == (0, ""), out
    assert out.startswith("done: its call was ringing and has been hung up")
    await until_equal(lab.our_channels, [])  # the contact's ring (and the agent's leg) hung up
    moved = await lab.store.get(scheduled.id)
    assert moved is not None
    assert (moved.state, moved.due_at, moved.next_at) == (State.SCHEDULED, new_due, new_due)
    assert moved.agent_attempts == 0  # max_attempts=1: a counted attempt would have exhausted it
    assert [attempt.outcome for attempt in moved.attempts] == [Outcome.CANCELLED]
    assert len(lab.contact_invites().times(number)) == 1

    again = await lab.wait_for(scheduled.id, lambda cb: len(cb.attempts) == 2, timeout_s=30)
    assert again.attempts[-1].started_at >= new_due  # due again, not before the new time
    await until(lambda: len(lab.contact_invites().times(number)) == 2, timeout_s=30)
    code, out, _ = await lab.cli(tmp_path, "cancel", scheduled.id)
    assert code == 0 and "hung up" in out
    await until_equal(lab.our_channels, [])


async def test_a_cancel_asked_while_no_daemon_holds_the_ring_is_applied_by_the_one_resuming_it(
    lab: Lab, tmp_path: Path
) -> None:
    """The daemon stops during the agent ring (the ring goes on): the cancel is on record, and the
    daemon that takes the call over after the lease applies it on resume."""
    lab.phone(AGENT, "noanswer")
    await lab.set(agent_ring_timeout=RING_S)
    number = unique_number("20102")
    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.AGENT_RINGING)
    asked: list[tuple[int, str, str]] = []

    async def cancel_while_down() -> None:
        asked.append(await lab.cli(tmp_path, "cancel", scheduled.id, "--wait", "0"))

    await lab.restart_daemon(0.5, cancel_while_down)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=20)

    [(code, out, err)] = asked
    assert code == 0 and out.startswith("requested: its call is ringing"), (out, err)
    assert done.state is State.CANCELLED
    kinds = await lab.kinds(scheduled.id)
    assert kinds[-2:] == [EventKind.RESUMED, EventKind.CANCELLED]  # followed first, then cancelled
    await until_equal(lambda: device_state(lab, AGENT), "NOT_INUSE")
    await until_equal(lab.our_channels, [])
    assert lab.contact_invites().times(number) == []


async def test_a_cancel_while_amd_listens_to_an_answered_person_is_refused_and_the_talk_goes_on(
    lab: Lab, tmp_path: Path
) -> None:
    """The contact answered and AMD listens (about 2 s): not a ring any more. The request waits for
    the verdict; a person is then talking, so it is refused and the call is not cut."""
    lab.phone(AGENT, "answer")
    await lab.set(amd="yes", contact_ring_timeout="10s")
    number = unique_number("70106")  # the lab's answerer says "hello", hangs up 6 s after answering

    scheduled = await lab.schedule(number, AGENT)
    ringing = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.CONTACT_RINGING)
    contact_channel = leg_channel(ringing, LegRole.CONTACT)
    await until_equal(lambda: channel_app(lab, contact_channel), "AMD")
    code, out, err = await lab.cli(tmp_path, "cancel", scheduled.id, "--wait", "10")

    assert code == 3, (out, err)
    assert "call in progress; it completes at hangup" in err
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)
    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)


async def test_with_two_daemons_the_one_holding_the_ring_applies_the_cancel(
    pair_lab: Lab, tmp_path: Path
) -> None:
    """Whichever daemon carries the call: the request is announced to both, the holder applies it."""
    lab = pair_lab
    lab.phone(AGENT, "noanswer")
    await lab.set(agent_ring_timeout=RING_S)
    number = unique_number("20102")

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.AGENT_RINGING)
    await until_equal(lambda: device_state(lab, AGENT), "RINGING")
    code, out, err = await lab.cli(tmp_path, "cancel", scheduled.id, "--wait", "10")

    assert (code, err) == (0, ""), out
    assert out.startswith("done: its call was ringing and has been hung up")
    await until_equal(lambda: device_state(lab, AGENT), "NOT_INUSE")
    await until_equal(lab.our_channels, [])
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished)
    assert done.state is State.CANCELLED
    assert [attempt.outcome for attempt in done.attempts] == [Outcome.CANCELLED]  # hung up, not missed
    assert lab.contact_invites().times(number) == []
