"""The agent's feature code mid-call, end to end: a real `asterisk-cb run` with its FastAGI server, the
lab's Asterisk 22 running dialplan/callback-request.conf and features.conf's *7, SIPp phones keying
RFC 4733 DTMF (scripts/lab/dtmf.py), Redis and PostgreSQL's cel table.

What is checked is what Asterisk itself recorded: the callback in the store, the CALLBACK_REQUEST CEL row
on the call's linkedid, the prompts the agent heard (CEL APP_START of Playback on its channel), and on
the contact's channel music on hold and nothing else (AMI MusicOnHoldStart; no DTMF sent to it, no
prompt played on it).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from callback_lab import Lab, pbx_lab, until, until_equal
from daemon_process import DaemonProcess, Fleet
from lab.ami_client import LabAmi, Message
from lab_events import Events

from asterisk_cb.core.model import Callback, Source
from asterisk_cb.records import migrate
from asterisk_cb.records.settings import RecordsSite, parse_dsn

pytestmark = [pytest.mark.lab, pytest.mark.slow]

APP = "acb-feature-code"
SUPPORT = "support"  # ringall: every agent
QUEUE = "failover"  # linear: its first member (1003) is rung first, so the keying phone is known
AGENT = "1003"
OUT_AGENT = "1001"
# After the answer: *7, then the time 2 s later, then 1 (confirm) once the read-back (up to 5.5 s; keys
# pressed during it are ignored, as SayUnixTime without its j option does) has been said.
IN_30_MINUTES = "1.5:*7 2:*30# 8:1"
# The Gosub's wait for each answer of the daemon (the dialplan's default, ACB_AGI_TIMEOUT).
AGI_WAIT_S = 4
PROMPT_APPS = ("Playback", "Read", "SayUnixTime", "Background", "SayDigits", "SayNumber")
APOLOGY = "im-sorry&all-circuits-busy-now&please-try-call-later"  # the daemon did not answer in time


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _caller() -> str:
    return "49" + str(uuid.uuid4().int)[:9]


@dataclass
class FeatureLab:
    """A daemon with its FastAGI server, the lab's dialplan pointed at it, and the test's observers."""

    fleet: Fleet
    lab: Lab
    daemon: DaemonProcess
    ami: LabAmi
    pg: asyncpg.Connection

    async def callbacks(self, agent: str) -> list[Callback]:
        return await self.lab.store.get_many(await self.lab.store.ids_for_agent(agent))

    async def one_callback(self, agent: str, timeout_s: float = 20) -> Callback:
        await until_equal(lambda: self.count(agent), 1, timeout_s)
        return (await self.callbacks(agent))[0]

    async def count(self, agent: str) -> int:
        return len(await self.lab.store.ids_for_agent(agent))

    async def cel(self, query: str, *args: object) -> list[asyncpg.Record]:
        return await self.pg.fetch(query, *args)

    async def requests(self, linkedid: str) -> list[tuple[str, Any]]:
        """The CALLBACK_REQUEST CEL rows of a call: (channel, extra); waits for the first (CEL reaches
        PostgreSQL a moment after the event)."""

        async def rows() -> list[asyncpg.Record]:
            return await self.cel(
                "SELECT channame, extra FROM cel WHERE eventtype = 'CALLBACK_REQUEST' AND linkedid = $1",
                linkedid,
            )

        await until_equal(lambda: _some(rows()), True, 10)
        return [(row["channame"], json.loads(row["extra"])) for row in await rows()]

    async def story(self, linkedid: str) -> list[tuple[str, str]]:
        """The call's Callback Request and callback rows in the order a report reads them (eventtime):
        (eventtype, callback id); waits until the CEL writer's first row is there."""
        query = (
            "SELECT eventtype, extra FROM cel WHERE linkedid = $1 AND eventtype LIKE 'CALLBACK%'"
            " ORDER BY eventtime, id"
        )

        async def scheduled() -> bool:
            return "CALLBACK_SCHEDULED" in [row["eventtype"] for row in await self.cel(query, linkedid)]

        await until_equal(scheduled, True, 10)
        rows = await self.cel(query, linkedid)
        return [(row["eventtype"], _callback_named(row["extra"])) for row in rows]

    async def prompts(self, channel: str) -> list[str]:
        """What was played to channel by a prompt application, in order: Asterisk 22's CEL records a
        STREAM_BEGIN per sound file with the application and its data (there is no APP_START)."""
        rows = await self.cel(
            "SELECT appname, appdata FROM cel WHERE channame = $1 AND eventtype = 'STREAM_BEGIN'"
            " AND appname = ANY($2::text[]) ORDER BY id",
            channel,
            list(PROMPT_APPS),
        )
        return [row["appdata"] for row in rows if row["appname"] == "Playback"] + [
            f"{row['appname']}({row['appdata']})" for row in rows if row["appname"] != "Playback"
        ]


