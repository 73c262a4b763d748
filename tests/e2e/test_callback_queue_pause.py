"""While a callback rings or is live for an agent, no queue call reaches it: the daemon pauses the
agent's queue memberships (reason "callback") and lifts the pause when the callback's call ends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ami_relay import LossyAmi
from callback_lab import Lab, pbx_lab, unique_number, until, until_equal

from asterisk_cb.core.model import State
from asterisk_cb.telephony.ami import AmiConnection, AmiSettings
from asterisk_cb.telephony.ami_events import QueueMember
from asterisk_cb.telephony.queue_guard import PAUSE_REASON

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
OTHER_MEMBERS = ("1002", "1003", "1004")  # the rest of the lab's ringall `support` queue


@pytest.fixture
async def ami(lab_phones: dict[str, Any]) -> AsyncIterator[AmiConnection]:
    """The test's own AMI link (not the daemon's: the harness user), to read the queue memberships."""
    info = lab_phones["ami_harness"]
    link = AmiConnection(AmiSettings(info["user"], info["secret"], info["host"], info["port"]))
    await link.start()
    await link.wait_ready(10)
    try:
        yield link
    finally:
        await link.stop()


async def _membership(ami: AmiConnection, agent: str, queue: str = "support") -> QueueMember:
    [member] = [m for m in await ami.queue_members(queue) if m.interface == f"PJSIP/{agent}"]
    return member


async def _pause_of(ami: AmiConnection, agent: str, queue: str) -> tuple[bool, str]:
    member = await _membership(ami, agent, queue)
    return member.paused, member.paused_reason


async def _paused(ami: AmiConnection, agent: str) -> bool:
    return (await _membership(ami, agent)).paused


async def test_a_queue_call_skips_the_agent_of_a_live_callback_and_the_pause_is_lifted_after(
    lab: Lab, ami: AmiConnection
) -> None:
    for agent in (AGENT, *OTHER_MEMBERS):
        lab.phone(agent, "answer")
    number = unique_number("20110")  # answers, hangs up after 10 s
    assert not (await _membership(ami, AGENT)).paused

    scheduled = await lab.schedule(number, AGENT, in_s=0.5)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS)
    during = await _membership(ami, AGENT)
    agent_invites = len(lab.agent_invites(AGENT).times(AGENT))
    others_before = {agent: len(lab.agent_invites(agent).times(agent)) for agent in OTHER_MEMBERS}

    pbx_lab("call", "support", "--caller", str(uuid.uuid4().int)[:10], "--hold-s", "1")

    def another_member_rang() -> bool:
        return any(len(lab.agent_invites(a).times(a)) > n for a, n in others_before.items())

    await until(another_member_rang, timeout_s=10)
    still_live = await lab.store.get(scheduled.id)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)
    await until_equal(lambda: _paused(ami, AGENT), False, timeout_s=5)  # lifted once the call ended

    assert (during.paused, during.paused_reason) == (True, PAUSE_REASON)
    assert still_live is not None and still_live.state is State.IN_PROGRESS
    assert len(lab.agent_invites(AGENT).times(AGENT)) == agent_invites  # the queue call never rang it
    assert done.state is State.COMPLETED


async def test_a_daemon_starting_beside_a_live_callback_leaves_that_callbacks_pause(
    lab: Lab, ami: AmiConnection, second_daemon: Any
) -> None:
    """A second daemon starts on the same Redis while the first one's callback talks through the agent:
    its start-up lifts leftover "callback" pauses (one a dead daemon left on another agent), but not
    this one (the agent's call lock holds)."""
    lab.phone(AGENT, "answer")
    number = unique_number("20115")  # answers, hangs up after 15 s
    scheduled = await lab.schedule(number, AGENT, in_s=0.5)
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS)
    assert await _paused(ami, AGENT)
    left_by_the_dead = OTHER_MEMBERS[0]
    await ami.queue_pause(f"PJSIP/{left_by_the_dead}", True, queue="support", reason=PAUSE_REASON)

    await second_daemon.start()
    still = await _membership(ami, AGENT)
    lifted = not await _paused(ami, left_by_the_dead)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)
    await until_equal(lambda: _paused(ami, AGENT), False, timeout_s=5)  # lifted by its own callback

    assert (still.paused, still.paused_reason) == (True, PAUSE_REASON)
    assert lifted
    assert done.state is State.COMPLETED


async def test_pauses_whose_answers_were_lost_are_lifted_when_the_call_ends_but_not_the_agents_own(
    lossy_ami_lab: tuple[Lab, LossyAmi], ami: AmiConnection
) -> None:
    """The daemon's AMI link loses Asterisk's answers to both of 1003's pauses (support, failover):
    Asterisk paused it, the daemon only knows "maybe". During the call the agent pauses itself in
    failover ("lunch"). When the call ends the daemon reads QueueStatus and lifts support's "callback"
    pause; failover's, now the agent's own, stays. No periodic sweep runs in this daemon: the run did it."""
    lab, relay = lossy_ami_lab
    agent = "1003"
    lab.phone(agent, "answer")
    scheduled = await lab.schedule(unique_number("20105"), agent, in_s=0.5)  # talks 5 s
    await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS, timeout_s=30)
    during = [await _pause_of(ami, agent, queue) for queue in ("support", "failover")]
    await ami.queue_pause(f"PJSIP/{agent}", True, queue="failover", reason="lunch")
    try:
        done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)
        await until_equal(lambda: _pause_of(ami, agent, "support"), (False, ""), timeout_s=5)
        own = await _pause_of(ami, agent, "failover")
    finally:  # whatever the outcome, the lab's queues are left unpaused
        for queue in ("support", "failover"):
            await ami.queue_pause(f"PJSIP/{agent}", False, queue=queue, reason="")

    assert len(relay.lost) == 2  # both pauses' answers
    assert during == [(True, PAUSE_REASON)] * 2
    assert own == (True, "lunch")
    assert done.state is State.COMPLETED
