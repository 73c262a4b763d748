"""An agent with several ready devices: every one rings at once, the first to answer takes the
callback and the others stop ringing; nobody answering is one missed ring with one outcome.

Against the fake ARI (the real-PBX proof is tests/e2e/test_callback_devices.py)."""

from __future__ import annotations

import asyncio

import pytest
from ari_fake import FakeAri
from test_executor_failures import NOW, SETTINGS, RecordingStore, _claim
from test_executor_failures import _executor as failures_executor

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle
from asterisk_cb.core.model import Callback, LegRole, Outcome, State
from asterisk_cb.telephony.ari import AriClient
from asterisk_cb.telephony.ari_events import Channel
from asterisk_cb.telephony.ari_stream import AriEventStream
from asterisk_cb.telephony.executor import CallbackExecutor
from asterisk_cb.telephony.progress import LegWatch, combined_miss

DESK, MOBILE = "PJSIP/1001", "PJSIP/1011"
RINGS = ("acb-acb-u1-1-agent", "acb-acb-u1-1-agent-2")


def _executor(ari_client: AriClient, events: AriEventStream, store: RecordingStore) -> CallbackExecutor:
    return failures_executor(ari_client, events, store, devices=(DESK, MOBILE))


async def _rung(fake_ari: FakeAri, count: int) -> None:
    async with asyncio.timeout(3):
        while len(fake_ari.channels) < count:  # noqa: ASYNC110 - the fake records the originates
            await asyncio.sleep(0.01)


def _originated(fake_ari: FakeAri) -> list[tuple[str, str]]:
    return [
        (q["endpoint"], q["channelId"])
        for m, p, q, _ in fake_ari.requests
        if (m, p) == ("POST", "/ari/channels")
    ]


async def _end(fake_ari: FakeAri, channel_id: str, cause: int) -> None:
    channel = fake_ari.channels.pop(channel_id)
    await fake_ari.push(
        {"type": "ChannelDestroyed", "application": "asterisk-cb", "channel": channel, "cause": cause}
    )


async def test_every_ready_device_rings_and_the_first_to_answer_stops_the_others(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    running = asyncio.create_task(_executor(ari_client, events, store).execute(_claim()))
    await _rung(fake_ari, 2)
    assert _originated(fake_ari) == list(zip((DESK, MOBILE), RINGS, strict=True))  # shortest id first

    answered = dict(fake_ari.channels[RINGS[1]], state="Up")
    await fake_ari.push({"type": "StasisStart", "application": "asterisk-cb", "channel": answered})
    async with asyncio.timeout(3):
        while RINGS[0] in fake_ari.channels:  # noqa: ASYNC110 - the other ring is hung up
            await asyncio.sleep(0.01)
    running.cancel()

    hang_ups = [
        (p, q) for m, p, q, _ in fake_ari.requests if m == "DELETE" and p.startswith("/ari/channels/")
    ]
    assert hang_ups[0] == (f"/ari/channels/{RINGS[0]}", {"reason": "answered_elsewhere"})
    connecting = next(cb for cb in store.committed if cb.state is State.CONTACT_RINGING)
    [agent] = connecting.attempts[-1].legs_of(LegRole.AGENT)
    assert (agent.channel_id, agent.uniqueid) == (RINGS[1], RINGS[1])


async def test_a_device_that_cannot_be_rung_leaves_the_others_ringing(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    fake_ari.unreachable.add(DESK)
    running = asyncio.create_task(_executor(ari_client, events, store).execute(_claim()))
    await _rung(fake_ari, 1)
    assert [cb.state for cb in store.committed] == [State.AGENT_RINGING]  # still ringing the mobile

    await _end(fake_ari, RINGS[1], cause=19)  # the mobile rang out
    await asyncio.wait_for(running, 3)

    ringing, missed = store.committed
    assert ringing.state is State.AGENT_RINGING
    assert (missed.state, missed.missed_agent_rings) == (State.SCHEDULED, 1)
    assert (missed.attempts[-1].outcome, missed.attempts[-1].hangup_cause) == (Outcome.AGENT_NO_ANSWER, 19)


async def test_no_device_can_be_rung_is_one_failed_ring(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    fake_ari.unreachable |= {DESK, MOBILE}
    await _executor(ari_client, events, store).execute(_claim())
    _, missed = store.committed
    assert (missed.missed_agent_rings, missed.attempts[-1].outcome) == (1, Outcome.AGENT_FAILED)


def _ringing_two() -> Callback:
    request = lifecycle.NewCallback("0612345678", "1001", NOW, "test")
    callback = lifecycle.create(request, "acb-u1", NOW, SETTINGS).callback
    return lifecycle.step(callback, ev.Due(True, rings=2), NOW, SETTINGS).callback


@pytest.mark.parametrize(
    ("first", "second", "agent"),
    [
        (Outcome.AGENT_REJECTED, Outcome.AGENT_REJECTED, Outcome.AGENT_REJECTED),  # all declined
        (Outcome.AGENT_REJECTED, Outcome.AGENT_NO_ANSWER, Outcome.AGENT_NO_ANSWER),  # one rang out
        (Outcome.AGENT_NO_ANSWER, Outcome.AGENT_BUSY, Outcome.AGENT_BUSY),  # on a call: busy
        (Outcome.AGENT_FAILED, Outcome.AGENT_REJECTED, Outcome.AGENT_REJECTED),  # declined where it rang
        (Outcome.AGENT_FAILED, Outcome.AGENT_FAILED, Outcome.AGENT_FAILED),
    ],
)
def test_the_agents_outcome_once_every_ring_ended(first: Outcome, second: Outcome, agent: Outcome) -> None:
    misses = [
        ev.AgentMissed(first, ev.LegInfo(uniqueid="a")),
        ev.AgentMissed(second, ev.LegInfo(uniqueid="b")),
    ]
    assert combined_miss(misses).outcome is agent
    assert combined_miss(misses) is next(miss for miss in misses if miss.outcome is agent)


def test_the_agents_ring_is_over_only_when_the_last_ring_ends() -> None:
    callback = _ringing_two()
    watch = LegWatch(device_state_before={RINGS[0]: "NOT_INUSE", RINGS[1]: "NOT_INUSE"})
    assert watch.ring_failed(callback, "acb-acb-u1-1-agent") is None
    assert watch.ring_failed(callback, "acb-acb-u1-1-agent-2") == ev.AgentMissed(Outcome.AGENT_FAILED)


def test_a_ring_that_vanished_in_an_events_gap_counts_as_ended() -> None:
    callback = _ringing_two()
    watch = LegWatch()
    still = {RINGS[1]: _channel(RINGS[1])}
    assert watch.reconciled(callback, still) is None  # one still rings
    assert watch.ring_failed(callback, RINGS[1]) == ev.AgentMissed(Outcome.AGENT_FAILED)


def test_a_ring_answered_unseen_is_found_among_several() -> None:
    callback = _ringing_two()
    alive = {RINGS[0]: _channel(RINGS[0]), RINGS[1]: _channel(RINGS[1], "Up")}
    assert LegWatch().reconciled(callback, alive) == ev.AgentAnswered(ev.LegInfo(uniqueid=RINGS[1]))


def _channel(channel_id: str, state: str = "Ringing") -> Channel:
    return Channel(channel_id, "PJSIP/x", state)
