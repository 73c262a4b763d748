"""The availability view fed by our ARI and AMI links from the real lab: phones register, call, pause."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from asterisk_cb.telephony.ami import AmiConnection, AmiSettings
from asterisk_cb.telephony.ari import AriClient, AriSettings
from asterisk_cb.telephony.ari_stream import AriEventStream
from asterisk_cb.telephony.availability import AgentSpec, AvailabilityView, Reason
from asterisk_cb.telephony.availability_feed import feed_from_ami

pytestmark = pytest.mark.lab

AGENT = "1001"


@dataclass
class Live:
    view: AvailabilityView
    ari: AriClient
    ami: AmiConnection


@pytest.fixture
async def live(lab_ari: dict[str, str], lab_ami: dict[str, Any]) -> AsyncIterator[Live]:
    """A view for agent 1001 (fixed phone, queue support), fed live by AMI as the daemon wires it; the
    ARI app (its events websocket connected) places the calls that make the phone busy."""
    view = AvailabilityView.of([AgentSpec(AGENT, devices=(f"PJSIP/{AGENT}",), queues=("support",))])
    app = f"acb-test-{uuid.uuid4().hex[:8]}"
    ari_settings = AriSettings(
        url=lab_ari["url"], username=lab_ari["user"], password=lab_ari["password"], app=app
    )
    ami_settings = AmiSettings(
        username=lab_ami["user"], secret=lab_ami["secret"], host=lab_ami["host"], port=int(lab_ami["port"])
    )
    async with AriClient(ari_settings) as client:
        stream = AriEventStream(client)
        ami = AmiConnection(ami_settings, watched_devices=view.watched_devices)
        feed_from_ami(view, ami)
        stream.start()
        await ami.start()
        await asyncio.gather(stream.wait_ready(10), ami.wait_ready(10))
        try:
            yield Live(view, client, ami)
        finally:
            await stream.stop()
            await ami.stop()


async def _until_reason(view: AvailabilityView, reason: Reason, timeout_s: float = 15) -> None:
    async with asyncio.timeout(timeout_s):
        while view.check(AGENT, time.time()).reason is not reason:  # noqa: ASYNC110 - fed by the links
            await asyncio.sleep(0.05)


async def test_register_unregister_follows_the_phone(live: Live, agent_phone: Callable[..., None]) -> None:
    availability = live.view
    result = availability.check(AGENT, time.time())
    assert (result.reason, result.ring) == (Reason.AVAILABLE, (f"PJSIP/{AGENT}",))
    await asyncio.to_thread(agent_phone, AGENT, "offline")
    await _until_reason(availability, Reason.OFFLINE)
    assert availability.check(AGENT, time.time()).detail == f"no device ready (PJSIP/{AGENT} UNAVAILABLE)"
    await asyncio.to_thread(agent_phone, AGENT, "answer")
    await _until_reason(availability, Reason.AVAILABLE)


async def test_agent_on_a_call_is_busy_until_it_hangs_up(live: Live) -> None:
    availability, client = live.view, live.ari
    channel_id = f"acb-it-{uuid.uuid4().hex[:8]}"
    await client.originate(f"PJSIP/{AGENT}", channel_id=channel_id, timeout_s=15)
    try:
        await _until_reason(availability, Reason.BUSY)
        assert availability.check(AGENT, time.time()).detail in {
            f"PJSIP/{AGENT} is RINGING",
            f"PJSIP/{AGENT} is INUSE",
        }
    finally:
        await asyncio.sleep(1)
        await client.hangup(channel_id)
    await _until_reason(availability, Reason.AVAILABLE)


async def test_paused_in_its_queue_is_not_available(live: Live) -> None:
    availability, ami = live.view, live.ami
    await ami.queue_pause(f"PJSIP/{AGENT}", True, queue="support", reason="lunch")
    try:
        await _until_reason(availability, Reason.PAUSED)
        assert availability.check(AGENT, time.time()).detail == "paused in queue support (lunch)"
    finally:
        await ami.queue_pause(f"PJSIP/{AGENT}", False, queue="support", reason="")
    await _until_reason(availability, Reason.AVAILABLE)
