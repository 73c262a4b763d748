"""The contact calls in first, end to end: a real `asterisk-cb run` with its FastAGI server, the lab's
Asterisk 22 running dialplan/callback-inbound.conf in its `support` route (the README's example), SIPp
phones and Redis.

What is checked is what Asterisk did: whom it dialled (AMI DialBegin, with the caller ID the agent's
phone was shown), what the hook set on the caller's channel (AMI Getvar while the call is up), when the
caller reached the queue (QueueCallerJoin after the channel's Newchannel), and what the contacts' phone
received afterwards (its INVITE log): no callback call once the talk settled it.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from callback_lab import Lab, pbx_cli, pbx_lab, until, until_equal
from daemon_process import DaemonProcess, Fleet
from lab.ami_client import LabAmi, Message
from lab_events import Events

from asterisk_cb.core.model import Callback, FinishReason, State

pytestmark = [pytest.mark.lab, pytest.mark.slow]

APP = "acb-call-in"
OWNER = "1001"
PREFIX = "CB"  # shown as "CB <name>": the hook adds the space
PRIORITY = "7"
RING_OWNER_S = 15  # the lab's support route rings the free owner this long (acb-inbound-owner)
# The hook's own limit (ACB_INBOUND_TIMEOUT's default, 0.2 s), plus what Answer() and Set() take.
HOOK_LIMIT_S = 0.2
ROUTING_SLACK_S = 0.3
WATCHED = {"Newchannel", "DialBegin", "QueueCallerJoin", "Hangup"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _subscriber() -> str:
    """A Berlin number nobody else uses: +49 30 <8 random digits>."""
    return "+4930" + str(uuid.uuid4().int)[:8]


@dataclass
class CallInLab:
    fleet: Fleet
    lab: Lab
    daemon: DaemonProcess
    ami: LabAmi

    async def callback(self, callback_id: str) -> Callback:
        found = await self.lab.store.get(callback_id)
        assert found is not None
        return found

    async def caller_channel(self, events: Events, number: str, timeout_s: float = 10) -> Message:
        """The caller's channel as Newchannel announced it (its uniqueid is its linkedid)."""

        def created() -> list[Message]:
            return [
                event
                for event in events.seen
                if event.get("Event") == "Newchannel"
                and event.get("CallerIDNum") == number
                and event.get("Uniqueid") == event.get("Linkedid")
            ]

        await until(lambda: bool(created()), timeout_s)
        return created()[0]

    async def variables(self, channel: str, *names: str) -> dict[str, str]:
        return {
            name: (await self.ami.action("Getvar", Channel=channel, Variable=name)).get("Value", "")
            for name in names
        }


@pytest.fixture
def phones() -> Iterator[Callable[..., None]]:
    touched: set[str] = set()

    def set_phone(agent: str, *behaviour: str) -> None:
        touched.add(agent)
        pbx_lab("phone", agent, *behaviour)

    yield set_phone
    for agent in touched:
        pbx_lab("phone", agent, "answer")


@pytest.fixture
async def call_in(fleet_lab: tuple[Fleet, Lab]) -> AsyncIterator[CallInLab]:
    fleet, lab = fleet_lab
    port = _free_port()
    fleet.feature_code = {"listen": f"127.0.0.1:{port}"}
    fleet.numbers = {"country_code": "49", "trunk_prefix": "0"}
    await lab.set(call_in_priority=PRIORITY, call_in_caller_id_prefix=PREFIX)
    daemon = await fleet.start(APP)
    pbx_lab("cli", f"dialplan set global ACB_AGI_URL agi://127.0.0.1:{port}")
    harness = lab.info["ami_harness"]
    try:
        async with LabAmi(harness["host"], harness["port"], harness["user"], harness["secret"]) as ami:
            await _until_free(ami, OWNER)
            yield CallInLab(fleet, lab, daemon, ami)
    finally:
        pbx_lab("cli", "dialplan set global ACB_AGI_URL agi://127.0.0.1:4573")
        async with LabAmi(harness["host"], harness["port"], harness["user"], harness["secret"]) as ami:
            await ami.action("Hangup", Channel=r"/^PJSIP\/(lab-caller|contacts|1[0-9]{3})-/")


async def _until_free(ami: LabAmi, agent: str) -> None:
    async def state() -> str:
        return (await ami.action("Getvar", Variable=f"DEVICE_STATE(PJSIP/{agent})")).get("Value", "")

    await until_equal(state, "NOT_INUSE", 15)


