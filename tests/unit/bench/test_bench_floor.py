"""bench/floor.py's call flow against a recording ARI: each step an agent-first call needs, in order and
no more; an agent's next call once its channel is gone; the end; a failed request failing the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from floor import Floor, FloorCall, FloorPlan

from asterisk_cb.telephony.ari import AriConflict, AriError, AriUnavailable

CALLS = (
    FloorCall("1001", "PJSIP/1001", "2010300001", "Ann"),
    FloorCall("1001", "PJSIP/1001", "2010300002", ""),
)


class RecordingAri:
    """The AriClient calls the floor makes, recorded; ``failing`` names one that Asterisk refuses, or
    that does not reach it the first ``unsent`` times (and goes through after)."""

    def __init__(self, failing: str = "", unsent: int = 0, landed: bool = False) -> None:
        self.requests: list[tuple[Any, ...]] = []
        self.failing = failing
        self.unsent = unsent
        self.refused = not unsent
        self.landed = landed  # the unsent one was carried out after all: a repeat is a conflict

    def _record(self, *request: Any) -> None:
        self.requests.append(request)
        if request[0] != self.failing:
            return
        if self.unsent:
            self.unsent -= 1
            raise AriUnavailable(f"{self.failing}: Can not write request body")
        if self.landed:
            raise AriConflict(f"{self.failing}: 409 already exists", 409)
        if self.refused:
            raise AriError(f"{self.failing} refused", 500)

    async def originate(self, endpoint: str, *, channel_id: str, **params: Any) -> None:
        self._record("originate", endpoint, channel_id, params)

    async def create_bridge(self, bridge_id: str) -> None:
        self._record("create_bridge", bridge_id)

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        self._record("add_channel", bridge_id, channel_id)

    async def hangup(self, channel_id: str) -> None:
        self._record("hangup", channel_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        self._record("destroy_bridge", bridge_id)


def plan(calls: tuple[FloorCall, ...] = CALLS) -> FloorPlan:
    return FloorPlan("http://ari", "u", "p", "floor-app", "callback-outbound", 20, time.time(), calls)


async def settled(ari: RecordingAri) -> list[tuple[Any, ...]]:
    """The requests made once the floor's tasks ran; the list is emptied for the next step."""
    for _ in range(20):
        await asyncio.sleep(0)
    done, ari.requests = ari.requests, []
    return done


def event(kind: str, channel: str) -> dict[str, Any]:
    return {"type": kind, "channel": {"id": channel}}


async def test_an_agent_first_call_then_the_agents_next() -> None:
    ari = RecordingAri()
    floor = Floor(ari, plan())  # type: ignore[arg-type]
    floor.ring_next("1001")
    ring = {"app_args": "agent", "caller_id": '"CB Ann" <2010300001>', "timeout_s": 20}
    assert await settled(ari) == [("originate", "PJSIP/1001", "floor-app-1-agent", ring)]

    floor.on_event(event("StasisStart", "floor-app-1-agent"))
    contact = {"app_args": "contact", "originator": "floor-app-1-agent"}
    assert await settled(ari) == [  # the contact first: nothing waits for the bridge
        ("originate", "Local/2010300001@callback-outbound/n", "floor-app-1-contact", contact),
        ("create_bridge", "floor-app-1"),
        ("add_channel", "floor-app-1", "floor-app-1-agent"),
    ]
    floor.on_event(event("StasisStart", "floor-app-1-contact"))
    assert await settled(ari) == [("add_channel", "floor-app-1", "floor-app-1-contact")]

    floor.on_event(event("ChannelDestroyed", "floor-app-1-contact"))
    assert await settled(ari) == [("hangup", "floor-app-1-agent")]
    floor.on_event(event("ChannelDestroyed", "floor-app-1-agent"))
    requests = await settled(ari)
    assert requests[0] == ("destroy_bridge", "floor-app-1")
    assert requests[1][:3] == ("originate", "PJSIP/1001", "floor-app-2-agent")
    assert not floor.all_ended.is_set()


async def test_the_run_ends_when_every_call_ended() -> None:
    ari = RecordingAri()
    floor = Floor(ari, plan(CALLS[:1]))  # type: ignore[arg-type]
    floor.ring_next("1001")
    floor.on_event(event("StasisStart", "floor-app-1-agent"))
    await settled(ari)
    floor.on_event(event("ChannelDestroyed", "floor-app-1-agent"))  # the agent hung up first
    assert await settled(ari) == [("hangup", "floor-app-1-contact")]
    assert not floor.all_ended.is_set()
    floor.on_event(event("ChannelDestroyed", "floor-app-1-contact"))
    assert await settled(ari) == [("destroy_bridge", "floor-app-1")]
    assert floor.all_ended.is_set() and floor.failure is None


async def test_other_channels_events_are_ignored() -> None:
    ari = RecordingAri()
    floor = Floor(ari, plan())  # type: ignore[arg-type]
    floor.on_event(event("StasisStart", "someone-else"))
    floor.on_event({"type": "ApplicationReplaced"})
    assert await settled(ari) == []


class SilentSocket:
    """An events websocket that never says anything (until the run stops reading it)."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None


async def test_a_failed_request_fails_the_run() -> None:
    floor = Floor(RecordingAri(failing="originate"), plan())  # type: ignore[arg-type]
    with pytest.raises(AriError, match="originate refused"):
        await asyncio.wait_for(floor.run(SilentSocket()), 5)  # type: ignore[arg-type]


@pytest.mark.parametrize("landed", [False, True], ids=["lost", "carried-out"])
async def test_a_request_whose_answer_did_not_come_is_sent_again_once(landed: bool) -> None:
    ari = RecordingAri(failing="create_bridge", unsent=1, landed=landed)
    floor = Floor(ari, plan())  # type: ignore[arg-type]
    floor.ring_next("1001")
    floor.on_event(event("StasisStart", "floor-app-1-agent"))
    requests = await settled(ari)
    assert [r[:2] for r in requests if r[0] != "originate"] == [
        ("create_bridge", "floor-app-1"),
        ("create_bridge", "floor-app-1"),
        ("add_channel", "floor-app-1"),
    ]
    assert floor.failure is None


async def test_a_request_unsent_twice_fails_the_run() -> None:
    floor = Floor(RecordingAri(failing="originate", unsent=2), plan())  # type: ignore[arg-type]
    with pytest.raises(AriUnavailable):
        await asyncio.wait_for(floor.run(SilentSocket()), 5)  # type: ignore[arg-type]


async def test_every_leg_still_up_is_hung_up_at_the_end() -> None:
    ari = RecordingAri()
    floor = Floor(ari, plan())  # type: ignore[arg-type]
    floor.ring_next("1001")
    floor.on_event(event("StasisStart", "floor-app-1-agent"))
    await settled(ari)
    await floor.hang_up_all()
    assert sorted(await settled(ari)) == [
        ("destroy_bridge", "floor-app-1"),
        ("hangup", "floor-app-1-agent"),
        ("hangup", "floor-app-1-contact"),
    ]


def test_the_plan_travels_as_json() -> None:
    sent = plan()
    assert FloorPlan.from_json(sent.to_json()) == sent
