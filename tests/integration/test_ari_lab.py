"""Our ARI client and event stream against the lab's real Asterisk 22 and SIPp agent phones."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from asterisk_cb.telephony.ari import AriClient, AriNotFound, AriSettings, ChannelGone
from asterisk_cb.telephony.ari_events import (
    AriEvent,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelEvent,
    ChannelStateChange,
    Dial,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from asterisk_cb.telephony.ari_stream import AriEventStream, ResyncSnapshot, StreamSettings
from asterisk_cb.telephony.backoff import Backoff

pytestmark = pytest.mark.lab


@pytest.fixture
def prefix() -> str:
    """This test's channel and bridge id prefix: what it owns, and what its teardown clears."""
    return f"acb-it-{uuid.uuid4().hex[:8]}"


def _settings(lab_ari: dict[str, str], app: str) -> AriSettings:
    return AriSettings(url=lab_ari["url"], username=lab_ari["user"], password=lab_ari["password"], app=app)


@pytest.fixture
async def ari_client(lab_ari: dict[str, str], prefix: str) -> AsyncIterator[AriClient]:
    """A client on its own Stasis app name (no other test's websocket takes its events); a failing
    test leaves no call or bridge of its own up in the shared lab."""
    async with AriClient(_settings(lab_ari, f"acb-test-{uuid.uuid4().hex[:8]}")) as client:
        yield client
        for channel in await client.list_channels():
            if channel.id.startswith(prefix):
                with contextlib.suppress(ChannelGone):
                    await client.hangup(channel.id)
        for bridge in await client.list_bridges():
            if bridge.id.startswith(prefix):
                with contextlib.suppress(AriNotFound):
                    await client.destroy_bridge(bridge.id)


@pytest.fixture
async def stream(ari_client: AriClient, prefix: str) -> AsyncIterator[AriEventStream]:
    settings = StreamSettings(owned_prefix=prefix, backoff=Backoff(initial_s=0.2, cap_s=2.0))
    events = AriEventStream(ari_client, settings)
    yield events
    await events.stop()


def _collect(stream: AriEventStream) -> list[AriEvent]:
    seen: list[AriEvent] = []
    stream.subscribe(seen.append)
    return seen


def _has(seen: list[AriEvent], kind: type[ChannelEvent], channel_id: str) -> bool:
    return any(isinstance(e, kind) and e.channel.id == channel_id for e in seen)


def _first(seen: list[AriEvent], kind: type[ChannelEvent], channel_id: str) -> Any:
    return next(e for e in seen if isinstance(e, kind) and e.channel.id == channel_id)


