"""The executor's refusals and failure paths, against the fake ARI and a store that records commits
(the real-PBX paths are in tests/e2e)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from ari_fake import FakeAri, load_fixture

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle
from asterisk_cb.core.effects import EnterQueue
from asterisk_cb.core.inputs import ChangeRequest
from asterisk_cb.core.model import Callback, Event, LegRole, Outcome, Phase, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.store import CallLocks, Claim, LeaseLost, StaleToken
from asterisk_cb.telephony.ari import AriClient
from asterisk_cb.telephony.ari_stream import AriEventStream
from asterisk_cb.telephony.availability import AgentSpec, AvailabilityView
from asterisk_cb.telephony.call_context import CallContext
from asterisk_cb.telephony.call_steps import attempt_bridge_id
from asterisk_cb.telephony.executor import CallbackExecutor, ExecutorOptions
from asterisk_cb.telephony.health import HealthFlag
from asterisk_cb.telephony.progress import leg_channel, queue_channel_id
from asterisk_cb.telephony.queue_leg import enter_queue

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SETTINGS = Settings(max_missed_agent_rings=3, failover_queue="failover")


class RecordingStore:
    """The executor's store (``ExecutorStore``) without Redis: keeps every committed callback, in
    order; nobody else holds a lock and no change is requested (tested against Redis elsewhere)."""

    def __init__(self) -> None:
        self.committed: list[Callback] = []
        self.lease_lost = False  # from now on the lease is refused (another daemon took over)

    async def commit(
        self,
        claim: Claim,
        after: Callback,
        events: Sequence[Event],
        *,
        applying: ChangeRequest | None = None,
    ) -> Claim:
        assert after.version == claim.callback.version + 1
        self.committed.append(after)
        return dataclasses.replace(claim, callback=after)

    async def renew(self, claim: Claim, lease_ms: int) -> Claim:
        if self.lease_lost:
            raise StaleToken("another daemon claimed it")
        return claim

    async def settle(self, claim: Claim, request: ChangeRequest, refusal: str) -> Claim:
        raise AssertionError(f"no change was requested, yet {request} was refused: {refusal}")

    async def pending_request(self, callback_id: str) -> ChangeRequest | None:
        return None

    async def take_call_locks(self, claim: Claim, locks: CallLocks) -> None:
        """Nobody else holds anything here (the locks are tested against Redis)."""

    async def release_call_locks(self, claim: Claim, locks: CallLocks) -> int:
        return 0

    async def follow_requests(self, on_request: Callable[[str | None], None]) -> None:
        await asyncio.Event().wait()  # no request ever comes


def _executor(
    ari_client: AriClient,
    events: AriEventStream,
    store: RecordingStore,
    devices: tuple[str, ...] = ("PJSIP/1001",),
    settings: Settings = SETTINGS,
    feeds: tuple[HealthFlag, ...] = (),
) -> CallbackExecutor:
    """Agent 1001 with ``devices``, every one idle (NOT_INUSE), and ``settings`` for every callback."""
    view = AvailabilityView.of([AgentSpec("1001", devices=devices)])
    for device in devices:
        view.set_device_state(device, "NOT_INUSE")

    async def settings_for(_callback: Callback) -> Settings:
        return settings

    return CallbackExecutor(
        store,
        ari_client,
        events,
        availability=view,
        settings_for=settings_for,
        options=ExecutorOptions("callback-outbound"),
        feeds=feeds,
        clock=lambda: NOW,
    )


def _claim(phase: Phase = Phase.AGENT) -> Claim:
    request = lifecycle.NewCallback("0612345678", "1001", NOW + timedelta(minutes=1), "test")
    callback = lifecycle.create(request, "acb-u1", NOW - timedelta(minutes=1), SETTINGS).callback
    return Claim(dataclasses.replace(callback, phase=phase), 7, False, "test", 0)


async def test_an_agent_ring_asterisk_refuses_is_a_failed_ring_and_frees_the_agent(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    executor = _executor(ari_client, events, store)
    fake_ari.down = True  # REST answers 503 from now on; the events socket stays up

    await executor.execute(_claim())

    ringing, missed = store.committed
    assert ringing.state is State.AGENT_RINGING  # recorded before the originate was tried
    assert (missed.state, missed.missed_agent_rings) == (State.SCHEDULED, 1)
    assert missed.attempts[-1].outcome is Outcome.AGENT_FAILED
    await executor.execute(_claim())  # the failed run does not keep the agent "in a callback"
    assert [cb.state for cb in store.committed[2:]] == [State.AGENT_RINGING, State.SCHEDULED]


async def test_the_queue_phase_dials_the_contact_alone_and_a_refused_dial_is_a_queue_attempt(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    executor = _executor(ari_client, events, store)
    fake_ari.down = True  # REST answers 503 from now on: creating the contact's channel fails

    await executor.execute(_claim(Phase.QUEUE))

    ringing, failed = store.committed
    assert ringing.state is State.CONTACT_RINGING  # recorded before the dial was tried
    assert (failed.state, failed.phase, failed.queue_attempts) == (State.SCHEDULED, Phase.QUEUE, 1)
    assert failed.attempts[-1].outcome is Outcome.FAILED
    assert fake_ari.calls["POST /ari/channels"] == 0  # no agent is rung in the queue phase


async def test_without_the_events_stream_the_agent_counts_as_unavailable(
    ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    executor = _executor(ari_client, events, store)
    await events.stop()  # nothing would tell us how the call goes: do not place one

    await executor.execute(_claim())

    [waiting] = store.committed
    assert (waiting.state, waiting.attempts) == (State.SCHEDULED, ())


async def test_without_the_events_stream_the_queue_phase_waits_and_spends_no_attempt(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    executor = _executor(ari_client, events, store)
    await events.stop()

    await executor.execute(_claim(Phase.QUEUE))

    [waiting] = store.committed
    assert (waiting.state, waiting.phase, waiting.queue_attempts, waiting.attempts) == (
        State.SCHEDULED,
        Phase.QUEUE,
        0,
        (),
    )
    assert fake_ari.calls["POST /ari/channels/create"] == 0


async def test_with_the_views_ami_feed_down_the_agent_counts_as_unavailable(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    """Device states come over AMI: with AMI down the view still says idle, but the agent may have
    taken a call meanwhile. Nobody is rung until AMI is back and has re-seeded the view."""
    store = RecordingStore()
    ami = HealthFlag("ami")
    executor = _executor(ari_client, events, store, feeds=(ami,))
    ami.mark_down("connection lost")

    await executor.execute(_claim())

    [waiting] = store.committed
    assert (waiting.state, waiting.attempts) == (State.SCHEDULED, ())
    assert fake_ari.calls["POST /ari/channels"] == 0
    ami.mark_up()
    running = asyncio.create_task(executor.execute(_claim()))
    async with asyncio.timeout(3):
        while not fake_ari.channels:  # noqa: ASYNC110 - the fake records the originate
            await asyncio.sleep(0.01)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert store.committed[1].state is State.AGENT_RINGING


def _queued_claim() -> Claim:
    """A callback whose contact answered in the queue phase, taken over from a holder that vanished."""
    callback = _claim(Phase.QUEUE).callback
    for happening in (ev.Due(), ev.ContactAnswered()):
        callback = lifecycle.step(callback, happening, NOW, SETTINGS).callback
    assert callback.state is State.QUEUED
    return Claim(callback, 7, True, "test", 0)


@pytest.mark.parametrize(
    ("queue_half_runs", "bridged", "dialled", "added"),
    [("", False, True, True), ("Queue", False, False, True), ("Queue", True, False, False)],
)
async def test_a_resumer_finishes_the_queue_entry_its_dead_holder_left_half_done(
    fake_ari: FakeAri,
    ari_client: AriClient,
    events: AriEventStream,
    queue_half_runs: str,
    bridged: bool,
    dialled: bool,
    added: bool,
) -> None:
    """Killed inside the queue entry, the holder left the contact waiting in silence. The queue
    channel's dialplan half running no application tells it was never dialled (once dialled it runs
    Queue(), and must not be dialled again); the contact's bridge tells whether it was put in."""
    claim = _queued_claim()
    attempt = claim.callback.current_attempt
    assert attempt is not None
    contact = attempt.leg(LegRole.CONTACT)
    assert contact is not None and contact.channel_id is not None
    waiting, bridge_id = queue_channel_id(attempt.id), attempt_bridge_id(attempt.id)
    recorded = load_fixture("ari_channel.json")
    fake_ari.channels = {
        contact.channel_id: dict(recorded, id=contact.channel_id, state="Up"),
        waiting: dict(recorded, id=waiting, state="Down"),
        f"{waiting}-2": dict(
            recorded, id=f"{waiting}-2", state="Ring", dialplan={"app_name": queue_half_runs}
        ),
    }
    in_bridge = [contact.channel_id, *([waiting] if bridged else [])]
    fake_ari.bridges = {bridge_id: {"id": bridge_id, "bridge_type": "mixing", "channels": in_bridge}}
    running = asyncio.create_task(_executor(ari_client, events, RecordingStore()).execute(claim))
    async with asyncio.timeout(3):
        while not any(path.endswith(bridge_id) for _, path, *_ in fake_ari.requests):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # what the resumer does next, if anything
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    posts = [path for method, path, *_ in fake_ari.requests if method == "POST"]
    assert (f"/ari/channels/{waiting}/dial" in posts) is dialled
    assert (f"/ari/bridges/{bridge_id}/addChannel" in posts) is added


