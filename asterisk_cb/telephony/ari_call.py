"""The runner's ``CallPort`` over ARI and AMI: one callback's call as Asterisk sees it.

It turns what Asterisk says (events routed to this call's inbox, a fresh look at its channels after a
gap or a silence) into lifecycle inputs, performs committed effects with the steps of ``agent_leg``,
``contact_leg`` and ``queue_leg``, holds the agent's queue pauses while the call lives, and follows a
call a vanished holder left without dialling again. It knows nothing of claims, leases or Redis
writes: the runner commits before it asks for an effect. The whole story: docs/calls.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from asterisk_cb.core import inputs as ev
from asterisk_cb.core.effects import (
    Connect,
    DialContact,
    Effect,
    EnterQueue,
    HangUp,
    RingAgent,
    StopRinging,
)
from asterisk_cb.core.model import Callback, Phase, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.runner import ChangeNotice, DialFence
from asterisk_cb.telephony.agent_leg import ring_agent, stop_ringing
from asterisk_cb.telephony.answer_marks import POP_HANDLER, AnswerMarks
from asterisk_cb.telephony.ari import AriClient, AriError, AriNotFound
from asterisk_cb.telephony.ari_events import Channel, ChannelDestroyed, StasisStart
from asterisk_cb.telephony.ari_stream import AriEventStream
from asterisk_cb.telephony.availability import AvailabilityView
from asterisk_cb.telephony.call_context import CallContext, ExecutorOptions
from asterisk_cb.telephony.call_routes import CallRoutes, Inbox, Resynced, Signal
from asterisk_cb.telephony.call_steps import quietly
from asterisk_cb.telephony.contact_leg import connect, dial_contact, hang_up, screen
from asterisk_cb.telephony.health import HealthFlag
from asterisk_cb.telephony.progress import (
    AMD_ARG,
    LegWatch,
    Screen,
    marked_channels,
    resume_inputs,
    watched_channels,
)
from asterisk_cb.telephony.queue_guard import Pause, QueueGuard
from asterisk_cb.telephony.queue_leg import enter_queue, finish_entering_queue, with_member

log = logging.getLogger(__name__)

EVENT_GRACE_S = 1.0  # how much later than a REST answer the websocket may bring the matching event


@dataclasses.dataclass(frozen=True)
class Telephony:
    """What every call of one daemon shares: the links, the routing, the availability view."""

    ari: AriClient
    events: AriEventStream
    routes: CallRoutes
    availability: AvailabilityView
    options: ExecutorOptions
    clock: Callable[[], datetime]
    queue_guard: QueueGuard | None = None  # None: agents' queue memberships are left alone
    answers: AnswerMarks | None = None  # None: answers nobody saw are not looked up (counted lost)
    feeds: tuple[HealthFlag, ...] = ()  # the links feeding the availability view (AMI)


class AriCall:
    """One callback's call; ``callback`` arguments are the record as last committed."""

    def __init__(self, parts: Telephony, callback: Callback, settings: Settings, fence: DialFence) -> None:
        self.parts = parts
        self.call = CallContext(parts.ari, parts.events, parts.options, settings, callback, fence)
        self.inbox: Inbox = asyncio.Queue()
        self.watch = LegWatch(screen_answers=settings.amd)
        self._looked: Resynced | None = None  # a look at the channels older than anything in the inbox
        self._ring_devices: tuple[str, ...] = ()  # the agent's ready devices, rung at once
        self._paused: tuple[Pause, ...] = ()  # the agent's queue memberships this call paused
        self._screening = False  # the contact answered and AMD listens: not ringing, not talking yet
        parts.routes.hold(callback.id, self.inbox)

    @property
    def screening(self) -> bool:
        return self._screening

    def ready_rings(self, callback: Callback) -> int | None:
        """The view says the agent is free, ARI is up (else no event would tell how the call goes)
        and so are the view's feeds (else the agent may have gone busy unseen)."""
        parts, agent = self.parts, callback.agent
        seen = parts.availability.check(agent, parts.clock().timestamp())
        down = [
            flag.snapshot().name.upper() for flag in (parts.events.health, *parts.feeds) if not flag.connected
        ]
        detail = f"unknown, {' and '.join(down)} down" if down else seen.detail
        log.info("callback %s due: agent %s %s", callback.id, agent, detail)
        if down or not seen.available:
            return None
        self._ring_devices = seen.ring
        return len(seen.ring)

    @property
    def reachable(self) -> bool:
        return self.parts.events.health.connected

    async def resume(self, callback: Callback) -> tuple[ev.Input, ...]:
        """The previous holder vanished mid-call: follow the recorded channels, never dial again; a
        channel gone after an answer Asterisk recorded (``answer_marks``) is a talk that is over."""
        self.call.callback = callback
        self._follow_channels()  # before looking: an end between the look and the commit is not lost
        alive = await self._look_up_channels()
        taking_over = resume_inputs(callback, alive, await self._read_marks(alive))
        live = taking_over == (ev.CallResumed(),)
        if live and callback.state is State.QUEUED:
            await finish_entering_queue(self.call)
        if live:
            self._looked = Resynced(alive)  # what changed while nobody watched: after CallResumed
        guard = self.parts.queue_guard
        if guard is not None and callback.phase is Phase.AGENT:
            memberships = self.parts.availability.memberships_of(callback.agent)
            self._paused = await guard.take_over(memberships, live=live)
        return tuple([await self._enriched(happening) for happening in taking_over])

    async def next_signal(self, callback: Callback) -> ev.Input | ChangeNotice | None:
        """The input the next signal stands for; an answer to be screened is sent through AMD first."""
        self.call.callback = callback
        signal = await self._next_raw()
        if isinstance(signal, ChangeNotice):
            return signal
        if isinstance(signal, ChannelDestroyed):
            self.call.destroyed.add(signal.channel.id)
        if isinstance(signal, Resynced):
            meaning = self.watch.reconciled(callback, signal.alive)
        else:
            meaning = self.watch.interpret(callback, signal)
        if isinstance(signal, StasisStart) and signal.args[:1] == (AMD_ARG,):  # e.g. NOTSURE,NOAMD
            log.info("callback %s: AMD verdict %s", callback.id, ",".join(signal.args[1:]))
        if isinstance(meaning, Screen):
            screened = await screen(self.call, meaning)
            self._screening = self._screening or screened is True
            meaning = screened if isinstance(screened, ev.Input) else None
        return await self._enriched(meaning) if meaning is not None else None

    async def committed(self, callback: Callback, happening: ev.Input) -> None:
        """Follow the attempt's channels; an answer on record needs no hangup handler to record it
        again: popped, so Asterisk writes marks only for answers nobody saw (``answer_marks``)."""
        self.call.callback = callback
        self._follow_channels()
        self._screening = False  # the verdict (or the end) is in
        if not isinstance(happening, ev.ContactAnswered | ev.MemberAnswered) or not happening.leg.uniqueid:
            return
        attempt = callback.current_attempt
        if attempt is not None and happening.leg.uniqueid in marked_channels(attempt):
            await quietly(self.parts.ari.set_variable(happening.leg.uniqueid, POP_HANDLER, ""))

    async def perform(self, callback: Callback, effect: Effect) -> ev.Input | None:
        self.call.callback = callback
        match effect:
            case RingAgent():
                await self._hold_queues(callback.agent)
                states = self.parts.availability.device_states
                return await ring_agent(self.call, effect, self._ring_devices, states, self.watch)
            case StopRinging():
                await stop_ringing(self.call, effect)
            case DialContact():
                return await dial_contact(self.call, effect)
            case Connect():
                await connect(self.call, effect)
            case HangUp():
                await hang_up(self.call, effect)
            case EnterQueue():
                return await enter_queue(self.call, effect)
        return None  # WatchCall, WaitUntil: channels are followed after every commit, next_at is placed

    async def close(self) -> None:
        """Stop following the call; lift the queue pauses it made."""
        self.parts.routes.leave(self.call.callback.id, self.inbox)
        paused, self._paused = self._paused, ()
        if self.parts.queue_guard is not None and paused:
            await self.parts.queue_guard.release(paused)

    # --- signals ---------------------------------------------------------------------------------

    async def _next_raw(self) -> Signal:
        """The next event about our channels; after ``recheck_s`` of silence, a fresh look at them, so
        an event lost without a reconnect cannot keep a finished call "live" (and its lease held)."""
        if self._looked is not None:
            looked, self._looked = self._looked, None
            return looked
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.parts.options.recheck_s):
                    return await self.inbox.get()
            try:
                looked = Resynced(await self._look_up_channels())
            except AriError as error:  # Asterisk unreachable: the stream's resync will tell, later
                log.info("callback %s: cannot look at its channels: %s", self.call.callback.id, error)
                continue
            # A channel that ended just now is gone from the look before its event (with the real
            # cause) arrives: an event within the grace period wins over the look.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EVENT_GRACE_S):
                    return await self.inbox.get()
            return looked

    async def _look_up_channels(self) -> dict[str, Channel]:
        attempt = self.call.attempt
        alive: dict[str, Channel] = {}
        for channel_id in watched_channels(attempt) if attempt else ():
            with contextlib.suppress(AriNotFound):
                alive[channel_id] = await self.parts.ari.get_channel(channel_id)
        return alive

    def _follow_channels(self) -> None:
        attempt = self.call.attempt
        if attempt is not None:
            self.parts.routes.follow(watched_channels(attempt), self.inbox)

    async def _enriched(self, happening: ev.Input) -> ev.Input:
        return await with_member(self.call, await self._with_linkedid(happening))

    async def _with_linkedid(self, happening: ev.Input) -> ev.Input:
        """An answered leg's linkedid for the history (ARI's channel JSON does not carry it). An agent
        ring is originated with no originator, so it starts its own call: its linkedid is its own
        uniqueid (Asterisk's rule, checked in the e2e tests), known without a request on the path
        from the agent's answer to the contact's dial."""
        if not isinstance(happening, ev.AgentAnswered | ev.ContactAnswered) or not happening.leg.uniqueid:
            return happening
        if isinstance(happening, ev.AgentAnswered):
            return dataclasses.replace(
                happening, leg=dataclasses.replace(happening.leg, linkedid=happening.leg.uniqueid)
            )
        try:
            linkedid = await self.parts.ari.get_variable(happening.leg.uniqueid, "CHANNEL(linkedid)")
        except AriError as error:  # the answer is recorded all the same; the link is a nicety
            log.info("callback %s: no linkedid: %s", self.call.callback.id, error)
            return happening
        return dataclasses.replace(happening, leg=dataclasses.replace(happening.leg, linkedid=linkedid))

    # --- what the call holds ---------------------------------------------------------------------

    async def _hold_queues(self, agent: str) -> None:
        """No queue call for the agent while its callback rings or is live (``queue_guard``)."""
        guard = self.parts.queue_guard
        if guard is not None:
            self._paused += await guard.hold(self.parts.availability.memberships_of(agent))

    async def _read_marks(self, alive: Mapping[str, Channel]) -> tuple[str, ...]:
        """The gone channels of the attempt whose answer Asterisk recorded. AMI down raises: the
        claim's lease lapses and the resume is tried again, rather than a talk taken for a lost ring."""
        attempt, answers = self.call.attempt, self.parts.answers
        if answers is None or attempt is None:
            return ()
        gone = [channel_id for channel_id in marked_channels(attempt) if channel_id not in alive]
        return tuple([channel_id for channel_id in gone if await answers.answered(channel_id)])
