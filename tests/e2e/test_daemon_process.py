"""Faults of the daemon as admins run it: `asterisk-cb run` processes SIGKILLed or stopped mid-call.

Counted on both sides: the SIPp phones' INVITE logs (every file of the lab's invite_dir, so a phone
restarted in between is still counted) and the callbacks' records and events. Every take-over waits
for the killed daemon's lease to lapse: the [daemon] lease the test config sets (daemon_process.LEASE_S,
5 s), so each test takes well under a minute.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from pathlib import Path

import pytest
from callback_lab import (
    AGENTS,
    Lab,
    channel_app,
    invite_times,
    leg_channel,
    unique_number,
    until,
    until_equal,
)
from daemon_process import LEASE_S, RECHECK_S, DaemonProcess, Fleet
from lab import invites

from asterisk_cb.core.model import Callback, EventKind, FinishReason, LegRole, Outcome, Phase, State
from asterisk_cb.faults import STOP_AT_VARIABLE
from asterisk_cb.telephony.ami import AmiConnection, AmiSettings
from asterisk_cb.telephony.ari import AriNotFound
from asterisk_cb.telephony.progress import queue_channel_id
from asterisk_cb.telephony.queue_guard import PAUSE_REASON

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
QUEUE_MEMBERS = ("1003", "1004")  # the lab's failover queue
APP = "asterisk-cb-proc"
APP_TAKING_OVER = "asterisk-cb-proc-b"
# A take-over: the lease lapses, the restarted daemon claims and looks the channels up.
TAKE_OVER_S = LEASE_S + 15
SIGTERM_EXIT_S = 5.0


async def _kill_and_restart(fleet: Fleet, daemon: DaemonProcess) -> float:
    """SIGKILL: no handler runs, claims stay held, the websocket is cut. Returns when it happened."""
    killed_at = time.time()
    daemon.send(signal.SIGKILL)
    assert await daemon.exited(5) == -signal.SIGKILL
    await fleet.start(APP)
    return killed_at


async def test_sigkill_during_the_agent_ring_then_a_new_daemon_completes_and_dials_the_contact_once(
    fleet_lab: tuple[Fleet, Lab],
) -> None:
    fleet, lab = fleet_lab
    lab.phone(AGENT, "answer", ring_s=3)  # picks up while no daemon is there
    number = unique_number("20102")
    daemon = await fleet.start(APP)
    invites_before = len(lab.agent_invites(AGENT).times(AGENT))

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.AGENT_RINGING)
    # its phone rings (the INVITE follows the commit: counting at the commit raced it under load)
    await until(lambda: len(lab.agent_invites(AGENT).times(AGENT)) == invites_before + 1)
    agent_rings_before = invites_before + 1
    killed_at = await _kill_and_restart(fleet, daemon)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=TAKE_OVER_S + 20)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert len(invite_times(lab.info, number)) == 1
    kinds = await lab.kinds(scheduled.id)
    first_ring = done.attempts[0]
    if EventKind.RESUMED in kinds and len(done.attempts) == 1:  # the ringing call was followed again
        assert len(lab.agent_invites(AGENT).times(AGENT)) == agent_rings_before
    else:  # the ring was lost (answered into no app): rung again only after it had ended
        assert EventKind.CALL_LOST in kinds
        assert first_ring.ended_at is not None
        rings_after = [at for at in lab.agent_invites(AGENT).times(AGENT) if at > killed_at]
        assert all(at >= first_ring.ended_at.timestamp() for at in rings_after)
    await until_equal(lab.our_channels, [])


async def test_sigkill_during_the_contact_ring_then_a_new_daemon_resumes_the_same_call(
    fleet_lab: tuple[Fleet, Lab],
) -> None:
    fleet, lab = fleet_lab
    lab.phone(AGENT, "answer")
    await lab.set(contact_ring_timeout="90s")
    number = unique_number("20215")  # rings 15 s (beyond the lease), answers, stays until hung up
    daemon = await fleet.start(APP)

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.CONTACT_RINGING)
    await until(lambda: len(invite_times(lab.info, number)) == 1)  # the contact's phone surely rings
    await _kill_and_restart(fleet, daemon)
    talking = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS, timeout_s=60)
    await lab.ari.hangup(leg_channel(talking, LegRole.AGENT))  # the agent ends the talk
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=15)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert len(done.attempts) == 1
    assert EventKind.RESUMED in await lab.kinds(scheduled.id)
    assert len(invite_times(lab.info, number)) == 1
    await until_equal(lab.our_channels, [])


async def test_sigkill_during_the_contact_ring_and_the_call_over_before_a_daemon_is_back_is_not_redialled(
    fleet_lab: tuple[Fleet, Lab],
) -> None:
    """The contact answers and hangs up while no daemon runs (started again only after the call):
    the answer Asterisk recorded makes it completed, and the contact is not called again."""
    fleet, lab = fleet_lab
    lab.phone(AGENT, "answer")
    await lab.set(contact_ring_timeout="30s", retry_interval="2s")
    number = unique_number("2030303")  # rings 3 s, answers, hangs up 3 s later
    daemon = await fleet.start(APP)

    scheduled = await lab.schedule(number, AGENT)
    ringing = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.CONTACT_RINGING)
    await until(lambda: len(invite_times(lab.info, number)) == 1)  # the contact's phone surely rings
    daemon.send(signal.SIGKILL)
    assert await daemon.exited(5) == -signal.SIGKILL
    contact = leg_channel(ringing, LegRole.CONTACT)
    await until_equal(lambda: _channel_state(lab, contact), "Up")  # answered, nobody watching
    await until_equal(lambda: _channel_state(lab, contact), None)  # and hung up
    await fleet.start(APP)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=TAKE_OVER_S)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert len(done.attempts) == 1
    assert len(invite_times(lab.info, number)) == 1
    await until_equal(lab.our_channels, [])
    assert lab.answer_marks() == [f"/acb/{contact}"]  # kept: the daemon may not delete it


async def test_sigkill_during_the_talk_then_a_new_daemon_follows_it_to_the_end_without_redialling(
    fleet_lab: tuple[Fleet, Lab],
) -> None:
    fleet, lab = fleet_lab
    lab.phone(AGENT, "answer")
    number = unique_number("20120")  # talks 20 s (beyond the lease), then hangs up
    daemon = await fleet.start(APP)

    scheduled = await lab.schedule(number, AGENT)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS)
    await _kill_and_restart(fleet, daemon)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=TAKE_OVER_S + 30)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert len(done.attempts) == 1
    assert EventKind.RESUMED in await lab.kinds(scheduled.id)
    assert len(invite_times(lab.info, number)) == 1
    await until_equal(lab.our_channels, [])


async def test_sigterm_exits_promptly_leaves_the_call_up_and_the_restarted_daemon_resumes_it(
    fleet_lab: tuple[Fleet, Lab],
) -> None:
    fleet, lab = fleet_lab
    lab.phone(AGENT, "answer")
    number = unique_number("20190")  # would talk 90 s
    daemon = await fleet.start(APP)

    scheduled = await lab.schedule(number, AGENT)
    talking = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS)
    daemon.send(signal.SIGTERM)
    assert await daemon.exited(SIGTERM_EXIT_S) == 0
    # both legs (the contact's a Local pair) still up
    assert sorted(talking.attempts[-1].channel_ids) == sorted(await lab.our_channels())
    assert (await lab.store.get(scheduled.id)).state is State.IN_PROGRESS  # type: ignore[union-attr]

    await fleet.start(APP)
    done = await _resumed_then_hung_up(lab, scheduled.id, leg_channel(talking, LegRole.AGENT))

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert len(done.attempts) == 1
    assert len(invite_times(lab.info, number)) == 1
    await until_equal(lab.our_channels, [])


async def _resumed_then_hung_up(lab: Lab, callback_id: str, agent_channel: str) -> Callback:
    """Wait until a daemon took the live call over (event ``resumed``), then the agent hangs up."""

    async def resumed() -> bool:
        return EventKind.RESUMED in await lab.kinds(callback_id)

    await until_equal(resumed, True, TAKE_OVER_S)
    await lab.ari.hangup(agent_channel)
    return await lab.wait_for(callback_id, lambda cb: cb.state.is_finished, timeout_s=15)


async def test_two_daemons_one_sigkilled_midway_the_survivor_finishes_every_callback_dialling_once(
    fleet_lab: tuple[Fleet, Lab],
) -> None:
    """The survivor takes over the dead daemon's live talks (their channels sit in the dead daemon's
    ARI app, so the survivor hears of their end only by looking the channels up, after RECHECK_S).
    Two callbacks of one agent are due at once, split between the daemons; and once the dead daemon's
    lease has lapsed, a callback of a free agent comes due for the number whose talk it held: no agent
    and no number is ever in two calls at once."""
    fleet, lab = fleet_lab
    for agent in AGENTS:
        lab.phone(agent, "answer")
    # each first talk outlasts the killed daemon's lease, so the talk live at the kill is still live at
    # take-over; the second callbacks of the same agents talk 5 s
    firsts = {agent: unique_number("20120") for agent in AGENTS[:-1]}
    seconds = {agent: unique_number("20105") for agent in AGENTS[:2]}
    doomed = await fleet.start(f"{APP}-a")
    await fleet.start(f"{APP}-b")

    scheduled = [
        await lab.schedule(numbers[agent], agent, in_s=2)
        for numbers in (firsts, seconds)
        for agent in numbers
    ]
    taken_over = await _until_holding_a_talk(lab, scheduled, doomed.pid)
    doomed.send(signal.SIGKILL)
    talking = await lab.store.get(taken_over)
    assert talking is not None
    scheduled.append(await lab.schedule(talking.contact_number, AGENTS[-1], in_s=LEASE_S + 2))
    finish_within = 2 * 20 + LEASE_S + RECHECK_S + 30  # two talks in a row, the take-over, the look-up
    done = await asyncio.gather(
        *(lab.wait_for(cb.id, lambda cb: cb.state.is_finished, timeout_s=finish_within) for cb in scheduled)
    )

    assert [(cb.state, len(cb.attempts)) for cb in done] == [(State.COMPLETED, 1)] * len(scheduled)
    for number in {cb.contact_number for cb in done}:
        calls = [cb for cb in done if cb.contact_number == number]
        assert len(invite_times(lab.info, number)) == len(calls)
        _never_two_at_once(calls)
    for agent in AGENTS:
        _never_two_at_once([cb for cb in done if cb.agent == agent])
    assert EventKind.RESUMED in await lab.kinds(taken_over)
    await until_equal(lab.our_channels, [])


def _never_two_at_once(callbacks: list[Callback]) -> None:
    """Each call (first ring to hangup, as recorded) started after the one before it ended."""
    spans = sorted((cb.attempts[0].started_at, cb.attempts[0].ended_at) for cb in callbacks)
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert ended is not None and started >= ended, spans


async def _until_holding_a_talk(lab: Lab, callbacks: list[Callback], pid: int) -> str:
    """The id of a callback in progress held by the daemon with ``pid`` (lease owner host:pid:...),
    at a moment when none of that daemon's other calls is ringing: a kill between the commit of a
    ring and its dial is the resumer's "lost, dial again" case (tested on its own), not this test's."""
    async with asyncio.timeout(30):
        while True:
            held = [callback for callback in await _held_by(lab, callbacks, pid) if callback.state.is_live]
            talking = [callback.id for callback in held if callback.state is State.IN_PROGRESS]
            if talking and len(talking) == len(held):
                return talking[0]
            await asyncio.sleep(0.05)


async def _held_by(lab: Lab, callbacks: list[Callback], pid: int) -> list[Callback]:
    """The callbacks whose lease the daemon with ``pid`` holds, as they stand now."""
    held = []
    for callback in callbacks:
        owner = await lab.redis.hget(lab.store.keys.callback(callback.id), "_own")
        current = await lab.store.get(callback.id)
        if owner is not None and owner.split(":")[1] == str(pid) and current is not None:
            held.append(current)
    return held


async def test_sigkill_while_the_contact_waits_in_the_failover_queue_a_member_answering_unseen_is_followed(
    fleet_lab: tuple[Fleet, Lab],
) -> None:
    """The queue phase's take-over: the contact waits in the lab's failover queue (a member ringing),
    the daemon is SIGKILLed, the member answers while no daemon is there; the restarted
    daemon finds the queue's Local channel Up, records the member's answer and follows the talk."""
    fleet, lab = fleet_lab
    lab.phone(AGENT, "answer")
    for member in QUEUE_MEMBERS:  # a member answers 12 s into its ring: after the kill below
        lab.phone(member, "answer", ring_s=12)
    try:
        await lab.set(
            failover_queue="failover",
            max_attempts="1",
            queue_max_attempts="1",
            contact_ring_timeout="2s",  # the agent phase misses the contact, who answers after 4 s
            queue_timeout="90s",
        )
        number = unique_number("20204")
        daemon = await fleet.start(APP)
        scheduled = await lab.schedule(number, AGENT)
        await lab.wait_for(scheduled.id, lambda cb: cb.phase is Phase.QUEUE, timeout_s=40)
        await lab.set(contact_ring_timeout="10s")  # within retry_interval, before the queue attempt
        queued = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.QUEUED, timeout_s=40)
        # the contact waits in the queue once the daemon has dialled the queue's channel: its dialplan
        # half runs Queue() (QUEUED is recorded before; killed in between, see the unit tests)
        await until_equal(lambda: channel_app(lab, f"{_queue_channel(queued)}-2"), "Queue")
        daemon.send(signal.SIGKILL)
        assert await daemon.exited(5) == -signal.SIGKILL
        await until_equal(lambda: _channel_state(lab, _queue_channel(queued)), "Up", timeout_s=60)
    finally:
        for member in QUEUE_MEMBERS:
            lab.phone(member, "answer")
    await fleet.start(APP)
    talking = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS, TAKE_OVER_S)
    await lab.ari.hangup(leg_channel(talking, LegRole.CONTACT))  # the contact ends the talk
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=15)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert [(a.phase, a.outcome) for a in done.attempts] == [
        (Phase.AGENT, Outcome.NO_ANSWER),
        (Phase.QUEUE, Outcome.COMPLETED),
    ]
    member_leg = done.attempts[-1].leg(LegRole.MEMBER)
    assert member_leg is not None and member_leg.endpoint in {f"PJSIP/{m}" for m in QUEUE_MEMBERS}
    assert EventKind.RESUMED in await lab.kinds(scheduled.id)
    assert len(invite_times(lab.info, number)) == 2  # one per attempt, none after the take-over
    await until_equal(lab.our_channels, [])


def _queue_channel(callback: Callback) -> str:
    attempt = callback.current_attempt
    assert attempt is not None
    return queue_channel_id(attempt.id)


async def _channel_state(lab: Lab, channel_id: str) -> str | None:
    try:
        return (await lab.ari.get_channel(channel_id)).state
    except AriNotFound:
        return None


async def test_max_calls_one_places_the_second_callback_only_after_the_first_call_ended(
    fleet_lab: tuple[Fleet, Lab],
) -> None:
    """``[dialing] max_calls = 1``: the daemon's one call at a time; the second callback waits in the
    schedule (no attempt, no hold) and rings its agent once the first call is over."""
    fleet, lab = fleet_lab
    fleet.dialing = "max_calls = 1\n"
    agents = ("1001", "1002")
    for agent in agents:
        lab.phone(agent, "answer")
    numbers = [unique_number("20103") for _ in agents]
    await fleet.start(APP)
    rings_before = len(lab.agent_invites(agents[1]).times(agents[1]))

    scheduled = [
        await lab.schedule(number, agent, in_s=2 + 0.2 * n)
        for n, (number, agent) in enumerate(zip(numbers, agents, strict=True))
    ]
    done = [await lab.wait_for(cb.id, lambda cb: cb.state.is_finished, timeout_s=60) for cb in scheduled]

    assert [(cb.state, len(cb.attempts)) for cb in done] == [(State.COMPLETED, 1)] * 2
    first_ended = done[0].attempts[0].ended_at
    assert first_ended is not None and done[1].attempts[0].started_at >= first_ended
    [second_ring] = lab.agent_invites(agents[1]).times(agents[1])[rings_before:]
    assert second_ring >= first_ended.timestamp()
    assert EventKind.HELD not in await lab.kinds(scheduled[1].id)


# --- the dial fence: a daemon stalled between committing an attempt and dialling it ------------------


@pytest.mark.parametrize(
    ("point", "why_not_dialled"),
    [
        ("committed:queue:contact_ringing", "-contact was dialled: not dialling"),
        ("dial:queue:contact", "not sent: its deadline passed"),
    ],
    ids=["stalled before creating the contact's channel", "stalled after the fence, before the dial"],
)
async def test_a_daemon_stalled_between_commit_and_dial_never_dials_once_another_took_over(
    fleet_lab: tuple[Fleet, Lab], point: str, why_not_dialled: str
) -> None:
    """Point 1 of the hardening issue, made deterministic by the fault hook (``asterisk_cb.faults``):
    daemon A stops itself (SIGSTOP) at ``point`` of the queue phase, where the contact rings first;
    daemon B takes the callback over once A's lease lapsed, records A's attempt lost and dials a new
    one; then A goes on (SIGCONT). The contact (480: rings until cancelled, so every ring's end is
    logged) must never ring twice at once, and every ring must be an attempt on record that is not
    lost: A's stale attempt dials nobody."""
    fleet, lab = fleet_lab
    lab.phone(AGENT, "answer")
    await lab.set(
        failover_queue="failover",
        max_attempts="1",
        queue_max_attempts="2",
        retry_interval="2s",
        contact_ring_timeout="6s",
    )
    number = unique_number("480")
    stalled = await fleet.start(APP, {STOP_AT_VARIABLE: point})
    scheduled = await lab.schedule(number, AGENT)
    await until(lambda: _process_state(stalled.pid) == "T", 60)
    held = await lab.store.get(scheduled.id)
    assert held is not None and held.phase is Phase.QUEUE and held.state is State.CONTACT_RINGING
    stale_attempt = held.attempts[-1].id

    await fleet.start(APP_TAKING_OVER)
    await lab.wait_for(scheduled.id, lambda cb: _ringing_again(cb, stale_attempt), timeout_s=TAKE_OVER_S + 15)
    stalled.send(signal.SIGCONT)  # A goes on while B's attempt rings
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=60)

    [stale] = [attempt for attempt in done.attempts if attempt.id == stale_attempt]
    assert stale.outcome is Outcome.LOST
    rang = [attempt for attempt in done.attempts if attempt.outcome is not Outcome.LOST]
    assert [attempt.phase for attempt in rang] == [Phase.AGENT, Phase.QUEUE]  # the lost one counts too
    assert len(_contact_rings(lab, number)) == len(rang)
    _one_ring_at_a_time(_contact_rings(lab, number))
    await until(lambda: why_not_dialled in stalled.log.read_text())
    await until_equal(lab.our_channels, [])


