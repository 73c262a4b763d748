"""The scheduler's executor on the real PBX: one claimed callback carried through Asterisk over ARI.

For each claim: decide availability (the in-memory view says so and the ARI events stream is up), take
the call's locks in Redis (``Store.take_call_locks``: the agent's in the agent phase, the contact
number's, a line of the shared pool when calls are capped; all or none), run ``lifecycle.step``, COMMIT
the transition through the store (fenced by the claim's token) and only then perform its effects.
What another callback's call holds makes the callback wait (``Due.waiting``): whatever daemon claimed
them, no agent and no contact number is ever in two callback calls at once. The locks are given back
when the run ends, whatever the ending (a live call keeps them for whoever resumes it). The attempt id
and the ARI channel ids were chosen by the core, so they are on record before anything is originated: a
holder that lost its lease cannot commit and therefore cannot dial, and whoever takes over finds the
channels.

The call, agent first (measured on the lab's Asterisk 22; see ``progress`` for the events):

1. ``RingAgent``: originate every ready device of the agent (availability's ``ring``: fixed phones,
   hot-desk memberships, the app_agent_pool login) into our Stasis app, each with its recorded
   ``channelId`` (``<attempt>-agent``, ``-agent-2``...; one device is exactly the one id of before), the
   ring timeout from the settings, the caller ID ``"CB <contact>" <number>`` (what the agent's display
   shows, ``call_marks``) and inherited variables marking the call. A ring enters the app only when
   answered; the first that does keeps the callback and ``StopRinging`` hangs the others up with
   reason ``answered_elsewhere`` (cause 26: PJSIP's CANCEL carries ``Reason: SIP;cause=200;text="Call
   completed elsewhere"``, so phones log no missed call). Nobody answering ends the agent's ring only
   when every ring has ended; its outcome combines theirs (``progress.combined_miss``: busy, else no
   answer, else rejected, else failed), each judged busy-or-declined by its own device's state before.
2. ``DialContact``: with ``announce_to_agent``, the answered agent leg first plays ``sound:beep`` and
   ``sound:digits/<d>`` for each digit of the number, one ARI play after the other (``_announce``); a
   key (ChannelDtmfReceived) stops the sound playing and skips the rest; the agent gone is
   ``AgentHungUp`` (a missed ring: the contact was not dialled) and nobody is dialled. Then the agent
   leg gets the caller ID the contact must see (the settings', else empty so the dialplan decides: the
   Local channel's dialplan half takes its caller ID from the agent leg's), and joins a mixing bridge
   named after the attempt. The contact leg is ``Local/<number>@<outbound context>/n``: the admin's own
   dialplan (number normalisation, trunk, caller ID rules); ``/n`` keeps Asterisk from optimising the
   Local channel away, which would swap our recorded channel for one we do not know. It is created in
   the app, bridged once its StasisStart came (early media from the trunk reaches the agent), then
   dialled with the contact ring timeout; the agent hears ringback meanwhile.
3. ``Connect`` on answer: ringback stops; the two are already bridged.
4. Every end is a ChannelDestroyed whose cause ``legs`` maps to an outcome; the lifecycle's ``HangUp``
   then ends what is left, and the bridge goes with it.

Gaps in the events: after an ARI reconnect (the stream's resync snapshot) and after ``recheck_s`` of
silence on a live call, the run looks at its channels and ``progress.reconcile`` says what happened
(every leg gone: ``CallLost``). A claim taken over from a vanished holder (``claim.resume``) follows
the recorded channels (``CallResumed``), never dials again; a contact leg found still Down counts as
lost, since it may never have been dialled (``progress.resume_inputs``). A channel gone after an answer
nobody saw is read from Asterisk's own record: the contact's Local channel (agent phase) and the
queue's (queue phase) carry a hangup handler that writes their answer into AstDB; the resumer feeds
that answer and the end instead of a lost ring, and the contact is not dialled again
(``answer_marks``). A run that sees an answer itself removes the handler.

Leases: the scheduler renews the lease of every claim its executor works on for as long as
``execute`` runs, and cancels the task when the lease is lost; effects already started finish (they
are shielded), the call is left to the next holder.

Queue phase (failover): ``DialContact`` dials the contact alone; on answer ``EnterQueue`` bridges it
with ``Local/<queue>@<queue context>/n``, whose dialplan half runs Queue() (see ``_enter_queue``). A
resumer finds that channel created but never dialled when its holder died in between, and dials it
(``_finish_entering_queue``).

Answering machines (setting ``amd``, measured on the lab's Asterisk 22 with app_amd's defaults): when
the contact's ``;1`` turns Up, ``_screen`` sends it out of the app (``POST /channels/{id}/continue``)
into ``amd_context`` (dialplan/callback-amd.conf): AMD() then Stasis(<app>,amd,${AMDSTATUS},${AMDCAUSE})
(<app> is ACB_STASIS_APP, given when the leg was created, see ``_amd_return``). ARI cannot run AMD()
itself, and ``;1`` is the half to send: it is ours, and what it reads is what the contact's side says
(``;2`` is busy in the admin's Dial()). Leaving the app takes it out of the agent's bridge (the agent,
alone there, keeps hearing ringback); the lifecycle hears of the answer only with the verdict
(``progress.amd_verdict``), and ``Connect`` puts the contact back into the bridge. A daemon stopped
meanwhile: Stasis() fails and the context retries it every second for a minute, so the resumer (same app
name) gets the verdict, or finds the half back in the app and screens it again (``progress.reconcile``).
A person saying "hello" was judged HUMAN (HUMAN-800-800) 1.9 s after the answer, a 4 s greeting MACHINE
(LONGGREETING-1500-1500) after 2.0 s.

Queue pauses: with a ``QueueGuard``, the agent's queue memberships are paused (reason "callback") just
before its ring and lifted when the run ends, whatever the ending (``queue_guard``).

A person's change while the call lives (cancel, reschedule, reassign: see ``store`` and
``core.lifecycle``): the service records it on the callback and publishes its id; ``follow_requests``
hands it to the run holding that callback, which applies it as a lifecycle input through its fenced
commit (hanging the ring up) or refuses it (``Store.settle``: e.g. the contact answered meanwhile).
Every commit also returns a pending request: it is taken before the effects of that commit, so
nothing is dialled once a person's change is applied (the committed transition's hang-ups, HangUp and
StopRinging, are still performed). A claim that comes with a request (its holder died before applying
it) applies it first: a resumed call is looked up first, then the request is taken at that commit.

Not here yet: AMD's parameters are amd.conf's, one set for every callback (with ``amd`` off a
voicemail pickup counts as answered); a daemon that dies between an agent's answer and
``StopRinging`` leaves its other phones ringing until their ring timeout (the answered attempt no
longer lists them).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle, rules
from asterisk_cb.core.effects import (
    Connect,
    DialContact,
    Effect,
    EnterQueue,
    HangUp,
    RingAgent,
    StopRinging,
    WaitUntil,
    WatchCall,
)
from asterisk_cb.core.model import Callback, LegRole, Outcome, Phase, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.store import CallLocks, Claim, LinePool, Store
from asterisk_cb.telephony import answer_marks
from asterisk_cb.telephony.ami_events import device_of_channel
from asterisk_cb.telephony.answer_marks import AnswerMarks
from asterisk_cb.telephony.ari import AriClient, AriError, AriNotFound, ChannelNotInStasis
from asterisk_cb.telephony.ari_events import (
    AriEvent,
    Channel,
    ChannelEvent,
    Dial,
    StasisStart,
)
from asterisk_cb.telephony.ari_stream import AriEventStream, ResyncSnapshot
from asterisk_cb.telephony.availability import AvailabilityView
from asterisk_cb.telephony.call_marks import agent_caller_id, callback_variables
from asterisk_cb.telephony.call_steps import (
    ANNOUNCE_TIMEOUT_S,
    agent_gone,
    announcement,
    attempt_bridge_id,
    create_in_app,
    is_key,
    play_until_over,
    quietly,
)
from asterisk_cb.telephony.health import HealthFlag
from asterisk_cb.telephony.progress import (
    AMD_ARG,
    LegWatch,
    Screen,
    leg_channel,
    marked_channels,
    queue_channel_id,
    resume_inputs,
    watched_channels,
)
from asterisk_cb.telephony.queue_guard import Pause, QueueGuard

log = logging.getLogger(__name__)

EVENT_GRACE_S = 1.0  # how much later than a REST answer the websocket may bring the matching event
MEMBER_LOOKUPS, MEMBER_LOOKUP_PAUSE_S = 10, 0.1  # BRIDGEPEER comes within milliseconds of the answer

SettingsFor = Callable[[Callback], Awaitable[Settings]]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True)
class ExecutorOptions:
    """``outbound_context``: the admin's dialplan context the contact is dialled through;
    ``recheck_s``: how long a live call may go without any event before its channels are looked up;
    ``queue_context``: the dialplan context whose extension <queue> puts a caller into that queue;
    ``amd_context``: the context whose extension ``s`` runs AMD() and returns into our app;
    ``lines``: the cap on simultaneous callback calls shared by every daemon (``context_max_calls``)."""

    outbound_context: str
    recheck_s: float = 30.0
    queue_context: str = "callback-queue"  # runs Queue(${EXTEN}) for the failover phase (dialplan/)
    amd_context: str = "callback-amd"  # AMD() for the setting amd (dialplan/callback-amd.conf)
    lines: LinePool | None = None  # every call takes a line of it (None: no cap across daemons)


@dataclasses.dataclass(frozen=True)
class _Resynced:
    """The channels Asterisk holds after an events gap (reconnect, resumed claim), by id."""

    alive: Mapping[str, Channel]


@dataclasses.dataclass(frozen=True)
class _Requested:
    """A person's change of the callback may be waiting (``Store.pending_request`` says)."""


