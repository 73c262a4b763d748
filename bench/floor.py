"""The floor of bench/calls.py: the least an agent-first callback call needs over ARI, and nothing else.

    .venv/bin/python bench/floor.py PLAN.json     # bench/calls.py writes the plan and starts it

No Redis, no claim, no lock, no lease, no history, no queue pause, no device state: at the due time it
originates every agent's first call into its Stasis application; the moment an agent answers (its
StasisStart) it originates the contact's ``Local/<number>@<outbound context>/n`` (the daemon's dial
string) and, concurrently, creates the call's bridge with the agent in it; the contact's ``Local``
channel joins the bridge when it enters the application (the contact answered). When either leg ends,
the other is hung up and the bridge destroyed; an agent with more calls is rung again the moment its
channel is gone. So "how close asterisk-cb is to what Asterisk allows" is measured against a client
that makes the fewest ARI requests an agent-first call can take, in a process of its own whose CPU the
bench reads like the daemon's.

It prints ``ready`` once its events websocket is up, ``done`` once every call ended, then waits for
SIGTERM (the bench reads its CPU time from /proc first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from asterisk_cb.telephony.ari import AriClient, AriConflict, AriError, AriSettings, AriUnavailable
from asterisk_cb.telephony.call_marks import agent_caller_id


class Call(Protocol):
    """What the floor needs of one planned call (bench/calls.py's ``Call``)."""

    agent: str
    number: str
    name: str


@dataclass(frozen=True)
class FloorCall:
    """One planned call: the agent's endpoint rung first, then the contact's number."""

    agent: str
    endpoint: str
    number: str
    name: str


@dataclass(frozen=True)
class FloorPlan:
    """What bench/calls.py hands the floor (as JSON): where ARI is, the calls, when they are due."""

    ari_url: str
    ari_user: str
    ari_password: str
    app: str
    outbound_context: str
    ring_timeout_s: int
    due: float  # epoch seconds
    calls: tuple[FloorCall, ...]

    def to_json(self) -> str:
        fields = self.__dict__ | {"calls": [call.__dict__ for call in self.calls]}
        return json.dumps(fields)

    @classmethod
    def from_json(cls, text: str) -> FloorPlan:
        fields = json.loads(text)
        return cls(**fields | {"calls": tuple(FloorCall(**call) for call in fields["calls"])})

    @classmethod
    def on_lab(
        cls, info: Mapping[str, Any], calls: Iterable[Call], due: float, ring_timeout_s: int
    ) -> FloorPlan:
        """The plan for the lab of ``info`` (`scripts/pbx-lab env --json`), with an application of its own."""
        ari = info["ari"]
        return cls(
            ari_url=ari["url"],
            ari_user=ari["user"],
            ari_password=ari["password"],
            app=f"acb-bench-floor-{os.urandom(4).hex()}",
            outbound_context=info["dialplan"]["outbound_context"],
            ring_timeout_s=ring_timeout_s,
            due=due,
            calls=tuple(
                FloorCall(call.agent, info["agents"][call.agent]["endpoint"], call.number, call.name)
                for call in calls
            ),
        )


@dataclass
class Leg:
    """A channel the floor originated; ``peer`` the other leg of its call (once there is one)."""

    call: FloorCall
    bridge: str
    role: str  # "agent" or "contact"
    peer: str = ""


class Floor:
    """Places the plan's calls, one at a time per agent, and says when all have ended."""

    def __init__(self, ari: AriClient, plan: FloorPlan) -> None:
        self.ari = ari
        self.plan = plan
        self.queued: dict[str, deque[FloorCall]] = {}
        for call in plan.calls:
            self.queued.setdefault(call.agent, deque()).append(call)
        self.legs: dict[str, Leg] = {}
        self.bridges: dict[str, asyncio.Task[None]] = {}  # bridge id -> its creation with the agent in it
        self.tasks: set[asyncio.Task[None]] = set()
        self.numbered = 0
        self.all_ended = asyncio.Event()  # or the run failed
        self.failure: BaseException | None = None

    def spawn(self, work: Any) -> asyncio.Task[None]:
        """Run a request on its own; the first that fails ends the run with its error."""
        task: asyncio.Task[None] = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()
            self.all_ended.set()

    def ring_next(self, agent: str) -> None:
        """Originate the agent's next call, if it has one."""
        queued = self.queued[agent]
        if not queued:
            return
        call = queued.popleft()
        self.numbered += 1
        bridge = f"{self.plan.app}-{self.numbered}"  # the app's name is new each run: so are the ids
        channel = f"{bridge}-agent"
        self.legs[channel] = Leg(call, bridge, "agent")
        self.spawn(self._originate_agent(channel, call))

    async def _originate_agent(self, channel: str, call: FloorCall) -> None:
        await again_once(
            lambda: self.ari.originate(
                call.endpoint,
                channel_id=channel,
                app_args="agent",
                caller_id=agent_caller_id(call.name, call.number),
                timeout_s=self.plan.ring_timeout_s,
            )
        )

    def on_event(self, event: dict[str, Any]) -> None:
        channel = event.get("channel", {}).get("id", "")
        leg = self.legs.get(channel)
        if leg is None:
            return
        if event["type"] == "StasisStart":
            self.spawn(self._answered(channel, leg))
        elif event["type"] == "ChannelDestroyed":
            self._ended(channel, leg)

    async def _answered(self, channel: str, leg: Leg) -> None:
        """The agent answered: dial the contact and build the bridge at once; the contact answered: join."""
        if leg.role == "agent":
            contact = channel.replace("-agent", "-contact")
            leg.peer = contact
            self.legs[contact] = Leg(leg.call, leg.bridge, "contact", peer=channel)
            self.bridges[leg.bridge] = self.spawn(self._bridge(leg.bridge, channel))
            endpoint = f"Local/{leg.call.number}@{self.plan.outbound_context}/n"
            await again_once(
                lambda: self.ari.originate(
                    endpoint, channel_id=contact, app_args="contact", originator=channel
                )
            )
        else:
            await self.bridges[leg.bridge]
            await again_once(lambda: self.ari.add_channel(leg.bridge, channel))

    async def _bridge(self, bridge: str, agent_channel: str) -> None:
        await again_once(lambda: self.ari.create_bridge(bridge))
        await again_once(lambda: self.ari.add_channel(bridge, agent_channel))

    def _ended(self, channel: str, leg: Leg) -> None:
        """A leg is gone: hang up its peer, drop the bridge with the call's last leg; a gone agent leg
        frees the agent for its next call."""
        del self.legs[channel]
        if leg.peer in self.legs:
            self.spawn(self._quietly(self.ari.hangup(leg.peer)))
        elif leg.bridge in self.bridges:
            self.bridges.pop(leg.bridge)
            self.spawn(self._quietly(self.ari.destroy_bridge(leg.bridge)))
        if leg.role == "agent":
            self.ring_next(leg.call.agent)
        if not self.legs and not any(self.queued.values()):
            self.all_ended.set()

    @staticmethod
    async def _quietly(request: Any) -> None:
        """A hang-up or destroy racing Asterisk's own (404) is fine."""
        with contextlib.suppress(AriError):
            await request

    async def hang_up_all(self) -> None:
        """Every leg still up, every bridge still there: a failed run must not leave agents in a Stasis
        application nobody serves (the next run would find them busy), nor bridges behind."""
        await asyncio.gather(
            *(self._quietly(self.ari.hangup(channel)) for channel in list(self.legs)),
            *(self._quietly(self.ari.destroy_bridge(bridge)) for bridge in list(self.bridges)),
        )

    async def run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """From the due time until every call ended; a failed request or a lost websocket fails it."""
        await asyncio.sleep(max(0.0, self.plan.due - time.time()))
        for agent in list(self.queued):
            self.ring_next(agent)
        reader = asyncio.create_task(self._read(ws))
        try:
            await self.all_ended.wait()
        finally:
            reader.cancel()
        if self.failure is not None:
            raise self.failure

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            self.on_event(json.loads(message.data))
        self.failure = self.failure or ConnectionError("the ARI events websocket closed")
        self.all_ended.set()


async def again_once(request: Callable[[], Awaitable[object]]) -> None:
    """A request, sent again once if its answer did not come back: a pooled keep-alive connection that
    Asterisk closed as it was reused (both sides drop idle ones after 15 s) is no failure of the
    floor's. The ids the floor chooses make a repeat harmless: a 409 to the repeat says the first
    one was carried out."""
    try:
        await request()
    except AriUnavailable:
        with contextlib.suppress(AriConflict):
            await request()


async def main(plan: FloorPlan) -> None:
    settings = AriSettings(plan.ari_url, plan.ari_user, plan.ari_password, plan.app)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with AriClient(settings) as ari, ari.session.ws_connect(settings.events_url) as ws:
        print("ready", flush=True)
        floor = Floor(ari, plan)
        try:
            await floor.run(ws)
        finally:
            await floor.hang_up_all()
        print("done", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(FloorPlan.from_json(Path(sys.argv[1]).read_text())))