def _callback_named(extra: str) -> str:
    """The callback id a row's extra names: CELGenUserEvent's ``{"extra": "<id>"}`` (the Callback
    Request) or the CEL writer's ``{"callback": "<id>", ...}``."""
    values = json.loads(extra)
    return str(values.get("callback") or values["extra"])


async def _some(rows: Awaitable[list[asyncpg.Record]]) -> bool:
    return bool(await rows)


@pytest.fixture
def phones() -> Iterator[Callable[..., None]]:
    """Set an agent phone's behaviour (pbx-lab phone); every phone touched answers plainly afterwards."""
    touched: set[str] = set()

    def set_phone(agent: str, *behaviour: str) -> None:
        touched.add(agent)
        pbx_lab("phone", agent, *behaviour)

    yield set_phone
    for agent in touched:
        pbx_lab("phone", agent, "answer")


@pytest.fixture
async def feature(fleet_lab: tuple[Fleet, Lab]) -> AsyncIterator[FeatureLab]:
    fleet, lab = fleet_lab
    port = _free_port()
    fleet.feature_code = {"listen": f"127.0.0.1:{port}"}
    cel_site = RecordsSite(parse_dsn(lab.info["postgres"]["dsn"]))
    await migrate.migrate(cel_site)  # the lab's own database; idempotent
    fleet.records = {"dsn": lab.info["postgres"]["dsn"], "usegmtime": "yes"}  # as the lab's cel_pgsql
    daemon = await fleet.start(APP)
    pbx_lab("cli", f"dialplan set global ACB_AGI_URL agi://127.0.0.1:{port}")
    harness = lab.info["ami_harness"]
    pg = await asyncpg.connect(lab.info["postgres"]["dsn"])
    try:
        async with LabAmi(harness["host"], harness["port"], harness["user"], harness["secret"]) as ami:
            yield FeatureLab(fleet, lab, daemon, ami, pg)
    finally:
        pbx_lab("cli", "dialplan set global ACB_AGI_URL agi://127.0.0.1:4573")
        await pg.close()
        await _hang_up_calls(lab)


async def _hang_up_calls(lab: Lab) -> None:
    """The test's calls (the SIPp callers hold on for seconds): a next test needs its agent free."""
    harness = lab.info["ami_harness"]
    async with LabAmi(harness["host"], harness["port"], harness["user"], harness["secret"]) as ami:
        for pattern in (r"/^PJSIP\/(lab-caller|contacts|1[0-9]{3})-/", r"/^Local\/[^@]+@acb-request-agi-/"):
            await ami.action("Hangup", Channel=pattern)


async def _until_free(ami: LabAmi, agent: str) -> None:
    """The failover queue (ringinuse=no) skips a phone still busy with an earlier test's call, whose
    caller hangs up a moment after that test ends: wait for it to be idle."""

    async def state() -> str:
        return (await ami.action("Getvar", Variable=f"DEVICE_STATE(PJSIP/{agent})")).get("Value", "")

    await until_equal(state, "NOT_INUSE", 15)


async def _queue_call(feature: FeatureLab, caller: str, hold_s: int = 30, queue: str = QUEUE) -> Message:
    """The contact calls the queue (once the keying agent's phone is idle); the AgentConnect once the
    keying agent answered."""
    await _until_free(feature.ami, AGENT)
    pbx_lab("call", queue, "--caller", caller, "--hold-s", str(hold_s))
    connected = await feature.ami.wait_for(
        lambda m: m.get("Event") == "AgentConnect" and m.get("CallerIDNum") == caller, timeout_s=20
    )
    assert connected["Interface"] == f"PJSIP/{AGENT}", "the keying agent was busy (a call left over?)"
    return connected