async def test_an_agent_who_hangs_up_right_after_answering_is_recorded_as_such(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    executor = _executor(ari_client, events, store)
    running = asyncio.create_task(executor.execute(_claim()))
    async with asyncio.timeout(3):
        while not fake_ari.channels:  # noqa: ASYNC110 - the fake records the originate
            await asyncio.sleep(0.01)
    [agent_channel] = fake_ari.channels
    answered = {"id": agent_channel, "name": "PJSIP/1001-00000001", "state": "Up"}
    del fake_ari.channels[agent_channel]  # gone by the time the executor bridges it

    await fake_ari.push({"type": "StasisStart", "application": "asterisk-cb", "channel": answered})
    await asyncio.wait_for(running, 3)

    assert [cb.state for cb in store.committed] == [
        State.AGENT_RINGING,
        State.CONTACT_RINGING,
        State.SCHEDULED,
    ]
    assert store.committed[-1].attempts[-1].outcome is Outcome.AGENT_HUNG_UP
    # the contact's channel, made while the agent joined the bridge, was never dialled (the
    # attempt's end hangs it up with the rest)
    assert not [path for method, path, *_ in fake_ari.requests if method == "POST" and path.endswith("/dial")]
    # so no contact attempt is counted: the agent missed this callback
    assert (store.committed[-1].agent_attempts, store.committed[-1].missed_agent_rings) == (0, 1)


async def test_a_holder_that_lost_its_lease_never_dials_the_contact_it_created(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    """The dial fence (queue phase: the contact rings first): committed, then taken over while it
    stalled; the channel it created goes, and no dial is sent."""
    store = RecordingStore()
    executor = _executor(ari_client, events, store)
    store.lease_lost = True

    with pytest.raises(LeaseLost):
        await executor.execute(_claim(Phase.QUEUE))

    [ringing] = store.committed  # nothing more could be recorded either
    contact = leg_channel(ringing.attempts[-1], LegRole.CONTACT)
    assert fake_ari.calls["POST /ari/channels/create"] == 1
    assert not [path for _, path, *_ in fake_ari.requests if path.endswith("/dial")]
    assert ("DELETE", f"/ari/channels/{contact}") in [
        (method, path) for method, path, *_ in fake_ari.requests
    ]


async def test_a_holder_that_lost_its_lease_never_rings_the_agent(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    executor = _executor(ari_client, events, store)
    store.lease_lost = True

    with pytest.raises(LeaseLost):
        await executor.execute(_claim())

    assert [callback.state for callback in store.committed] == [State.AGENT_RINGING]
    assert fake_ari.calls["POST /ari/channels"] == 0


async def test_the_contact_is_dialled_with_the_fences_deadline(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    """The normal path of the fence: the dial goes out once the lease is confirmed."""
    store = RecordingStore()
    executor = _executor(ari_client, events, store)
    running = asyncio.create_task(executor.execute(_claim(Phase.QUEUE)))
    async with asyncio.timeout(5):
        while not [path for _, path, *_ in fake_ari.requests if path.endswith("/dial")]:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert [callback.state for callback in store.committed] == [State.CONTACT_RINGING]


async def test_a_holder_that_lost_its_lease_never_dials_the_queue_channel(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    """The queue's Local channel rings the members: its dial is fenced like the contact's."""
    callback = _claim(Phase.QUEUE).callback
    for happening in (ev.Due(), ev.ContactAnswered()):
        transition = lifecycle.step(callback, happening, NOW, SETTINGS)
        callback = transition.callback
    [entering] = [effect for effect in transition.effects if isinstance(effect, EnterQueue)]
    fake_ari.channels[entering.channel_id] = dict(load_fixture("ari_channel.json"), id=entering.channel_id)

    async def taken_over() -> float:
        raise StaleToken("another daemon claimed it")

    call = CallContext(
        ari_client, events, ExecutorOptions("callback-outbound"), SETTINGS, callback, taken_over
    )
    with pytest.raises(LeaseLost):
        await enter_queue(call, entering)

    waiting = queue_channel_id(entering.attempt_id)
    assert fake_ari.calls["POST /ari/channels/create"] == 1
    assert not [path for _, path, *_ in fake_ari.requests if path.endswith("/dial")]
    assert ("DELETE", f"/ari/channels/{waiting}") in [(verb, path) for verb, path, *_ in fake_ari.requests]