def _process_state(pid: int) -> str:
    """The state letter of /proc/<pid>/stat: T once the process stopped itself."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def _ringing_again(callback: Callback, stale_attempt: str) -> bool:
    """Another daemon dials a new attempt after the stale one (recorded lost)."""
    ids = [attempt.id for attempt in callback.attempts]
    return callback.state is State.CONTACT_RINGING and ids[-1] != stale_attempt and stale_attempt in ids


def _contact_rings(lab: Lab, number: str) -> list[tuple[float, float]]:
    """Each INVITE to ``number`` with the time its CANCEL came (the phone rings until cancelled)."""
    directory = Path(lab.info["contacts"]["invite_dir"])
    ended = {cancel.call_id: cancel.time for cancel in invites.cancels(directory)}
    return [
        (invite.time, ended.get(invite.call_id, float("inf"))) for invite in invites.read(directory, number)
    ]


def _one_ring_at_a_time(rings: list[tuple[float, float]]) -> None:
    for (_, ended), (next_started, _) in itertools.pairwise(sorted(rings)):
        assert next_started >= ended, f"the contact rang twice at once: {rings}"


async def test_a_daemon_stalled_after_committing_an_agent_ring_never_rings_the_agent_once_taken_over(
    fleet_lab: tuple[Fleet, Lab],
) -> None:
    """The agent's side of the fence: A stops right after committing the agent's ring; B takes over,
    records that ring lost and rings the agent itself; A, resumed, rings nobody. Every ring of the
    agent's phone is B's."""
    fleet, lab = fleet_lab
    lab.phone(AGENT, "answer", ring_s=2)
    number = unique_number("20102")  # answers, hangs up 2 s later
    stalled = await fleet.start(APP, {STOP_AT_VARIABLE: "committed:agent:agent_ringing"})
    scheduled = await lab.schedule(number, AGENT)
    await until(lambda: _process_state(stalled.pid) == "T", 60)
    stopped_at = time.time()

    await fleet.start(APP_TAKING_OVER)
    await lab.wait_for(scheduled.id, lambda cb: len(cb.attempts) == 2, timeout_s=TAKE_OVER_S + 15)
    stalled.send(signal.SIGCONT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=60)
    await until(lambda: "lease lost" in stalled.log.read_text())
    await asyncio.sleep(1)  # a late ring would have been sent by now

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert [attempt.outcome for attempt in done.attempts][:1] == [Outcome.LOST]
    assert len([at for at in lab.agent_invites(AGENT).times(AGENT) if at > stopped_at]) == 1
    assert len(invite_times(lab.info, number)) == 1
    await until_equal(lab.our_channels, [])


PAUSE_SWEEP_S = 3  # [daemon] pause_sweep for the test below (the shortest allowed)


async def _pause_of(ami: AmiConnection, agent: str) -> tuple[bool, str]:
    [member] = [m for m in await ami.queue_members("support") if m.interface == f"PJSIP/{agent}"]
    return member.paused, member.paused_reason


async def test_the_periodic_sweep_lifts_a_callback_pause_nobody_holds_but_not_a_live_ones_nor_the_agents(
    fleet_lab: tuple[Fleet, Lab],
) -> None:
    """A "callback" pause left on 1002 (a lost AMI answer, a dead daemon) while the daemon runs is lifted
    by its periodic sweep within ``pause_sweep``; the pause of 1001, whose callback talks (its call lock
    holds), stays until that call ends, and 1003's own pause ("lunch") stays."""
    fleet, lab = fleet_lab
    fleet.daemon["pause_sweep"] = f"{PAUSE_SWEEP_S}s"
    lab.phone(AGENT, "answer")
    info = lab.info["ami"]
    ami = AmiConnection(AmiSettings(info["user"], info["secret"], info["host"], info["port"]))
    await ami.start()
    try:
        await ami.wait_ready(10)
        daemon = await fleet.start(APP)
        scheduled = await lab.schedule(unique_number("20120"), AGENT, in_s=0.5)  # talks 20 s
        await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS)
        await ami.queue_pause("PJSIP/1002", True, queue="support", reason=PAUSE_REASON)
        await ami.queue_pause("PJSIP/1003", True, queue="support", reason="lunch")
        planted = time.monotonic()

        await until_equal(lambda: _pause_of(ami, "1002"), (False, ""), timeout_s=PAUSE_SWEEP_S + 5)
        lifted_after_s = time.monotonic() - planted
        live = await _pause_of(ami, AGENT)
        still_talking = await lab.store.get(scheduled.id)
        own = await _pause_of(ami, "1003")
        done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)
        await until_equal(lambda: _pause_of(ami, AGENT), (False, ""), timeout_s=5)  # its run lifted it
    finally:
        for agent in ("1002", "1003"):
            await ami.queue_pause(f"PJSIP/{agent}", False, queue="support", reason="")
        await ami.stop()

    print(f"callback pause lifted {lifted_after_s:.1f} s after it was set (pause_sweep {PAUSE_SWEEP_S} s)")
    assert lifted_after_s <= PAUSE_SWEEP_S + 1
    assert live == (True, PAUSE_REASON)
    assert still_talking is not None and still_talking.state is State.IN_PROGRESS
    assert own == (True, "lunch")
    assert done.state is State.COMPLETED
    assert "lifted 1 callback pause(s) no callback holds: PJSIP/1002 in support" in daemon.log.read_text()