async def test_an_agent_keys_in_30_minutes_on_a_queue_call(
    feature: FeatureLab, phones: Callable[..., None]
) -> None:
    """The issue's scenario: the contact calls `support` (ringall, every agent): the keying agent's phone
    is the one that answers (the others ring unanswered until it does)."""
    for other in sorted(set(feature.lab.info["agents"]) - {AGENT}):
        phones(other, "noanswer")
    phones(AGENT, "answer", "--keys", IN_30_MINUTES)
    caller = _caller()
    started = datetime.now(UTC)
    async with Events(feature.lab.info, {"MusicOnHoldStart", "DTMFBegin"}) as events:
        connected = await _queue_call(feature, caller, queue=SUPPORT)
        connected_at = time.monotonic()
        callback = await feature.one_callback(AGENT)
    agent_channel, contact_channel = connected["DestChannel"], connected["Channel"]
    assert (callback.contact_number, callback.queue, callback.source) == (caller, SUPPORT, Source.INBOUND)
    assert callback.created_by == AGENT
    assert started + timedelta(minutes=29) <= callback.due_at <= datetime.now(UTC) + timedelta(minutes=31)
    assert callback.origin_linkedid == connected["Linkedid"]
    assert await feature.requests(connected["Linkedid"]) == [(agent_channel, {"extra": callback.id})]
    # one query on the call's linkedid: the callback's creation (CEL writer), then the Gosub's request
    assert await feature.story(connected["Linkedid"]) == [
        ("CALLBACK_SCHEDULED", callback.id), ("CALLBACK_REQUEST", callback.id),
    ]  # fmt: skip
    assert events.of("DTMFBegin", contact_channel, Direction="Sent") == []
    assert events.after(connected_at, "MusicOnHoldStart", contact_channel), "no music on hold"
    assert await feature.prompts(contact_channel) == []
    assert "num-was-successfully&added" in await feature.prompts(agent_channel)


async def test_an_agent_keys_during_its_own_call_out(feature: FeatureLab) -> None:
    number = "0" + _caller()
    async with Events(feature.lab.info, {"MusicOnHoldStart", "DTMFBegin", "DialBegin", "DialEnd"}) as events:
        pbx_lab("dial", OUT_AGENT, number, "--keys", "1.5:*7 2:1630# 8:1", "--hold-s", "25")
        callback = await feature.one_callback(OUT_AGENT)
    dialled = [
        e
        for e in events.seen
        if e.get("Event") == "DialBegin" and e.get("DialString") == f"{number}@contacts"
    ]
    answered = events.of("DialEnd", dialled[0]["Channel"], DialStatus="ANSWER")[0]
    agent_channel, contact_channel = answered["Channel"], answered["DestChannel"]
    assert agent_channel.startswith(f"PJSIP/{OUT_AGENT}-")
    assert (callback.contact_number, callback.source, callback.queue) == (number, Source.OUTBOUND, None)
    due = callback.due_at.astimezone(UTC)  # the test daemon's default_timezone is UTC
    assert (due.hour, due.minute) == (16, 30)
    assert callback.origin_linkedid == answered["Linkedid"]
    assert await feature.requests(answered["Linkedid"]) == [(agent_channel, {"extra": callback.id})]
    assert events.of("DTMFBegin", contact_channel, Direction="Sent") == []
    assert events.of("MusicOnHoldStart", contact_channel), "no music on hold"
    assert await feature.prompts(contact_channel) == []


def _other_weekday_hours() -> str:
    """Calling hours on a weekday that is neither today nor tomorrow (UTC): 'in 30 minutes' is outside."""
    day = (datetime.now(UTC) + timedelta(minutes=30)).weekday()
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return f"{names[(day + 3) % 7]} 09:00-17:00"


