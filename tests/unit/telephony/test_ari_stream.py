"""The events websocket against the fake ARI: resync before events, reconnect after a restart, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from ari_fake import FakeAri, load_fixture

from asterisk_cb.telephony.ari import AriClient
from asterisk_cb.telephony.ari_events import AriEvent, ChannelStateChange, StasisStart
from asterisk_cb.telephony.ari_stream import AriEventStream, ResyncSnapshot, StreamSettings
from asterisk_cb.telephony.backoff import Backoff


def _event(type_name: str) -> dict:
    """The first event of `type_name` recorded off the lab's Asterisk."""
    return next(e for e in load_fixture("ari_events.json") if e["type"] == type_name)


class RecordingSleep:
    """Stands in for asyncio.sleep: records each backoff delay, runs `before_wake` hooks, yields."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.before_wake: Callable[[int], None] = lambda _n: None

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.before_wake(len(self.delays))
        await asyncio.sleep(0.01)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def stream(ari_client: AriClient, sleep: RecordingSleep) -> AsyncIterator[AriEventStream]:
    settings = StreamSettings(
        owned_prefix="acb-", backoff=Backoff(initial_s=1, factor=2, cap_s=8, jitter=0.5)
    )
    events = AriEventStream(ari_client, settings, sleep=sleep, uniform=lambda a, b: b)
    yield events
    await events.stop()


async def _until(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the condition is set by other tasks
            await asyncio.sleep(0.01)


async def test_resync_snapshot_holds_only_what_we_own_and_the_app_subscribes_to_nothing_more(
    stream: AriEventStream, fake_ari: FakeAri
) -> None:
    fake_ari.channels = {
        "acb-1-agent": dict(load_fixture("ari_channel.json"), id="acb-1-agent"),
        "1700000000.12": dict(load_fixture("ari_channel.json"), id="1700000000.12"),
    }
    fake_ari.bridges = {"acb-1": {"id": "acb-1", "bridge_type": "mixing", "channels": []}}
    snapshots: list[ResyncSnapshot] = []
    stream.on_resync(snapshots.append)
    stream.start()
    await stream.wait_ready(3)
    [snapshot] = snapshots
    assert [ch.id for ch in snapshot.channels] == ["acb-1-agent"]
    assert [br.id for br in snapshot.bridges] == ["acb-1"]
    # no "deviceState:" subscription: its teardown when the websocket closes can deadlock ARI (#2170)
    assert not [path for _, path, *_ in fake_ari.requests if "subscription" in path]
    assert stream.health.snapshot().connected


async def test_events_are_dispatched_typed_in_order_after_the_resync(
    stream: AriEventStream, fake_ari: FakeAri
) -> None:
    seen: list[str] = []
    fake_ari.on_connect_events = [_event("StasisStart"), _event("ChannelStateChange"), _event("StasisEnd")]
    stream.on_resync(lambda _snapshot: seen.append("resync"))
    stream.subscribe(lambda event: seen.append(event.type))
    stream.subscribe(lambda event: seen.append(f"typed:{event.type}"), StasisStart, ChannelStateChange)
    stream.start()
    await _until(lambda: len(seen) == 6)
    assert seen == [
        "resync",
        "StasisStart",
        "typed:StasisStart",
        "ChannelStateChange",
        "typed:ChannelStateChange",
        "StasisEnd",
    ]


async def test_a_failing_hook_handler_or_bad_json_does_not_stop_the_stream(
    stream: AriEventStream, fake_ari: FakeAri
) -> None:
    seen: list[AriEvent] = []

    async def broken(_event: object) -> None:
        raise RuntimeError("handler bug")

    stream.on_resync(broken)
    stream.subscribe(broken)
    stream.subscribe(seen.append)
    stream.start()
    await stream.wait_ready(3)
    for ws in fake_ari.websockets:
        await ws.send_str("not json")
        await ws.send_str('{"type": "StasisStart"}')
    await fake_ari.push(_event("StasisEnd"))
    await _until(lambda: len(seen) == 1)
    assert seen[0].type == "StasisEnd"
    assert stream.health.connected


async def test_restart_reconnects_reregisters_and_resyncs(
    stream: AriEventStream, fake_ari: FakeAri, sleep: RecordingSleep
) -> None:
    snapshots: list[ResyncSnapshot] = []
    stream.on_resync(snapshots.append)
    stream.start()
    await stream.wait_ready(3)
    fake_ari.channels = {"acb-2-agent": dict(load_fixture("ari_channel.json"), id="acb-2-agent")}
    await fake_ari.drop_websockets()
    await _until(lambda: len(snapshots) == 2)
    assert fake_ari.calls["GET /ari/events"] == 2
    assert [ch.id for ch in snapshots[1].channels] == ["acb-2-agent"]
    health = stream.health.snapshot()
    assert (health.connected, health.reconnects) == (True, 1)
    assert health.last_error is not None and "closed" in health.last_error
    assert sleep.delays == [1.0]


async def test_backoff_grows_capped_while_asterisk_is_down_then_recovers(
    stream: AriEventStream, fake_ari: FakeAri, sleep: RecordingSleep
) -> None:
    stream.start()
    await stream.wait_ready(3)
    fake_ari.down = True

    def wake(attempts: int) -> None:
        fake_ari.down = attempts < 6

    sleep.before_wake = wake
    await fake_ari.drop_websockets()
    await _until(lambda: len(sleep.delays) == 6 and stream.health.connected)
    assert sleep.delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert stream.health.snapshot().reconnects == 1


async def test_down_at_start_is_reported_in_health(
    stream: AriEventStream, fake_ari: FakeAri, sleep: RecordingSleep
) -> None:
    fake_ari.down = True
    stream.start()
    await _until(lambda: len(sleep.delays) >= 2)
    health = stream.health.snapshot()
    assert not health.connected
    assert health.last_error is not None and "503" in health.last_error
    assert "Traceback" not in health.last_error


async def test_application_replaced_stops_without_stealing_the_app_back(
    stream: AriEventStream, fake_ari: FakeAri, sleep: RecordingSleep
) -> None:
    seen: list[str] = []
    stream.subscribe(lambda event: seen.append(event.type))
    task = stream.start()
    await stream.wait_ready(3)
    await fake_ari.push(_event("ApplicationReplaced"))
    await asyncio.wait_for(task, 3)
    assert seen == ["ApplicationReplaced"]
    health = stream.health.snapshot()
    assert not health.connected
    assert health.last_error is not None and "taken over" in health.last_error
    assert sleep.delays == []
    assert fake_ari.calls["GET /ari/events"] == 1


async def test_expect_resolves_on_the_first_matching_event_and_stops_listening(
    stream: AriEventStream, fake_ari: FakeAri
) -> None:
    stream.start()
    await stream.wait_ready(3)
    asked: list[str] = []

    def is_second_channel_start(event: AriEvent) -> bool:
        asked.append(event.type)
        return isinstance(event, StasisStart) and event.channel.id == "acb-rec-2"

    started = stream.expect(is_second_channel_start)
    starts = [e for e in load_fixture("ari_events.json") if e["type"] == "StasisStart"]
    await fake_ari.push(starts[0])  # acb-rec-1: not it
    await fake_ari.push(starts[1])  # acb-rec-2
    event = await asyncio.wait_for(started, 3)
    assert event.channel.id == "acb-rec-2"
    seen_after: list[AriEvent] = []
    stream.subscribe(seen_after.append)
    await fake_ari.push(starts[1])
    await _until(lambda: len(seen_after) == 1)
    assert asked == ["StasisStart", "StasisStart"]  # not asked again once resolved


async def test_expect_that_times_out_stops_listening(stream: AriEventStream, fake_ari: FakeAri) -> None:
    stream.start()
    await stream.wait_ready(3)
    asked: list[AriEvent] = []
    never = stream.expect(lambda e: bool(asked.append(e)))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(never, 0.05)
    seen_after: list[AriEvent] = []
    stream.subscribe(seen_after.append)
    await fake_ari.push(_event("StasisEnd"))
    await _until(lambda: len(seen_after) == 1)
    assert asked == []