def _dials_to(events: Events, caller: str, device: str) -> list[Message]:
    return [
        event
        for event in events.seen
        if event.get("Event") == "DialBegin"
        and event.get("CallerIDNum") == caller
        and event.get("DestChannel", "").startswith(device + "-")
    ]


async def test_a_returning_contact_reaches_its_agent_and_the_talk_settles_the_callback(
    call_in: CallInLab, phones: Callable[..., None]
) -> None:
    """The issue's scenario: pending callback, the contact calls `support` from the same number, the
    owner is free: its phone rings first, showing the prefix; 25 s of talk complete the callback, and
    the contact's phone gets no INVITE at the old due time."""
    number = _subscriber()
    callback = await call_in.lab.schedule(number, OWNER, in_s=50)
    phones(OWNER, "answer")
    async with Events(call_in.lab.info, WATCHED) as events:
        pbx_lab("call", "support", "--caller", number, "--hold-s", "27")
        caller = await call_in.caller_channel(events, number)
        await until(lambda: bool(_dials_to(events, number, f"PJSIP/{OWNER}")), 10)
        dialled = _dials_to(events, number, f"PJSIP/{OWNER}")[0]
        seen = await call_in.variables(
            caller["Channel"], "ACB_INBOUND", "ACB_CALLBACK_ID", "ACB_CALLBACK_AGENT", "ACB_CALLBACK_COUNT"
        )
        assert seen == {
            "ACB_INBOUND": "found",
            "ACB_CALLBACK_ID": callback.id,
            "ACB_CALLBACK_AGENT": OWNER,
            "ACB_CALLBACK_COUNT": "1",
        }
        assert dialled["DestConnectedLineName"] == f"{PREFIX} {number}", dialled  # SIPp sends no display name
        assert events.of("QueueCallerJoin", caller["Channel"]) == []

        async def state() -> State:
            return (await call_in.callback(callback.id)).state

        await until_equal(state, State.COMPLETED, 40)
    done = await call_in.callback(callback.id)
    assert done.finish_reason is FinishReason.CONTACT_CALLED_IN
    assert done.called_in_agent == OWNER
    assert 20 <= done.called_in_talk_s <= 28
    kinds = [event.kind.value for event in await call_in.lab.events(callback.id)]
    assert kinds == ["created", "completed"]
    wait_s = (callback.due_at - datetime.now(UTC)).total_seconds() + 8
    await asyncio.sleep(max(0.0, wait_s))  # past the old due time: no callback call
    assert call_in.lab.contact_invites().times(number) == []


@pytest.mark.parametrize("case", ["short", "unanswered"])
async def test_a_short_or_unanswered_call_changes_nothing(
    call_in: CallInLab, phones: Callable[..., None], case: str
) -> None:
    """5 s of talk (under call_in_min_talk, 20 s), or nobody answering: the callback stays scheduled;
    after the short call it rings the contact at its due time as before."""
    number = _subscriber()
    callback = await call_in.lab.schedule(number, OWNER, in_s=45 if case == "short" else 300)
    if case == "unanswered":
        for agent in call_in.lab.info["agents"]:
            phones(agent, "noanswer")
    else:
        phones(OWNER, "answer")
    async with Events(call_in.lab.info, WATCHED) as events:
        pbx_lab("call", "support", "--caller", number, "--hold-s", "6" if case == "short" else "20")
        caller = await call_in.caller_channel(events, number)
        await until(lambda: bool(_dials_to(events, number, f"PJSIP/{OWNER}")), 10)
        await until(lambda: bool(events.of("Hangup", caller["Channel"])), 30)
    await asyncio.sleep(2)  # what the daemon would settle after the hangup, it would have by now
    after = await call_in.callback(callback.id)
    assert after.state is State.SCHEDULED and after.version == callback.version
    if case == "short":
        await until(lambda: bool(call_in.lab.contact_invites().times(number)), 60)


async def test_a_busy_owner_sends_the_contact_to_the_queue_with_its_priority(call_in: CallInLab) -> None:
    number = _subscriber()
    await call_in.lab.schedule(number, OWNER, in_s=600)
    pbx_lab("dial", OWNER, "0" + str(uuid.uuid4().int)[:9], "--hold-s", "20")  # the owner talks elsewhere

    async def owner_state() -> str:
        answer = await call_in.ami.action("Getvar", Variable=f"DEVICE_STATE(PJSIP/{OWNER})")
        return answer.get("Value", "")

    await until_equal(owner_state, "INUSE", 15)
    async with Events(call_in.lab.info, WATCHED) as events:
        pbx_lab("call", "support", "--caller", number, "--hold-s", "8")
        caller = await call_in.caller_channel(events, number)

        await until(lambda: bool(events.of("QueueCallerJoin", caller["Channel"])), 5)
        seen = await call_in.variables(
            caller["Channel"], "ACB_INBOUND", "ACB_CALLBACK_AGENT_FREE", "QUEUE_PRIO"
        )
    assert seen == {"ACB_INBOUND": "found", "ACB_CALLBACK_AGENT_FREE": "0", "QUEUE_PRIO": PRIORITY}
    assert _dials_to(events, number, f"PJSIP/{OWNER}") == []


