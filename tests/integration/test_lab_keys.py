"""Keys pressed on the lab's phones (scripts/lab/dtmf.py, `pbx-lab phone --keys`, `call --keys`,
`dial --keys`) reach Asterisk as RFC 4733 DTMF on the presser's channel, as the callback request
(issue 12: an agent keys *7 mid-call) needs.

Asterisk sees DTMF only on a bridge it does not leave to native RTP forwarding, i.e. once a feature
is armed on one of the channels: on an agent's calls out by the lab's [agents] context, on queue calls
by the acb-queue-member gosub of dialplan/callback-request.conf. While the checkout lacks that file,
these tests stand in a minimal one (arm the feature; the feature raises a UserEvent).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lab.ami_client import LabAmi, Message

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
STAND_IN = """; asterisk-cb tests/integration/test_lab_keys.py: a stand-in for dialplan/callback-request.conf
[acb-queue-member]
exten => s,1,Set(DYNAMIC_FEATURES=acb-request)
 same => n,Return()

[acb-request]
exten => s,1,UserEvent(AcbLabRequest,Source: ${ACB_SOURCE},Queue: ${ACB_QUEUE})
 same => n,Return()
"""


@pytest.fixture(scope="module")
def stand_in(lab: dict[str, Any], pbx_lab_run: Callable[..., str]) -> Iterator[bool]:
    """True while the stand-in callback-request.conf is loaded, False when the lab runs the shipped one."""
    if (REPO / "dialplan" / "callback-request.conf").exists():
        yield False
        return
    copy = Path(lab["asterisk_root"]) / "etc" / "asterisk" / "callback-request.conf"
    copy.write_text(STAND_IN)
    pbx_lab_run("cli", "dialplan reload")
    yield True
    copy.unlink()
    pbx_lab_run("cli", "dialplan reload")


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


def _first_failover_agent(lab: dict[str, Any]) -> str:
    """The agent the failover queue (linear) rings first."""
    return str(lab["dialplan"]["queues"]["failover"]["members"][0])


async def test_an_agent_s_keys_during_a_queue_call_reach_asterisk_on_the_agent_s_channel(
    ami: LabAmi, lab: dict[str, Any], agent_phone: Callable[..., None], pbx_lab_run: Callable[..., str],
    stand_in: bool,
) -> None:  # fmt: skip
    agent = _first_failover_agent(lab)
    agent_phone(agent, "answer", "--keys", "1:14 0.5:30#")
    caller = _caller()
    pbx_lab_run("call", "failover", "--caller", caller, "--hold-s", "6")
    connected = await _agent_connected(ami, caller)
    assert connected["Interface"] == f"PJSIP/{agent}"
    answered = time.monotonic()
    assert await _digits(ami, connected["DestChannel"], "Received", 5) == "1430#"
    # 1 s, five keys of 0.28 s and a 0.5 s pause: the pcap's gaps are kept.
    assert 2.5 <= time.monotonic() - answered <= 4.5


async def test_a_caller_s_keys_reach_asterisk_on_the_caller_s_channel(
    ami: LabAmi, lab: dict[str, Any], pbx_lab_run: Callable[..., str], stand_in: bool
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
    caller = _caller()
    pbx_lab_run("call", "failover", "--caller", caller, "--hold-s", "20")
    connected = await _agent_connected(ami, caller)
    answered = time.monotonic()
    await ami.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Channel") == connected["DestChannel"], timeout_s=10
    )
    assert 1.5 <= time.monotonic() - answered <= 3.5


@pytest.mark.parametrize("source", ["queue", "outbound"])
async def test_star_7_runs_the_feature_on_the_agent_s_channel_only(
    ami: LabAmi, lab: dict[str, Any], agent_phone: Callable[..., None], pbx_lab_run: Callable[..., str],
    stand_in: bool, source: str,
) -> None:  # fmt: skip
    """features.conf's acb-request: *7 keyed by the agent runs Gosub(acb-request,s,1) on its channel,
    with ACB_QUEUE (queue calls) or ACB_SOURCE (calls out) from the lab's dialplan."""
    if not stand_in:
        pytest.skip("the lab runs the shipped callback-request.conf: its own tests key *7")
    agent = _first_failover_agent(lab)
    if source == "queue":
        agent_phone(agent, "answer", "--keys", "1:*7")
        caller = _caller()
        pbx_lab_run("call", "failover", "--caller", caller, "--hold-s", "6")
        connected = await _agent_connected(ami, caller)
        channel, far_end, expected = connected["DestChannel"], connected["Channel"], ("", "failover")
    else:
        number = "0" + _caller()
        pbx_lab_run("dial", agent, number, "--keys", "1:*7 0.5:5", "--hold-s", "6")
        answered = await _contact_answered(ami, number)
        channel, far_end, expected = answered["Channel"], answered["DestChannel"], ("outbound", "")
    request = await ami.wait_for(
        lambda m: m.get("Event") == "UserEvent" and m.get("UserEvent") == "AcbLabRequest", timeout_s=15
    )
    assert (request["Channel"], request["Source"], request["Queue"]) == (channel, *expected)
    if source == "outbound":  # the contact hears the keys after the feature code, not *7
        assert await _digits(ami, far_end, "Sent", 1) == "5"


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