async def _until(predicate: Callable[[], Any], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the condition is set by the event stream
            await asyncio.sleep(0.05)


async def _until_gone(client: AriClient, channel_id: str, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                await client.get_channel(channel_id)
            except ChannelGone:
                return
            await asyncio.sleep(0.1)


async def test_connects_and_answers_ping(stream: AriEventStream, ari_client: AriClient) -> None:
    stream.start()
    await stream.wait_ready(10)
    assert stream.health.snapshot().connected
    assert (await ari_client.ping())["ping"] == "pong"
    info = await ari_client.asterisk_info()
    assert info["system"]["version"].startswith("22.")


async def test_agent_call_into_stasis_up_then_hung_up(
    stream: AriEventStream, ari_client: AriClient, prefix: str
) -> None:
    channel_id = f"{prefix}-agent"
    seen = _collect(stream)
    stream.start()
    await stream.wait_ready(10)
    await ari_client.originate("PJSIP/1001", channel_id=channel_id, app_args="agent,it", timeout_s=15)
    await _until(lambda: _has(seen, StasisStart, channel_id), 20)
    start = _first(seen, StasisStart, channel_id)
    assert start.args == ("agent", "it")
    assert start.channel.state == "Up"
    assert any(isinstance(e, ChannelStateChange) and e.channel.state == "Up" for e in seen)
    assert (await ari_client.get_channel(channel_id)).state == "Up"
    await ari_client.hangup(channel_id, reason="normal")
    await _until(lambda: _has(seen, ChannelDestroyed, channel_id), 10)
    kinds = [type(e) for e in seen if isinstance(e, ChannelEvent) and e.channel.id == channel_id]
    assert kinds.index(StasisStart) < kinds.index(StasisEnd) < kinds.index(ChannelDestroyed)
    assert _first(seen, ChannelDestroyed, channel_id).cause == 16
    with pytest.raises(ChannelGone):
        await ari_client.get_channel(channel_id)


async def test_agent_first_bridge_with_a_contact_through_the_outbound_context(
    stream: AriEventStream, ari_client: AriClient, prefix: str
) -> None:
    """Every REST call the executor makes, against the real Asterisk: the parameters must be right."""
    agent_id, contact_id, bridge_id = f"{prefix}-agent", f"{prefix}-contact", prefix
    seen = _collect(stream)
    stream.start()
    await stream.wait_ready(10)
    await ari_client.originate("PJSIP/1001", channel_id=agent_id, timeout_s=15)
    await _until(lambda: _has(seen, StasisStart, agent_id), 20)
    bridge = await ari_client.create_bridge(bridge_id, name="it")
    await ari_client.add_channel(bridge.id, agent_id)
    await ari_client.set_variable(agent_id, "ACB_CALLBACK_ID", prefix)
    assert await ari_client.get_variable(agent_id, "ACB_CALLBACK_ID") == prefix
    assert await ari_client.get_variable(agent_id, "ACB_UNSET") is None
    contact_in_stasis = stream.expect(lambda e: isinstance(e, StasisStart) and e.channel.id == contact_id)
    await ari_client.create_channel(
        "Local/2005550100@callback-outbound", channel_id=contact_id, variables={"ACB_CALLBACK_ID": prefix}
    )
    await asyncio.wait_for(contact_in_stasis, 5)  # bridging before it fails with 422 about 1 time in 3
    await ari_client.add_channel(bridge_id, contact_id)
    await ari_client.ring(agent_id)
    await ari_client.dial(contact_id, timeout_s=10)
    answered = (contact_id, "ANSWER")
    await _until(lambda: any(isinstance(e, Dial) and (e.peer.id, e.dialstatus) == answered for e in seen), 15)
    await ari_client.ring_stop(agent_id)
    assert set((await ari_client.get_bridge(bridge_id)).channels) == {agent_id, contact_id}
    playback_id = await ari_client.play(agent_id, "sound:beep", playback_id=f"{prefix}-beep")
    await _until(
        lambda: any(isinstance(e, PlaybackFinished) and e.playback.id == playback_id for e in seen), 10
    )
    await ari_client.moh_start(contact_id)
    await ari_client.moh_stop(contact_id)
    await ari_client.hangup(contact_id, reason="normal")
    await ari_client.hangup(agent_id)
    await ari_client.destroy_bridge(bridge_id)
    await _until(lambda: any(isinstance(e, BridgeDestroyed) and e.bridge.id == bridge_id for e in seen), 10)
    assert _has(seen, ChannelDestroyed, contact_id)


async def test_busy_contact_and_continue_into_dialplan(
    stream: AriEventStream, ari_client: AriClient, prefix: str
) -> None:
    busy_id, agent_id = f"{prefix}-busy", f"{prefix}-agent"
    seen = _collect(stream)
    stream.start()
    await stream.wait_ready(10)
    busy_in_stasis = stream.expect(lambda e: isinstance(e, StasisStart) and e.channel.id == busy_id)
    await ari_client.create_channel("Local/4865550100@callback-outbound", channel_id=busy_id)
    await asyncio.wait_for(busy_in_stasis, 5)  # dialling before it fails with 409 now and then
    await ari_client.dial(busy_id, timeout_s=10)
    await _until(lambda: _has(seen, ChannelDestroyed, busy_id), 15)
    # Through a Local channel the far end's busy arrives as the hangup cause (no Dial BUSY status).
    assert _first(seen, ChannelDestroyed, busy_id).cause == 17
    # Leaving Stasis for the admin's dialplan (as the failover hand-off does): from-contacts declines.
    await ari_client.originate("PJSIP/1002", channel_id=agent_id, timeout_s=15)
    await _until(lambda: _has(seen, StasisStart, agent_id), 20)
    await ari_client.continue_in_dialplan(agent_id, context="from-contacts", extension="5550100")
    await _until(lambda: _has(seen, ChannelDestroyed, agent_id), 10)
    assert _has(seen, StasisEnd, agent_id)
    assert _first(seen, ChannelDestroyed, agent_id).cause == 21


async def test_resync_after_reconnect_finds_our_live_channel(
    stream: AriEventStream, ari_client: AriClient, prefix: str
) -> None:
    """A daemon that lost its websocket (or restarted) learns from the resync what it still owns."""
    channel_id = f"{prefix}-agent"
    seen = _collect(stream)
    snapshots: list[ResyncSnapshot] = []
    stream.on_resync(snapshots.append)
    stream.start()
    await stream.wait_ready(10)
    await ari_client.originate("PJSIP/1002", channel_id=channel_id, timeout_s=15)
    await _until(lambda: _has(seen, StasisStart, channel_id), 20)
    await stream.stop()
    stream.start()
    await stream.wait_ready(10)
    assert [ch.id for ch in snapshots[-1].channels] == [channel_id]


async def test_another_app_adopts_a_call_left_by_a_dead_daemon(
    stream: AriEventStream, ari_client: AriClient, lab_ari: dict[str, str], prefix: str
) -> None:
    """Daemon A dies with a call up in its Stasis app; daemon B (own app name) finds it in its resync,
    controls it, and learns of its end by looking it up (the executor's call check): how a second
    daemon resumes calls without redialling, and without any ARI subscription to tear down later."""
    channel_id = f"{prefix}-agent"
    seen_by_a = _collect(stream)
    stream.start()
    await stream.wait_ready(10)
    await ari_client.originate("PJSIP/1003", channel_id=channel_id, timeout_s=15)
    await _until(lambda: _has(seen_by_a, StasisStart, channel_id), 20)
    await stream.stop()  # daemon A is gone; its call stays up in Stasis
    async with AriClient(_settings(lab_ari, f"{ari_client.settings.app}-b")) as client_b:
        stream_b = AriEventStream(client_b, StreamSettings(owned_prefix=prefix))
        seen_by_b = _collect(stream_b)
        snapshots: list[ResyncSnapshot] = []
        stream_b.on_resync(snapshots.append)
        stream_b.start()
        try:
            await stream_b.wait_ready(10)
            assert [ch.id for ch in snapshots[0].channels] == [channel_id]
            await client_b.hangup(channel_id)
            await _until_gone(client_b, channel_id, 10)
            assert not _has(seen_by_b, ChannelDestroyed, channel_id)  # its events went to A's app
        finally:
            await stream_b.stop()


@pytest.mark.slow
async def test_asterisk_restart_reconnects_reregisters_and_resyncs(
    stream: AriEventStream, ari_client: AriClient, pbx_lab_run: Callable[..., str], prefix: str
) -> None:
    snapshots: list[ResyncSnapshot] = []
    stream.on_resync(snapshots.append)
    seen = _collect(stream)
    stream.start()
    await stream.wait_ready(10)
    pbx_lab_run("cli", "core restart now")
    await _until(lambda: not stream.health.connected, 15)
    await _until(lambda: stream.health.connected and len(snapshots) == 2, 60)
    health = stream.health.snapshot()
    assert health.reconnects == 1
    assert health.last_error
    # The app is registered again: a call into it reaches us on the new websocket.
    channel_id = f"{prefix}-agent"
    await ari_client.originate("PJSIP/1001", channel_id=channel_id, timeout_s=15)
    await _until(lambda: _has(seen, StasisStart, channel_id), 20)