@pytest.mark.parametrize(
    ("case", "prompt"),
    [
        ("forbidden", "im-sorry&feature-not-avail-line"),
        ("disabled", "im-sorry&disabled"),
        ("hours", "im-sorry&please-try-call-later&digits/at"),
        ("number", "im-sorry&cannot-complete-as-dialed"),
    ],
)
async def test_refusals_are_spoken_and_create_nothing(
    feature: FeatureLab, phones: Callable[..., None], case: str, prompt: str
) -> None:
    caller = _caller()
    if case == "forbidden":
        await feature.lab.store.set_role("trainee", "")
        await feature.lab.store.set_agent_role(AGENT, "trainee")
    elif case == "disabled":
        await feature.lab.set(enabled="no")
    elif case == "hours":
        await feature.lab.set(calling_hours=_other_weekday_hours())
    else:
        caller = "anonymous"
    phones(AGENT, "answer", "--keys", IN_30_MINUTES, "--hangup-after", "14")
    connected = await _queue_call(feature, caller, hold_s=20)
    agent_channel = connected["DestChannel"]
    await feature.ami.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Channel") == agent_channel, timeout_s=25
    )
    await until_prompt(feature, agent_channel, prompt)
    assert await feature.callbacks(AGENT) == []
    assert "num-was-successfully&added" not in await feature.prompts(agent_channel)


async def until_prompt(feature: FeatureLab, channel: str, prompt: str) -> None:
    """CEL rows reach PostgreSQL shortly after the events: wait for the prompt's row."""

    async def played() -> bool:
        return prompt in await feature.prompts(channel)

    await until_equal(played, True, 10)


async def test_the_contact_keying_the_code_creates_nothing(
    feature: FeatureLab, phones: Callable[..., None]
) -> None:
    phones(AGENT, "answer")
    caller = _caller()
    async with Events(feature.lab.info, {"DTMFEnd"}) as events:
        connected = await _queue_call_keyed(feature, caller, "1.5:*7 2:*30# 4.5:1")
        agent_channel = connected["DestChannel"]
        await until(lambda: len(events.of("DTMFEnd", agent_channel, Direction="Sent")) >= 7, 20)
    sent = "".join(e["Digit"] for e in events.of("DTMFEnd", agent_channel, Direction="Sent"))
    assert sent == "*7*30#1"  # the contact's keys reach the agent as plain DTMF
    assert await feature.callbacks(AGENT) == []
    assert await feature.prompts(connected["Channel"]) == []


async def _queue_call_keyed(feature: FeatureLab, caller: str, keys: str) -> Message:
    pbx_lab("call", QUEUE, "--caller", caller, "--keys", keys, "--hold-s", "12")
    return await feature.ami.wait_for(
        lambda m: m.get("Event") == "AgentConnect" and m.get("CallerIDNum") == caller, timeout_s=20
    )


@pytest.mark.parametrize("who", ["agent", "contact"])
async def test_the_call_ending_mid_entry_creates_nothing(
    feature: FeatureLab, phones: Callable[..., None], who: str
) -> None:
    """The agent hangs up while keying the time, or the contact hangs up meanwhile (the agent keys on,
    confirm included): no callback, no CEL row."""
    if who == "agent":
        phones(AGENT, "answer", "--keys", "1.5:*7 2:*3", "--hangup-after", "5")
    else:
        phones(AGENT, "answer", "--keys", IN_30_MINUTES)
    connected = await _queue_call(feature, _caller(), hold_s=15 if who == "agent" else 5)
    await feature.ami.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Channel") == connected["DestChannel"], timeout_s=20
    )
    await asyncio.sleep(2)
    assert await feature.callbacks(AGENT) == []
    assert await feature.cel("SELECT id FROM cel WHERE eventtype = 'CALLBACK_REQUEST' AND linkedid = $1",
                             connected["Linkedid"]) == []  # fmt: skip


