"""A person's change reaching the executor at the same moment as the call's own progress, against the
fake ARI and a store that hands a pending request over the way the real one does (the real store is
tested in tests/integration/test_store_requests, the real PBX in tests/e2e/test_callback_live_changes)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from ari_fake import FakeAri
from test_executor_failures import RecordingStore, _claim, _executor

from asterisk_cb.core.inputs import Cancel, ChangeRequest
from asterisk_cb.core.model import Callback, Event, Outcome, State
from asterisk_cb.store import Claim
from asterisk_cb.telephony.ari import AriClient
from asterisk_cb.telephony.ari_stream import AriEventStream


class RequestingStore(RecordingStore):
    """``Store``'s holder side: ``request`` is stored just before the commit into ``arrives_at``, so
    that commit hands it over; applying or refusing it records what the requester would learn."""

    def __init__(self, request: ChangeRequest, arrives_at: State) -> None:
        super().__init__()
        self.request: ChangeRequest | None = request  # None once stored
        self.arrives_at = arrives_at
        self.pending: ChangeRequest | None = None
        self.outcomes: list[str] = []

    async def commit(
        self,
        claim: Claim,
        after: Callback,
        events: Sequence[Event],
        *,
        applying: ChangeRequest | None = None,
    ) -> Claim:
        assert after.version == claim.callback.version + 1
        if after.state is self.arrives_at and self.request is not None:
            self.pending, self.request = self.request, None
        if applying is not None:
            assert applying == self.pending
            self.pending = None
            self.outcomes.append("applied")
        self.committed.append(after)
        return dataclasses.replace(claim, callback=after, request=self.pending)

    async def settle(self, claim: Claim, request: ChangeRequest, refusal: str) -> Claim:
        assert request == self.pending
        self.pending = None
        self.outcomes.append(f"refused: {refusal}")
        return dataclasses.replace(claim, request=None)


async def _agent_answers(fake_ari: FakeAri, running: asyncio.Task[None]) -> None:
    async with asyncio.timeout(3):
        while not fake_ari.channels:  # noqa: ASYNC110 - the fake records the originate
            await asyncio.sleep(0.01)
    [agent_channel] = fake_ari.channels
    answered = {"id": agent_channel, "name": "PJSIP/1001-00000001", "state": "Up"}
    await fake_ari.push({"type": "StasisStart", "application": "asterisk-cb", "channel": answered})
    await asyncio.wait_for(running, 3)


async def test_a_cancel_racing_the_agents_answer_hangs_up_and_never_dials_the_contact(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RequestingStore(ChangeRequest("r1", Cancel("supervisor")), State.CONTACT_RINGING)
    executor = _executor(ari_client, events, store)
    await _agent_answers(fake_ari, asyncio.create_task(executor.execute(_claim())))

    assert [cb.state for cb in store.committed] == [
        State.AGENT_RINGING,
        State.CONTACT_RINGING,
        State.CANCELLED,
    ]
    assert store.outcomes == ["applied"]
    assert store.committed[-1].attempts[-1].outcome is Outcome.CANCELLED
    assert fake_ari.calls["POST /ari/channels/create"] == 0  # the contact was never dialled
    assert fake_ari.channels == {}  # the answered agent leg was hung up
    assert fake_ari.calls["POST /ari/bridges/acb-u1-1-bridge"] == 0


async def test_with_two_phones_a_cancel_at_the_answer_also_stops_the_other_ring(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    """The answered attempt lists only the answered phone: the other's ring ends by the answer's own
    StopRinging, which is still performed when the person's change ends the call."""
    store = RequestingStore(ChangeRequest("r1", Cancel("supervisor")), State.CONTACT_RINGING)
    executor = _executor(ari_client, events, store, devices=("PJSIP/1001", "PJSIP/1011"))
    running = asyncio.create_task(executor.execute(_claim()))
    async with asyncio.timeout(3):
        while len(fake_ari.channels) < 2:  # noqa: ASYNC110 - the fake records the originates
            await asyncio.sleep(0.01)
    desk, mobile = sorted(fake_ari.channels)
    answered = dict(fake_ari.channels[mobile], state="Up")
    await fake_ari.push({"type": "StasisStart", "application": "asterisk-cb", "channel": answered})
    await asyncio.wait_for(running, 3)

    assert [cb.state for cb in store.committed][-1] is State.CANCELLED
    assert fake_ari.channels == {}  # the other phone's ring and the answered leg both ended
    assert ("DELETE", f"/ari/channels/{desk}") in [(m, p) for m, p, _, _ in fake_ari.requests]
    assert fake_ari.calls["POST /ari/channels/create"] == 0
