"""The test PBX itself, against real Asterisk 22, SIPp phones and PostgreSQL (scripts/pbx-lab)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from lab.ami_client import LabAmi
from lab.ari_client import Event, LabAri
from lab.invites import Invite

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def _channel_event(channel_id: str, *types: str) -> Callable[[Event], bool]:
    return lambda event: event.get("type") in types and event.get("channel", {}).get("id") == channel_id


def _unique_number(prefix: str) -> str:
    """A contact number with the behaviour prefix and a suffix no other test dials."""
    return prefix + str(uuid.uuid4().int)[:8]


async def test_ari_websocket_and_ami_login(ari: LabAri, ami: LabAmi) -> None:
    info = await ari.request("GET", "asterisk/info")
    assert info["system"]["version"].startswith("22.")
    assert ami.banner.startswith("Asterisk Call Manager/")
    settings = await ami.action("CoreSettings")
    assert settings["AsteriskVersion"].startswith("22.")


async def _wait_device_state(ami: LabAmi, device: str, state: str) -> None:
    """The device state change as the daemon sees it: AMI DeviceStateChange. (Not through an ARI
    "deviceState:" subscription, which the daemon avoids: see asterisk_cb/telephony/ari_stream.py.)"""
    await ami.wait_for(lambda m: m.get("Event") == "DeviceStateChange" and m.get("Device") == device
                       and m.get("State") == state, timeout_s=10)  # fmt: skip


async def test_agent_device_state_unavailable_not_inuse_inuse(
    ari: LabAri, ami: LabAmi, agent_phone: Callable[..., None], lab: dict[str, Any]
) -> None:
    agent = list(lab["agents"])[-1]
    device = f"PJSIP/{agent}"
    agent_phone(agent, "offline")
    await _wait_device_state(ami, device, "UNAVAILABLE")
    agent_phone(agent, "answer")
    await _wait_device_state(ami, device, "NOT_INUSE")

    channel_id = f"test-inuse-{uuid.uuid4().hex[:8]}"
    await ari.originate(device, channel_id)
    await _wait_device_state(ami, device, "INUSE")
    await ari.request("DELETE", f"channels/{channel_id}")
    await _wait_device_state(ami, device, "NOT_INUSE")


def test_smoke_call_answered_with_cdr_row(lab: dict[str, Any]) -> None:
    """scripts/smoke-call (the README's main job) succeeds, and its CDR row is really in PostgreSQL."""
    result = subprocess.run(
        [str(REPO / "scripts" / "smoke-call"), "--json", "--hold-s", "0.5"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    call = json.loads(result.stdout)
    assert call["cdr"]["uniqueid"] == call["channel_id"]


async def test_originate_to_agent_answered_into_stasis_and_cdr_answered(
    ari: LabAri, lab: dict[str, Any], lab_pg_dsn: str
) -> None:
    agent = next(iter(lab["agents"]))
    channel_id = f"test-cdr-{uuid.uuid4().hex[:8]}"
    await ari.originate(f"PJSIP/{agent}", channel_id)
    started = await ari.wait_for(_channel_event(channel_id, "StasisStart", "ChannelDestroyed"), timeout_s=15)
    assert started["type"] == "StasisStart"
    assert started["channel"]["state"] == "Up"
    await ari.request("DELETE", f"channels/{channel_id}")
    await ari.wait_for(_channel_event(channel_id, "ChannelDestroyed"), timeout_s=10)

    connection = await asyncpg.connect(lab_pg_dsn)
    try:
        row = None
        deadline = time.monotonic() + 10
        while row is None and time.monotonic() < deadline:
            row = await connection.fetchrow("SELECT * FROM cdr WHERE uniqueid = $1", channel_id)
            if row is None:
                await asyncio.sleep(0.1)
    finally:
        await connection.close()
    assert row is not None, f"no CDR row for uniqueid {channel_id}"
    assert row["disposition"] == "ANSWERED"
    assert row["channel"].startswith(f"PJSIP/{agent}-")
    assert row["lastapp"] == "Stasis"
    assert row["linkedid"] == channel_id


@pytest.mark.parametrize(
    ("prefix", "cause"),
    [("486", 17), ("603", 21), ("404", 1)],
    ids=["busy", "declined", "unallocated"],
)
async def test_contact_number_convention_refusals(
    ari: LabAri, lab_invites: Callable[..., list[Invite]], prefix: str, cause: int
) -> None:
    number = _unique_number(prefix)
    channel_id = f"test-contact-{number}"
    await ari.originate(f"Local/{number}@callback-outbound", channel_id)
    ended = await ari.wait_for(_channel_event(channel_id, "StasisStart", "ChannelDestroyed"), timeout_s=10)
    assert (ended["type"], ended["cause"]) == ("ChannelDestroyed", cause)
    invites = lab_invites("contacts", number)
    assert len(invites) == 1
    assert invites[0].time == pytest.approx(time.time(), abs=30)


async def test_contact_that_never_answers_rings_until_timeout(
    ari: LabAri, lab_invites: Callable[..., list[Invite]]
) -> None:
    number = _unique_number("480")
    channel_id = f"test-contact-{number}"
    begun = time.monotonic()
    await ari.originate(f"Local/{number}@callback-outbound", channel_id, timeout_s=2)
    ended = await ari.wait_for(_channel_event(channel_id, "StasisStart", "ChannelDestroyed"), timeout_s=10)
    assert (ended["type"], ended["cause"]) == ("ChannelDestroyed", 19)
    assert time.monotonic() - begun >= 1.9
    assert len(lab_invites("contacts", number)) == 1


async def test_contact_that_answers_then_hangs_up_after_its_seconds(
    ari: LabAri, lab_invites: Callable[..., list[Invite]]
) -> None:
    number = "+" + _unique_number("20101")
    channel_id = f"test-contact-{number.lstrip('+')}"
    await ari.originate(f"Local/{number}@callback-outbound", channel_id)
    answered = await ari.wait_for(_channel_event(channel_id, "StasisStart", "ChannelDestroyed"), timeout_s=10)
    assert answered["type"] == "StasisStart"
    answered_at = time.monotonic()
    await ari.wait_for(_channel_event(channel_id, "ChannelDestroyed"), timeout_s=10)
    assert 0.8 <= time.monotonic() - answered_at <= 3
    assert len(lab_invites("contacts", number)) == 1


@pytest.mark.parametrize(
    ("behaviour", "cause"),
    [("reject", 21), ("busy", 17)],
)
async def test_agent_phone_refusals(
    ari: LabAri,
    agent_phone: Callable[..., None],
    lab: dict[str, Any],
    lab_invites: Callable[..., list[Invite]],
    behaviour: str,
    cause: int,
) -> None:
    agent = next(iter(lab["agents"]))
    agent_phone(agent, behaviour)
    invites_before = len(lab_invites(agent))
    channel_id = f"test-agent-{behaviour}-{uuid.uuid4().hex[:8]}"
    await ari.originate(f"PJSIP/{agent}", channel_id)
    ended = await ari.wait_for(_channel_event(channel_id, "StasisStart", "ChannelDestroyed"), timeout_s=10)
    assert (ended["type"], ended["cause"]) == ("ChannelDestroyed", cause)
    assert len(lab_invites(agent)) == invites_before + 1


async def test_agent_phone_that_never_answers_and_offline_agent(
    ari: LabAri, agent_phone: Callable[..., None], lab: dict[str, Any]
) -> None:
    agent = next(iter(lab["agents"]))
    agent_phone(agent, "noanswer")
    ringing = f"test-agent-noanswer-{uuid.uuid4().hex[:8]}"
    await ari.originate(f"PJSIP/{agent}", ringing, timeout_s=2)
    ended = await ari.wait_for(_channel_event(ringing, "StasisStart", "ChannelDestroyed"), timeout_s=10)
    assert ended["type"] == "ChannelDestroyed"

    agent_phone(agent, "offline")
    offline = f"test-agent-offline-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError, match="ARI POST channels"):
        await ari.originate(f"PJSIP/{agent}", offline, timeout_s=2)


async def test_inbound_queue_call_skips_the_agent_already_on_a_call(
    ari: LabAri,
    ami: LabAmi,
    lab: dict[str, Any],
    lab_invites: Callable[..., list[Invite]],
    pbx_lab_run: Callable[..., str],
) -> None:
    """The `support` queue (ringinuse=no) rings only free agents: the one held busy gets no INVITE."""
    busy_agent = next(iter(lab["agents"]))
    held = f"test-hold-{uuid.uuid4().hex[:8]}"
    await ari.originate(f"PJSIP/{busy_agent}", held)
    await ari.wait_for(_channel_event(held, "StasisStart"), timeout_s=10)
    invites_before = len(lab_invites(busy_agent))

    caller = str(uuid.uuid4().int)[:10]
    pbx_lab_run("call", "support", "--caller", caller, "--hold-s", "2")
    connected = await ami.wait_for(lambda m: m.get("Event") == "AgentConnect"
                                   and m.get("CallerIDNum") == caller, timeout_s=15)  # fmt: skip
    assert connected["Queue"] == "support"
    assert connected["Interface"] != f"PJSIP/{busy_agent}"
    assert len(lab_invites(busy_agent)) == invites_before
    await ari.request("DELETE", f"channels/{held}")
