"""Our ARI client and event stream against the lab's real Asterisk 22 and SIPp agent phones."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from asterisk_cb.telephony.ari import AriClient, AriSettings, ChannelGone
from asterisk_cb.telephony.ari_events import (
    AriEvent,
    ChannelDestroyed,
    ChannelEvent,
    ChannelStateChange,
    StasisEnd,
    StasisStart,
)
from asterisk_cb.telephony.ari_stream import AriEventStream, ResyncSnapshot, StreamSettings
from asterisk_cb.telephony.backoff import Backoff

pytestmark = pytest.mark.lab


@pytest.fixture
async def ari_client(lab_ari: dict[str, str]) -> AsyncIterator[AriClient]:
    """A client on its own Stasis app name, so no other test's websocket takes its events."""
    app = f"acb-test-{uuid.uuid4().hex[:8]}"
    settings = AriSettings(
        url=lab_ari["url"], username=lab_ari["user"], password=lab_ari["password"], app=app
    )
    async with AriClient(settings) as client:
        yield client


@pytest.fixture
async def stream(ari_client: AriClient) -> AsyncIterator[AriEventStream]:
    settings = StreamSettings(owned_prefix="acb-it-", backoff=Backoff(initial_s=0.2, cap_s=2.0))
    events = AriEventStream(ari_client, settings, watched_devices=lambda: ["PJSIP/1001"])
    yield events
    await events.stop()


def _collect(stream: AriEventStream, channel_id: str) -> list[AriEvent]:
    seen: list[AriEvent] = []
    stream.subscribe(lambda e: seen.append(e) if e.channel.id == channel_id else None, ChannelEvent)
    return seen


async def _until(predicate: Callable[[], Any], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the condition is set by the event stream
            await asyncio.sleep(0.05)


async def test_connects_and_answers_ping(stream: AriEventStream, ari_client: AriClient) -> None:
    stream.start()
    await stream.wait_ready(10)
    assert stream.health.snapshot().connected
    assert (await ari_client.ping())["ping"] == "pong"
    info = await ari_client.asterisk_info()
    assert info["system"]["version"].startswith("22.")


async def test_agent_call_into_stasis_up_then_hung_up(stream: AriEventStream, ari_client: AriClient) -> None:
    channel_id = f"acb-it-{uuid.uuid4().hex[:8]}"
    seen = _collect(stream, channel_id)
    stream.start()
    await stream.wait_ready(10)
    await ari_client.originate("PJSIP/1001", channel_id=channel_id, app_args="agent,it", timeout_s=15)
    await _until(lambda: any(isinstance(e, StasisStart) for e in seen), 20)
    start = next(e for e in seen if isinstance(e, StasisStart))
    assert start.args == ("agent", "it")
    assert start.channel.state == "Up"
    assert any(isinstance(e, ChannelStateChange) and e.channel.state == "Up" for e in seen)
    assert (await ari_client.get_channel(channel_id)).state == "Up"
    await ari_client.hangup(channel_id, reason="normal")
    await _until(lambda: any(isinstance(e, ChannelDestroyed) for e in seen), 10)
    kinds = [type(e) for e in seen]
    assert kinds.index(StasisStart) < kinds.index(StasisEnd) < kinds.index(ChannelDestroyed)
    destroyed = next(e for e in seen if isinstance(e, ChannelDestroyed))
    assert destroyed.cause == 16
    with pytest.raises(ChannelGone):
        await ari_client.get_channel(channel_id)


async def test_resync_after_reconnect_finds_our_live_channel(
    stream: AriEventStream, ari_client: AriClient
) -> None:
    """A daemon that lost its websocket (or restarted) learns from the resync what it still owns."""
    channel_id = f"acb-it-{uuid.uuid4().hex[:8]}"
    seen = _collect(stream, channel_id)
    snapshots: list[ResyncSnapshot] = []
    stream.on_resync(snapshots.append)
    stream.start()
    await stream.wait_ready(10)
    await ari_client.originate("PJSIP/1002", channel_id=channel_id, timeout_s=15)
    try:
        await _until(lambda: any(isinstance(e, StasisStart) for e in seen), 20)
        await stream.stop()
        stream.start()
        await stream.wait_ready(10)
        assert [ch.id for ch in snapshots[-1].channels] == [channel_id]
        assert {d.name for d in snapshots[-1].device_states} >= {"PJSIP/1001"}
    finally:
        await ari_client.hangup(channel_id)


async def test_another_app_adopts_a_call_left_by_a_dead_daemon(
    stream: AriEventStream, ari_client: AriClient, lab_ari: dict[str, str]
) -> None:
    """Daemon A dies with a call up in its Stasis app; daemon B (own app name) subscribes to the call,
    controls it and gets its events. This is how a second daemon resumes calls without redialling."""
    channel_id = f"acb-it-{uuid.uuid4().hex[:8]}"
    seen_by_a = _collect(stream, channel_id)
    stream.start()
    await stream.wait_ready(10)
    await ari_client.originate("PJSIP/1003", channel_id=channel_id, timeout_s=15)
    await _until(lambda: any(isinstance(e, StasisStart) for e in seen_by_a), 20)
    await stream.stop()  # daemon A is gone; its call stays up in Stasis
    settings_b = AriSettings(
        url=lab_ari["url"],
        username=lab_ari["user"],
        password=lab_ari["password"],
        app=f"{ari_client.settings.app}-b",
    )
    async with AriClient(settings_b) as client_b:
        stream_b = AriEventStream(client_b, StreamSettings(owned_prefix="acb-it-"))
        seen_by_b = _collect(stream_b, channel_id)
        snapshots: list[ResyncSnapshot] = []
        stream_b.on_resync(snapshots.append)
        stream_b.start()
        try:
            await stream_b.wait_ready(10)
            assert channel_id in [ch.id for ch in snapshots[0].channels]
            await client_b.subscribe(f"channel:{channel_id}")
            await client_b.hangup(channel_id)
            await _until(lambda: any(isinstance(e, ChannelDestroyed) for e in seen_by_b), 10)
        finally:
            await stream_b.stop()


@pytest.mark.slow
async def test_asterisk_restart_reconnects_reregisters_and_resyncs(
    stream: AriEventStream, ari_client: AriClient, pbx_lab_run: Callable[..., str]
) -> None:
    snapshots: list[ResyncSnapshot] = []
    stream.on_resync(snapshots.append)
    stream.start()
    await stream.wait_ready(10)
    pbx_lab_run("cli", "core restart now")
    await _until(lambda: not stream.health.connected, 15)
    await _until(lambda: stream.health.connected and len(snapshots) == 2, 60)
    health = stream.health.snapshot()
    assert health.reconnects == 1
    assert health.last_error
    # The app is registered again: a call into it reaches us on the new websocket.
    channel_id = f"acb-it-{uuid.uuid4().hex[:8]}"
    seen = _collect(stream, channel_id)
    await ari_client.originate("PJSIP/1001", channel_id=channel_id, timeout_s=15)
    try:
        await _until(lambda: any(isinstance(e, StasisStart) for e in seen), 20)
    finally:
        await ari_client.hangup(channel_id)
