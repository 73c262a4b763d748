"""Keys pressed on the lab's phones (scripts/lab/dtmf.py, `pbx-lab phone --keys`, `call --keys`,
`dial --keys`) reach Asterisk as RFC 4733 DTMF on the presser's channel, as the callback request
(issue 12: an agent keys *7 mid-call) needs.

Asterisk sees DTMF only on a bridge it does not leave to native RTP forwarding, i.e. once a feature
is armed on one of the channels: on an agent's calls out by the lab's [agents] context, on queue calls
by the acb-queue-member gosub of dialplan/callback-request.conf. What *7 then does is
tests/e2e/test_feature_code.py's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from lab.ami_client import LabAmi, Message

pytestmark = pytest.mark.lab


def _caller() -> str:
    return str(uuid.uuid4().int)[:10]


async def _agent_connected(ami: LabAmi, caller: str) -> Message:
    return await ami.wait_for(
        lambda m: m.get("Event") == "AgentConnect" and m.get("CallerIDNum") == caller, timeout_s=15
    )


async def _digits(ami: LabAmi, channel: str, direction: str, count: int) -> str:
    """The next count digits DTMFEnd reports on channel in direction (Received: keyed on its phone)."""
    digits = ""
    for _ in range(count):
        event = await ami.wait_for(
            lambda m: m.get("Event") == "DTMFEnd" and m.get("Channel") == channel
            and m.get("Direction") == direction, timeout_s=15,
        )  # fmt: skip
        digits += event["Digit"]
    return digits


async def _contact_answered(ami: LabAmi, number: str) -> Message:
    """The DialEnd of the [agents] call out to number (callback-outbound dials the contacts trunk)."""
    dialled = await ami.wait_for(
        lambda m: m.get("Event") == "DialBegin" and m.get("DialString") == f"{number}@contacts", timeout_s=15
    )
    answered = await ami.wait_for(
        lambda m: m.get("Event") == "DialEnd" and m.get("Channel") == dialled["Channel"], timeout_s=15
    )
    assert answered["DialStatus"] == "ANSWER"
    return answered


async def _until_free(ami: LabAmi, agent: str) -> None:
    """The agent's phone idle: a queue with ringinuse=no skips a phone still busy with an earlier test's
    call (its caller hangs up a moment after that test ends), and the test would talk to another."""
    for _ in range(75):  # 15 s
        state = await ami.action("Getvar", Variable=f"DEVICE_STATE(PJSIP/{agent})")
        if state.get("Value") == "NOT_INUSE":
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"PJSIP/{agent} stayed busy")


def _first_failover_agent(lab: dict[str, Any]) -> str:
    """The agent the failover queue (linear) rings first."""
    return str(lab["dialplan"]["queues"]["failover"]["members"][0])


async def test_an_agent_s_keys_during_a_queue_call_reach_asterisk_on_the_agent_s_channel(
    ami: LabAmi, lab: dict[str, Any], agent_phone: Callable[..., None], pbx_lab_run: Callable[..., str],
) -> None:  # fmt: skip
    agent = _first_failover_agent(lab)
    agent_phone(agent, "answer", "--keys", "1:14 0.5:30#")
    await _until_free(ami, agent)
    caller = _caller()
    pbx_lab_run("call", "failover", "--caller", caller, "--hold-s", "6")
    connected = await _agent_connected(ami, caller)
    assert connected["Interface"] == f"PJSIP/{agent}"
    answered = time.monotonic()
    assert await _digits(ami, connected["DestChannel"], "Received", 5) == "1430#"
    # 1 s, five keys of 0.28 s and a 0.5 s pause: the pcap's gaps are kept.
    assert 2.5 <= time.monotonic() - answered <= 4.5


async def test_a_caller_s_keys_reach_asterisk_on_the_caller_s_channel(
    ami: LabAmi, lab: dict[str, Any], pbx_lab_run: Callable[..., str]
) -> None:
    caller = _caller()
    pbx_lab_run("call", "failover", "--caller", caller, "--keys", "1:98*", "--hold-s", "5")
    connected = await _agent_connected(ami, caller)
    assert await _digits(ami, connected["Channel"], "Received", 3) == "98*"


async def test_an_agent_dials_a_contact_and_its_keys_reach_asterisk_and_the_contact(
    ami: LabAmi, lab: dict[str, Any], pbx_lab_run: Callable[..., str]
) -> None:
    agent = next(iter(lab["agents"]))
    number = "0" + _caller()
    pbx_lab_run("dial", agent, number, "--keys", "1:42#", "--hold-s", "5")
    answered = await _contact_answered(ami, number)
    assert answered["Channel"].startswith(f"PJSIP/{agent}-")
    assert await _digits(ami, answered["Channel"], "Received", 3) == "42#"
    hung_up = await ami.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Channel") == answered["Channel"], timeout_s=15
    )
    assert hung_up["Cause"] == "16"  # the agent's phone hung up after --hold-s


async def test_an_agent_phone_hangs_up_after_its_seconds(
    ami: LabAmi, lab: dict[str, Any], agent_phone: Callable[..., None], pbx_lab_run: Callable[..., str]
) -> None:
    agent = _first_failover_agent(lab)
    agent_phone(agent, "answer", "--keys", "0.5:1", "--hangup-after", "2")
    await _until_free(ami, agent)
    caller = _caller()
    pbx_lab_run("call", "failover", "--caller", caller, "--hold-s", "20")
    connected = await _agent_connected(ami, caller)
    answered = time.monotonic()
    await ami.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Channel") == connected["DestChannel"], timeout_s=10
    )
    assert 1.5 <= time.monotonic() - answered <= 3.5


@pytest.mark.parametrize("module", ["app_originate.so", "func_global.so", "res_agi.so", "app_queue.so"])
def test_the_feature_s_modules_are_running(
    pbx_lab_run: Callable[..., str], lab: dict[str, Any], module: str
) -> None:
    """SHARED() lives in func_global.so (there is no func_shared)."""
    shown = pbx_lab_run("cli", f"module show like {module}")
    assert f"{module} " in shown and "Running" in shown


def test_the_default_music_on_hold_class_plays_files(
    pbx_lab_run: Callable[..., str], lab: dict[str, Any]
) -> None:
    shown = pbx_lab_run("cli", "moh show files")
    assert "Class: default" in shown
    assert "File: /usr/share/asterisk/moh/" in shown