Signal = AriEvent | _Resynced | _Requested


def _seconds(span: timedelta) -> int:
    return max(1, math.ceil(span.total_seconds()))


class CallbackExecutor:
    """Implements ``scheduler.Executor``: ``execute(claim)`` returns once the callback is scheduled
    again or finished; ARI events reach the run that owns the channel they are about."""

    def __init__(
        self,
        store: Store,
        ari: AriClient,
        events: AriEventStream,
        *,
        availability: AvailabilityView,
        settings_for: SettingsFor,
        options: ExecutorOptions,
        queue_guard: QueueGuard | None = None,
        answers: AnswerMarks | None = None,
        feeds: tuple[HealthFlag, ...] = (),
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.ari = ari
        self.events = events
        self.availability = availability
        self.settings_for = settings_for
        self.options = options
        self.queue_guard = queue_guard  # None: agents' queue memberships are left alone
        self.answers = answers  # None: answers nobody saw are not looked up (a resumer counts them lost)
        # The links that feed the availability view (AMI): while one is down the view may be stale.
        self.feeds = feeds
        self.clock = clock
        self._runs: dict[str, _Run] = {}  # channel id -> the run following it
        self._by_callback: dict[str, _Run] = {}  # callback id -> the run holding it
        events.subscribe(self._route, ChannelEvent, Dial)
        events.on_resync(self._resync)

    async def execute(self, claim: Claim) -> None:
        run = _Run(self, claim)
        self._by_callback[claim.callback.id] = run
        try:
            await run.run()
        finally:
            if self._by_callback.get(claim.callback.id) is run:
                del self._by_callback[claim.callback.id]
            run.close()
            await asyncio.shield(run.release_queues())
            await asyncio.shield(run.release_locks())

    async def release_leftover_pauses(self) -> None:
        """At start: lift the "callback" pauses a dead daemon left behind, but not those of agents a
        live callback holds right now (another running daemon's call: its pauses are its own)."""
        if self.queue_guard is None:
            return
        try:
            busy = await self.store.agents_in_calls(list(self.availability.agents))
        except RedisError as error:  # unknown: leave every pause rather than lift a live call's
            log.warning("cannot tell which agents are in calls; leftover callback pauses stay: %s", error)
            return
        in_calls = [member for agent in busy for member in self.availability.memberships_of(agent)]
        await self.queue_guard.release_leftovers(in_calls)

    async def follow_requests(self) -> None:
        """Wake the run holding a callback when a person's change of it is requested; after a gap in
        the channel (start, reconnect) every run looks. Runs until cancelled (the daemon runs it)."""
        await self.store.follow_requests(self._requested)

    def _requested(self, callback_id: str | None) -> None:
        runs = self._by_callback.values() if callback_id is None else [self._by_callback.get(callback_id)]
        for run in runs:
            if run is not None:
                run.inbox.put_nowait(_Requested())

    def _route(self, event: AriEvent) -> None:
        channel = event.peer if isinstance(event, Dial) else getattr(event, "channel", None)
        run = self._runs.get(channel.id) if channel is not None else None
        if run is not None:
            run.inbox.put_nowait(event)

    def _resync(self, snapshot: ResyncSnapshot) -> None:
        """Events may have been lost while the websocket was down: every run re-checks its channels."""
        alive = {channel.id: channel for channel in snapshot.channels}
        for run in set(self._runs.values()):
            run.inbox.put_nowait(_Resynced(alive))


class _Run:
    """One claim being carried: the claim (re-issued by every commit), its settings and its inbox."""

    def __init__(self, executor: CallbackExecutor, claim: Claim) -> None:
        self.x = executor
        self.claim = claim
        self.inbox: asyncio.Queue[Signal] = asyncio.Queue()
        self._looked: _Resynced | None = None  # a look at the channels older than anything in the inbox
        self.watch = LegWatch()
        self.settings = Settings()
        self.ring_devices: tuple[str, ...] = ()  # the agent's ready devices, rung at once
        self._channels: set[str] = set()
        # What this run holds in Redis: with a line pool, the claim itself took a line (Store.claim).
        self._locked: CallLocks | None = self._locks() if executor.options.lines else None
        self._paused: tuple[Pause, ...] = ()  # the agent's queue memberships this run paused
        self._marks_read: tuple[str, ...] = ()  # answer marks this run took over, deleted at the end
        self._screening = False  # the contact answered and AMD listens: not ringing, not talking yet

    @property
    def callback(self) -> Callback:
        return self.claim.callback

    async def run(self) -> None:
        self.settings = await self.x.settings_for(self.callback)
        self.watch.screen_answers = self.settings.amd
        if self.claim.request is not None and not self.claim.resume:
            await self._take_request(self.claim.request)  # its holder died before applying it
            return  # either way the callback was let go: the scheduler hands it out again when due
        pending = deque(await self._resume() if self.claim.resume else (await self._due(),))
        while True:
            if pending:
                follow_up = await self._apply(pending.popleft())
                if follow_up is not None:  # an effect failed: what was still pending no longer applies
                    pending = deque((follow_up,))
                elif not self.callback.state.is_live:  # e.g. a person's change ended it: nor does it
                    pending.clear()
            elif not self.callback.state.is_live:
                return
            elif (happening := await self._understand(await self._next_signal())) is not None:
                pending.append(happening)

    async def _next_signal(self) -> Signal:
        """The next event about our channels; after ``recheck_s`` of silence, a fresh look at them, so
        an event lost without a reconnect cannot keep a finished call "live" (and its lease held)."""
        if self._looked is not None:
            looked, self._looked = self._looked, None
            return looked
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.x.options.recheck_s):
                    return await self.inbox.get()
            try:
                looked = _Resynced(await self._look_up_channels())
            except AriError as error:  # Asterisk unreachable: the stream's resync will tell, later
                log.info("callback %s: cannot look at its channels: %s", self.callback.id, error)
                continue
            # A channel that ended just now is gone from the look before its event (with the real
            # cause) arrives: an event within the grace period wins over the look.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EVENT_GRACE_S):
                    return await self.inbox.get()
            return looked

    async def _look_up_channels(self) -> dict[str, Channel]:
        attempt = self.callback.current_attempt
        alive: dict[str, Channel] = {}
        for channel_id in watched_channels(attempt) if attempt else ():
            with contextlib.suppress(AriNotFound):
                alive[channel_id] = await self.x.ari.get_channel(channel_id)
        return alive

    async def _hold_queues(self) -> None:
        """No queue call for the agent while its callback rings or is live (``queue_guard``)."""
        guard = self.x.queue_guard
        if guard is not None:
            self._paused += await guard.hold(self.x.availability.memberships_of(self.callback.agent))

    async def release_queues(self) -> None:
        """The run is over (call ended, rescheduled, failed or handed over): lift our pauses."""
        paused, self._paused = self._paused, ()
        if self.x.queue_guard is not None and paused:
            await self.x.queue_guard.release(paused)

    def close(self) -> None:
        for channel_id in self._channels:
            if self.x._runs.get(channel_id) is self:
                del self.x._runs[channel_id]

    # --- inputs ---------------------------------------------------------------------------------

    async def _due(self) -> ev.Due:
        """Due: the agent must be available (agent phase), and the call's locks and a line free."""
        if self.callback.phase is Phase.AGENT and not self._agent_ready():
            return ev.Due(agent_available=False)
        waiting = await self._take_locks()
        if waiting is not None:
            log.info("callback %s due: waits, %s", self.callback.id, waiting.value)
        return ev.Due(waiting=waiting, rings=max(1, len(self.ring_devices)))

    def _agent_ready(self) -> bool:
        """The view says the agent is free, ARI is up (else no event would tell how the call goes)
        and so are the view's feeds (else the agent may have gone busy unseen)."""
        agent = self.callback.agent
        seen = self.x.availability.check(agent, self.x.clock().timestamp())
        down = [
            flag.snapshot().name.upper()
            for flag in (self.x.events.health, *self.x.feeds)
            if not flag.connected
        ]
        detail = f"unknown, {' and '.join(down)} down" if down else seen.detail
        log.info("callback %s due: agent %s %s", self.callback.id, agent, detail)
        if down or not seen.available:
            return False
        self.ring_devices = seen.ring
        return True

    async def _take_locks(self) -> ev.Waiting | None:
        """The call's locks and a line in Redis, all or none; on a resume they are re-taken whatever
        the others hold (the call exists)."""
        locks = self._locks()
        waiting = await self.x.store.take_call_locks(self.claim, locks)
        if waiting is None:
            self._locked = locks
        return waiting

    def _locks(self) -> CallLocks:
        agent = self.callback.agent if self.callback.phase is Phase.AGENT else None
        return CallLocks(agent, self.callback.contact_number, self.x.options.lines)

    async def release_locks(self) -> None:
        """The run is over: give the call's locks and line back (kept while the call lives: see the store),
        which wakes the schedulers waiting for a line."""
        locked, self._locked = self._locked, None
        if locked is None:
            return
        try:
            await self.x.store.release_call_locks(self.claim, locked)
        except (RedisError, OSError) as error:  # they end with the call's record, or lapse with the lease
            log.warning("callback %s: giving its locks back failed: %s", self.callback.id, error)

    async def _resume(self) -> tuple[ev.Input, ...]:
        """The previous holder vanished mid-call: follow the recorded channels, never dial again; a
        channel gone after an answer Asterisk recorded (``answer_marks``) is a talk that is over."""
        self._follow_channels()  # before looking: an end between the look and the commit is not lost
        await self._take_locks()  # the call's locks are ours now (nobody else could take them meanwhile)
        alive = await self._look_up_channels()
        taking_over = resume_inputs(self.callback, alive, await self._read_marks(alive))
        live = taking_over == (ev.CallResumed(),)
        if live and self.callback.state is State.QUEUED:
            await self._finish_entering_queue()
        if live:
            self._looked = _Resynced(alive)  # what changed while nobody watched: after CallResumed
        guard = self.x.queue_guard
        if guard is not None and self.callback.phase is Phase.AGENT:
            memberships = self.x.availability.memberships_of(self.callback.agent)
            self._paused = await guard.take_over(memberships, live=live)
        return taking_over

    async def _finish_entering_queue(self) -> None:
        """A holder that died inside ``_enter_queue`` left the contact answered, waiting in silence.
        Its last two steps are done here if they were not: the queue's Local channel dialled (until
        then its dialplan half runs no application, Queue() after; so no member has rung) and put
        into the contact's bridge (else a member who answers would not hear the contact). A queue
        channel never created counts as a queue attempt over (``progress.reconcile``)."""
        attempt = self.callback.current_attempt
        assert attempt is not None, "a queued callback has its attempt"
        waiting, bridge_id = queue_channel_id(attempt.id), attempt_bridge_id(attempt.id)
        ari = self.x.ari
        try:
            if not (await ari.get_channel(f"{waiting}-2")).app_name:
                await ari.dial(waiting, timeout_s=_seconds(self.settings.queue_timeout))
                log.info("callback %s: dialled the queue channel its holder had not", self.callback.id)
            if waiting not in (await ari.get_bridge(bridge_id)).channels:
                await ari.add_channel(bridge_id, waiting)
        except AriError as error:  # never created, gone since, Asterisk away: the look that follows tells
            log.info("callback %s: queue entry not finished: %s", self.callback.id, error)

    async def _read_marks(self, alive: Mapping[str, Channel]) -> tuple[str, ...]:
        """The gone channels of the attempt whose answer Asterisk recorded. AMI down raises: the
        claim's lease lapses and the resume is tried again, rather than a talk taken for a lost ring."""
        attempt = self.callback.current_attempt
        if self.x.answers is None or attempt is None:
            return ()
        gone = [channel_id for channel_id in marked_channels(attempt) if channel_id not in alive]
        answers = self.x.answers
        self._marks_read = tuple([channel_id for channel_id in gone if await answers.answered(channel_id)])
        return self._marks_read

    async def _understand(self, signal: Signal) -> ev.Input | None:
        """The input a signal stands for; an answer to be screened first is sent through AMD."""
        if isinstance(signal, _Requested):
            request = await self.x.store.pending_request(self.callback.id)
            if request is not None:
                await self._take_request(request)
            return None
        if isinstance(signal, _Resynced):
            meaning = self.watch.reconciled(self.callback, signal.alive)
        else:
            meaning = self.watch.interpret(self.callback, signal)
        if isinstance(signal, StasisStart) and signal.args[:1] == (AMD_ARG,):  # e.g. NOTSURE,NOAMD
            log.info("callback %s: AMD verdict %s", self.callback.id, ",".join(signal.args[1:]))
        return await self._screen(meaning) if isinstance(meaning, Screen) else meaning

    async def _screen(self, screen: Screen) -> ev.Input | None:
        """Send the answered contact's ``;1`` through AMD; the verdict comes back as its StasisStart.

        A contact who hung up meanwhile (gone) or a half already out of the app (in AMD) needs nothing:
        their events follow. Any other refusal connects the contact as without AMD: keeping a person
        waiting for a verdict that cannot come is worse than reaching a machine. A missing context is
        not refused (measured: 204, then the channel hangs up at once, a failed attempt): ``doctor``
        checks it exists."""
        channel_id = screen.leg.uniqueid
        assert channel_id is not None, "progress names the contact's channel"
        ari = self.x.ari
        try:
            await ari.continue_in_dialplan(channel_id, context=self.x.options.amd_context, extension="s")
        except (AriNotFound, ChannelNotInStasis):
            return None
        except AriError as error:
            log.warning("callback %s: AMD not run, contact connected: %s", self.callback.id, error)
            return ev.ContactAnswered(screen.leg)
        log.info("callback %s: contact answered, AMD listening", self.callback.id)
        self._screening = True
        return None

    # --- transitions ----------------------------------------------------------------------------

    async def _apply(self, happening: ev.Input) -> ev.Input | None:
        """Step, commit (fenced), follow the new channels, then perform the effects in order.

        Returns the input a failed effect stands for (e.g. the agent could not be rung), if any."""
        before = self.callback
        happening = await self._with_member(await self._with_linkedid(happening))
        transition = lifecycle.step(before, happening, self.x.clock(), self.settings)
        self.claim = await self.x.store.commit(self.claim, transition.callback, transition.events)
        log.info(
            "callback %s: %s -> %s on %s",
            before.id,
            before.state.value,
            self.callback.state.value,
            type(happening).__name__,
        )
        self._follow_channels()
        await self._seen_answer(happening)
        self._screening = False  # the verdict (or the end) is in
        effects = transition.effects
        if self.claim.request is not None:
            await self._take_request(self.claim.request)
            if not self.callback.state.is_live:  # the person's change ended the call: dial nothing
                effects = tuple(effect for effect in effects if isinstance(effect, _ENDINGS))
        return await self._perform_all(effects)

    async def _perform_all(self, effects: tuple[Effect, ...]) -> ev.Input | None:
        for effect in effects:
            follow_up = await asyncio.shield(self._perform(effect))
            if follow_up is not None:
                return follow_up
        return None

    async def _take_request(self, request: ev.ChangeRequest) -> None:
        """Apply a person's change through the fenced commit, or refuse it when the lifecycle does not
        take it now (the contact answered meanwhile, the new time has passed): the requester learns
        which. While AMD listens to a contact who answered, the request waits (it stays on record) for
        the verdict's commit, which hands it over: a person is then talking (refused), a machine's
        attempt is over (applied), and an answered contact is never cut."""
        if self._screening:
            log.info("callback %s: change request %s waits for AMD's verdict", self.callback.id, request.id)
            return
        try:
            transition = lifecycle.step(self.callback, request.change, self.x.clock(), self.settings)
        except (lifecycle.IllegalTransition, rules.ValidationError) as refusal:
            log.info("callback %s: change request %s refused: %s", self.callback.id, request.id, refusal)
            self.claim = await self.x.store.settle(self.claim, request, _refusal_text(refusal))
            return
        before = self.callback.state
        self.claim = await self.x.store.commit(
            self.claim, transition.callback, transition.events, applying=request
        )
        log.info(
            "callback %s: %s -> %s on a person's %s (request %s)",
            self.callback.id,
            before.value,
            self.callback.state.value,
            type(request.change).__name__,
            request.id,
        )
        await self._perform_all(transition.effects)  # a person's change only hangs up and waits

    async def _with_linkedid(self, happening: ev.Input) -> ev.Input:
        """An answered leg's linkedid for the history (ARI's channel JSON does not carry it)."""
        if not isinstance(happening, ev.AgentAnswered | ev.ContactAnswered) or not happening.leg.uniqueid:
            return happening
        try:
            linkedid = await self.x.ari.get_variable(happening.leg.uniqueid, "CHANNEL(linkedid)")
        except AriError as error:  # the answer is recorded all the same; the link is a nicety
            log.info("callback %s: no linkedid: %s", self.callback.id, error)
            return happening
        return dataclasses.replace(happening, leg=dataclasses.replace(happening.leg, linkedid=linkedid))

    async def _with_member(self, happening: ev.Input) -> ev.Input:
        """Who took the call from the queue: the queue's Local half ``;2`` is in a two-party bridge
        with the member's channel, so its BRIDGEPEER names it (set by the bridging core, nothing
        needed in the admin's queue). It is set as the bridge forms, just after the answer: wait a
        little for it."""
        if not isinstance(happening, ev.MemberAnswered) or not happening.leg.uniqueid:
            return happening
        waiting_half = f"{happening.leg.uniqueid}-2"
        peer: str | None = None
        with contextlib.suppress(AriError):
            for _ in range(MEMBER_LOOKUPS):
                if peer := await self.x.ari.get_variable(waiting_half, "BRIDGEPEER"):
                    break
                await asyncio.sleep(MEMBER_LOOKUP_PAUSE_S)
        if not peer:
            log.info("callback %s: the member who answered is unknown", self.callback.id)
            return happening
        return dataclasses.replace(happening, member=device_of_channel(peer))

    async def _seen_answer(self, happening: ev.Input) -> None:
        """An answer on record needs no hangup handler to record it again: popped, so Asterisk writes
        marks only for answers nobody saw (``answer_marks``)."""
        if not isinstance(happening, ev.ContactAnswered | ev.MemberAnswered) or not happening.leg.uniqueid:
            return
        attempt = self.callback.current_attempt
        if attempt is not None and happening.leg.uniqueid in marked_channels(attempt):
            await quietly(self.x.ari.set_variable(happening.leg.uniqueid, answer_marks.POP_HANDLER, ""))

    def _follow_channels(self) -> None:
        attempt = self.callback.current_attempt
        if attempt is None:
            return
        for channel_id in watched_channels(attempt):
            self.x._runs[channel_id] = self
            self._channels.add(channel_id)

    async def _perform(self, effect: Effect) -> ev.Input | None:
        match effect:
            case RingAgent():
                return await self._ring_agent(effect)
            case StopRinging():
                await self._stop_ringing(effect)
            case DialContact():
                return await self._dial_contact(effect)
            case Connect():
                await self._connect(effect)
            case HangUp():
                await self._hang_up(effect)
            case EnterQueue():
                return await self._enter_queue(effect)
            case WatchCall() | WaitUntil():
                pass  # channels are followed after every commit; the store already placed next_at
        return None

    # --- effects --------------------------------------------------------------------------------

    async def _ring_agent(self, effect: RingAgent) -> ev.Input | None:
        """Ring every ready device, each with its recorded channel id; a device that cannot be rung
        ends its own ring only (the agent's ring is over when every ring is).

        The originates go out one after the other in the recorded order, not concurrently: Asterisk
        22 refuses (409) an originate whose channelId is a prefix of a live channel's id (measured:
        ``-agent`` while ``-agent-2`` rings), so the shorter id must come first. Each answers as soon
        as its dial has started, a few milliseconds: the phones still ring together."""
        if len(self.ring_devices) != len(effect.channel_ids):  # never: Due.rings came from them
            return ev.AgentMissed(Outcome.AGENT_FAILED)
        await self._hold_queues()
        over: ev.Input | None = None
        for device, channel_id in zip(self.ring_devices, effect.channel_ids, strict=True):
            self.watch.device_state_before[channel_id] = self.x.availability.device_states.get(device)
            if not await self._ring_device(effect, device, channel_id):
                over = self.watch.ring_failed(self.callback, channel_id)  # the last failure of all ends it
        return over

    async def _ring_device(self, effect: RingAgent, device: str, channel_id: str) -> bool:
        try:
            await self.x.ari.originate(
                device,
                channel_id=channel_id,
                app_args="agent",
                caller_id=agent_caller_id(effect.contact_name, effect.contact_number),
                timeout_s=_seconds(effect.timeout),
                variables=callback_variables(self.callback.id, effect.attempt_id, LegRole.AGENT),
            )
        except AriError as error:  # e.g. 500 for a device that just went unreachable
            log.warning("callback %s: ringing %s failed: %s", self.callback.id, device, error)
            return False
        return True

    async def _stop_ringing(self, effect: StopRinging) -> None:
        """The agent answered on another device: end the other rings with cause 26 (answered
        elsewhere), which PJSIP sends in the CANCEL's Reason header so phones log no missed call."""
        for channel_id in effect.channel_ids:
            await quietly(self.x.ari.hangup(channel_id, reason="answered_elsewhere"))

    async def _dial_contact(self, effect: DialContact) -> ev.Input | None:
        if effect.phase is Phase.QUEUE:  # nobody to bridge yet: the queue comes once the contact answers
            return await self._ring_contact(None, effect)
        attempt = self.callback.current_attempt
        assert attempt is not None
        agent_channel = leg_channel(attempt, LegRole.AGENT)
        assert agent_channel is not None, "the agent phase always has an agent leg"
        bridge_id = attempt_bridge_id(effect.attempt_id)
        return (
            (await self._announce(agent_channel, effect.number) if effect.announce else None)
            or await self._bridge_agent(agent_channel, bridge_id, effect)
            or await self._ring_contact(agent_channel, effect)
        )

    async def _announce(self, agent_channel: str, number: str) -> ev.Input | None:
        """Play the answered agent a beep and the contact's number, digit by digit, before the contact
        is dialled; any key skips the rest. The agent hanging up meanwhile is ``AgentHungUp``: the
        contact is never dialled, so it is a missed ring, not a contact attempt. A playback Asterisk
        refuses only costs the announcement.

        One ARI play per sound, not one play of several media: measured on Asterisk 22, neither a
        ``digits:`` playback nor a playback of several media can be stopped (DELETE answers 500, or
        204 and it plays on), so a key could not cut them short."""
        events = self.x.events
        key = events.expect(lambda event: is_key(event, agent_channel))
        gone = events.expect(lambda event: agent_gone(event, agent_channel))
        playback_id, played_all = "", False
        try:
            async with asyncio.timeout(ANNOUNCE_TIMEOUT_S):
                for n, media in enumerate(announcement(number)):
                    playback_id = f"{agent_channel}-announce-{n}"
                    await play_until_over(self.x.ari, events, agent_channel, media, playback_id, key, gone)
                    if key.done() or gone.done():
                        break
                else:
                    played_all = True
        except (AriNotFound, ChannelNotInStasis):  # the agent hung up right after answering
            return ev.AgentHungUp(contact_dialled=False)
        except (AriError, TimeoutError) as error:
            log.warning("callback %s: announcing to the agent failed: %r", self.callback.id, error)
        finally:
            key.cancel()  # a no-op on what already happened: done() tells below
            gone.cancel()
        if gone.done() and not gone.cancelled():
            return ev.AgentHungUp(contact_dialled=False)
        if not played_all:  # skipped, or stuck: that sound stops now
            await quietly(self.x.ari.stop_playback(playback_id))
        return None

    async def _bridge_agent(self, agent_channel: str, bridge_id: str, effect: DialContact) -> ev.Input | None:
        """The answered agent leg, with the contact's caller ID, into the attempt's bridge."""
        ari = self.x.ari
        try:
            await self._present_caller_id(agent_channel, effect)
            await ari.create_bridge(bridge_id, name=f"callback {self.callback.id}")
            await ari.add_channel(bridge_id, agent_channel)
        except (AriNotFound, ChannelNotInStasis):  # the agent hung up right after answering
            return ev.AgentHungUp(contact_dialled=False)
        except AriError as error:
            log.warning("callback %s: preparing the agent leg failed: %s", self.callback.id, error)
            return ev.ContactFailed(Outcome.FAILED)
        return None

    async def _ring_contact(self, agent_channel: str | None, effect: DialContact) -> ev.Input | None:
        """Create the contact's Local channel in the app, bridge it with the agent once it is there
        (agent phase), then dial it."""
        ari = self.x.ari
        variables = callback_variables(self.callback.id, effect.attempt_id, LegRole.CONTACT)
        try:
            await create_in_app(
                self.x.ari,
                self.x.events,
                f"Local/{effect.number}@{self.x.options.outbound_context}/n",
                effect.channel_id,
                other_channel_id=effect.local_peer_id,
                app_args="contact",
                originator=agent_channel,  # one linkedid for the whole call: CDR/CEL rows link up
                variables=variables | self._answer_recorded(effect.channel_id) | self._amd_return(),
            )
            if agent_channel is not None:
                await ari.add_channel(attempt_bridge_id(effect.attempt_id), effect.channel_id)
                await quietly(ari.ring(agent_channel))  # ringback while the contact rings
            await ari.dial(effect.channel_id, timeout_s=_seconds(effect.timeout))
        except (AriError, TimeoutError) as error:
            log.warning("callback %s: dialling the contact failed: %r", self.callback.id, error)
            return ev.ContactFailed(Outcome.FAILED)
        return None

    async def _enter_queue(self, effect: EnterQueue) -> ev.Input | None:
        """The answered contact waits in the failover queue: bridged with a Local channel whose dialplan
        half runs Queue() in ``queue_context``; that channel is answered when a member takes the call.

        Queue() reads its entry priority from QUEUE_PRIO and the wait from ACB_QUEUE_TIMEOUT; ARI's
        dial timeout is the same wait, so a dialplan without the timeout argument cannot wait longer."""
        ari = self.x.ari
        waiting = queue_channel_id(effect.attempt_id)
        bridge_id = attempt_bridge_id(effect.attempt_id)
        variables = callback_variables(self.callback.id, effect.attempt_id, LegRole.MEMBER)
        variables |= {"QUEUE_PRIO": str(effect.priority), "ACB_QUEUE_TIMEOUT": str(_seconds(effect.timeout))}
        variables |= self._answer_recorded(waiting)
        try:
            await ari.create_bridge(bridge_id, name=f"callback {self.callback.id}")
            await ari.add_channel(bridge_id, effect.channel_id)
            await create_in_app(
                self.x.ari,
                self.x.events,
                f"Local/{effect.queue}@{self.x.options.queue_context}/n",
                waiting,
                other_channel_id=f"{waiting}-2",  # the half running Queue(): see _with_member
                app_args="queue",
                originator=effect.channel_id,
                variables=variables,
            )
            # Dialled before it is bridged: the dialplan half copies the channel's variables when
            # dialled, and a BRIDGEPEER from our bridge would then misname the member (_with_member).
            await ari.dial(waiting, timeout_s=_seconds(effect.timeout))
            await ari.add_channel(bridge_id, waiting)
        except (AriNotFound, ChannelNotInStasis):  # the contact hung up right after answering
            return ev.QueueGaveUp(Outcome.ABANDONED)
        except (AriError, TimeoutError) as error:
            log.warning("callback %s: entering queue %s failed: %r", self.callback.id, effect.queue, error)
            return ev.QueueGaveUp(Outcome.QUEUE_TIMEOUT)
        return None

    def _amd_return(self) -> dict[str, str]:
        """Where the AMD context sends the contact back (our app), given when the channel is created:
        a variable set later through ARI runs in the channel's thread, and Asterisk then refuses the
        hangup handler's AstDB write there (measured: "Dangerous function DB write blocked")."""
        return {"ACB_STASIS_APP": self.x.ari.settings.app} if self.settings.amd else {}

    def _answer_recorded(self, channel_id: str) -> dict[str, str]:
        """The hangup handler that records the channel's answer for a resumer, where it matters."""
        attempt = self.callback.current_attempt
        recorded = attempt is not None and channel_id in marked_channels(attempt)
        return answer_marks.handler(channel_id) if recorded else {}

    async def _present_caller_id(self, agent_channel: str, effect: DialContact) -> None:
        """Give the answered agent leg the caller ID the contact must see (empty: the dialplan's).

        Measured: the Local channel's dialplan half takes its caller ID from its bridged half's
        connected line, i.e. from the agent leg's caller ID, which is still the "CB <contact>" the
        agent's display showed: without this the contact would be shown their own number."""
        for part, value in (("name", effect.caller_id.name), ("num", effect.caller_id.number)):
            await self.x.ari.set_variable(agent_channel, f"CALLERID({part})", value)

    async def _connect(self, effect: Connect) -> None:
        """Both legs were bridged before the contact rang; stop the ringback the agent hears. A contact
        back from AMD left the bridge for it: it goes back in first."""
        attempt = self.callback.current_attempt
        agent_channel = leg_channel(attempt, LegRole.AGENT) if attempt else None
        contact_channel = leg_channel(attempt, LegRole.CONTACT) if attempt else None
        if self.settings.amd and contact_channel is not None:
            await quietly(self.x.ari.add_channel(attempt_bridge_id(effect.attempt_id), contact_channel))
        if agent_channel is not None:
            await quietly(self.x.ari.ring_stop(agent_channel))

    async def _hang_up(self, effect: HangUp) -> None:
        """End whatever is left; a channel or bridge already gone is the normal case."""
        for channel_id in (*effect.channel_ids, queue_channel_id(effect.attempt_id)):
            await quietly(self.x.ari.hangup(channel_id))
        await quietly(self.x.ari.destroy_bridge(attempt_bridge_id(effect.attempt_id)))
        marks, self._marks_read = self._marks_read, ()
        if self.x.answers is not None:
            for channel_id in marks:  # what they told is committed now
                await self.x.answers.forget(channel_id)


# What of a transition is still performed once a person's change ended its call: the hang-ups.
_ENDINGS = (HangUp, StopRinging)


def _refusal_text(refusal: Exception) -> str:
    """What the requester is told: the lifecycle's reason (after the colon) or the validation error."""
    text = str(refusal)
    return text.rpartition(": ")[2] if isinstance(refusal, lifecycle.ChangeRefused) else text