async def test_two_requests_replayed_for_one_keypress_create_one_callback(
    feature: FeatureLab, phones: Callable[..., None]
) -> None:
    """While the agent's Gosub waits for the time (its token drawn), the same create is asked twice
    through the real helper channel, as a retried AGI request would: one callback."""
    phones(AGENT, "answer", "--keys", "1.5:*7", "--hangup-after", "15")
    connected = await _queue_call(feature, _caller(), hold_s=20)
    agent_channel = connected["DestChannel"]
    await feature.ami.wait_for(  # the Gosub asks for the time: its token is drawn
        lambda m: m.get("Event") == "Newexten" and m.get("Channel") == agent_channel
        and m.get("Application") == "Read", timeout_s=15,
    )  # fmt: skip
    uniqueid = (await feature.ami.action("Getvar", Channel=agent_channel, Variable="UNIQUEID"))["Value"]
    due = int(time.time()) + 3600
    for name, value in {
        "ACB_STEP": "create",
        "ACB_DUE": str(due),
        "ACB_DEADLINE": str(int(time.time()) + 30),
    }.items():
        await feature.ami.action("Setvar", Channel=agent_channel, Variable=name, Value=value)
    ids = []
    for _ in range(2):
        helper = f"Local/{uniqueid}@acb-request-agi"
        await feature.ami.action("Originate", Channel=helper, Application="Hangup", Timeout="5000")
        await asyncio.sleep(1.0)
        ids.append(
            (await feature.ami.action("Getvar", Channel=agent_channel, Variable="SHARED(ACB_R_ID)"))["Value"]
        )
    callback = await feature.one_callback(AGENT)
    assert ids == [callback.id, callback.id]


async def test_a_stopped_daemon_returns_the_agent_to_the_call_in_time(
    feature: FeatureLab, phones: Callable[..., None]
) -> None:
    """A daemon that accepts the AGI connection and never answers (SIGSTOP): after ACB_AGI_TIMEOUT the
    agent hears the apology and is back with the contact (the contact's music on hold stops)."""
    phones(AGENT, "answer", "--keys", "1.5:*7", "--hangup-after", "25")
    feature.daemon.send(signal.SIGSTOP)
    try:
        async with Events(feature.lab.info, {"MusicOnHoldStart", "MusicOnHoldStop"}) as events:
            connected = await _queue_call(feature, _caller(), hold_s=30)
            connected_at, contact = time.monotonic(), connected["Channel"]
            await until(lambda: bool(events.after(connected_at, "MusicOnHoldStop", contact)), 20)
        held_at = events.after(connected_at, "MusicOnHoldStart", contact)[0]
        held_s = events.after(held_at, "MusicOnHoldStop", contact)[0] - held_at
        await until_prompt(feature, connected["DestChannel"], APOLOGY)
    finally:
        feature.daemon.send(signal.SIGCONT)
    # the wait for the daemon, then the apology (about 4 s of prompts), then back in the call
    assert AGI_WAIT_S - 1 <= held_s <= AGI_WAIT_S + 8, held_s
    await asyncio.sleep(2)  # the stalled request, read now, is dropped: the agent was told "try later"
    assert await feature.callbacks(AGENT) == []


async def test_a_pending_callback_is_moved_not_doubled(
    feature: FeatureLab, phones: Callable[..., None]
) -> None:
    """The contact has a callback with this agent already: the agent hears when it is due, keys 2 (not
    "1, keep it"), then a new time: the same callback moves, no second one is made."""
    caller = _caller()
    pending = await feature.lab.schedule(caller, AGENT, in_s=3600)
    # *7; the pending one read back (about 8 s with its question), 2; the new time; its read-back, 1.
    phones(AGENT, "answer", "--keys", "1.5:*7 10:2 2:*90# 8:1")
    connected = await _queue_call(feature, caller, hold_s=40)

    async def moved() -> bool:
        callback = await feature.lab.store.get(pending.id)
        return callback is not None and callback.due_at > pending.due_at + timedelta(minutes=20)

    await until_equal(moved, True, 40)
    callbacks = await feature.callbacks(AGENT)
    assert [callback.id for callback in callbacks] == [pending.id]
    assert abs(callbacks[0].due_at - (datetime.now(UTC) + timedelta(minutes=90))) < timedelta(minutes=2)
    assert await feature.requests(connected["Linkedid"]) == [
        (connected["DestChannel"], {"extra": pending.id})
    ]
    assert "telephone-number&is-set-to" in await feature.prompts(connected["DestChannel"])