@pytest.mark.parametrize("form", ["national", "international"])
async def test_the_same_number_in_another_form_is_recognised(
    call_in: CallInLab, phones: Callable[..., None], form: str
) -> None:
    """The callback holds +4930...; the caller ID comes as 030... or 004930... ([numbers] country_code 49)."""
    number = _subscriber()
    callback = await call_in.lab.schedule(number, OWNER, in_s=600)
    shown = "0" + number[3:] if form == "national" else "00" + number[1:]
    phones(OWNER, "answer")
    async with Events(call_in.lab.info, WATCHED) as events:
        pbx_lab("call", "support", "--caller", shown, "--hold-s", "4")
        caller = await call_in.caller_channel(events, shown)
        await until(lambda: bool(_dials_to(events, shown, f"PJSIP/{OWNER}")), 10)
        seen = await call_in.variables(caller["Channel"], "ACB_INBOUND", "ACB_CALLBACK_ID")
    assert seen == {"ACB_INBOUND": "found", "ACB_CALLBACK_ID": callback.id}


async def _routing_time(call_in: CallInLab, number: str) -> tuple[float, dict[str, str]]:
    """Seconds from the hook's start (its helper channel created) to the caller joining the queue,
    and what the hook set. Not from the caller's Newchannel: Answer() waits up to 500 ms for media
    first, which SIPp never sends."""
    async with Events(call_in.lab.info, WATCHED) as events:
        pbx_lab("call", "support", "--caller", number, "--hold-s", "4")
        caller = await call_in.caller_channel(events, number)

        await until(lambda: bool(events.of("QueueCallerJoin", caller["Channel"])), 5)
        seen = await call_in.variables(
            caller["Channel"], "ACB_INBOUND", "ACB_CALLBACK_ID", "ACB_CALLBACK_AGENT"
        )
    joined = events.of("QueueCallerJoin", caller["Channel"])[0]
    helper = f"Local/{caller['Uniqueid']}@acb-inbound-agi-"
    started = [
        e for e in events.seen if e.get("Event") == "Newchannel" and e.get("Channel", "").startswith(helper)
    ]
    return float(joined["_at"]) - float(started[0]["_at"]), seen


async def test_an_unknown_number_passes_through_with_nothing_set(call_in: CallInLab) -> None:
    took_s, seen = await _routing_time(call_in, _subscriber())
    assert seen == {"ACB_INBOUND": "unknown", "ACB_CALLBACK_ID": "", "ACB_CALLBACK_AGENT": ""}
    assert took_s < HOOK_LIMIT_S + ROUTING_SLACK_S


@pytest.mark.parametrize("fault", ["stopped", "sigstop"])
async def test_a_daemon_down_or_frozen_never_delays_the_call(call_in: CallInLab, fault: str) -> None:
    """The daemon killed (nothing listens: refused at once) or SIGSTOPped (it accepts and never
    answers: the hook's own limit): the caller reaches the queue in time, as an unknown number; the
    callback is still there afterwards."""
    number = _subscriber()
    callback = await call_in.lab.schedule(number, OWNER, in_s=600)
    if fault == "stopped":
        call_in.daemon.send(signal.SIGTERM)
        assert await call_in.daemon.exited(15) == 0
    else:
        call_in.daemon.send(signal.SIGSTOP)
    try:
        took_s, seen = await _routing_time(call_in, number)
        # The helper channel is gone soon (Originate's 2 s), even while the daemon stays frozen.
        await until(lambda: "@acb-inbound-agi" not in pbx_cli("core show channels concise"), 10)
    finally:
        if fault == "sigstop":
            call_in.daemon.send(signal.SIGCONT)
    assert seen == {"ACB_INBOUND": "unavailable", "ACB_CALLBACK_ID": "", "ACB_CALLBACK_AGENT": ""}
    assert took_s < HOOK_LIMIT_S + ROUTING_SLACK_S
    after = await call_in.callback(callback.id)
    assert after.state is State.SCHEDULED and after.version == callback.version
