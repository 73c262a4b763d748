"""One claimed callback carried to its next resting point, with no telephony in sight.

The runner owns the claim and the rules that make a crash or a stall harmless. Every transition is
COMMITTED, fenced by the claim's token, before any of its effects is performed: a holder that lost its
lease cannot commit, and whoever takes over finds the attempt and channel ids on record. And the dial
itself is fenced (``dial_fence``): a holder that committed, then stalled past its lease (GC, SIGSTOP,
an overloaded host) while another daemon took the callback over, must not ring anyone when it wakes.
It also owns what belongs to the claim rather than to the call: the call's locks in Redis, a person's
change requests, and the order in which inputs are applied.

Everything about the call itself (ringing, dialling, bridging, reading what happened) is behind the
``CallPort`` that the telephony layer provides: the runner asks it whether the agent can be rung,
for the next input, to resume a call a dead holder left, and to perform each committed effect. How a
callback call runs end to end: docs/calls.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from redis.exceptions import RedisError

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle, rules
from asterisk_cb.core.effects import Effect, HangUp, StopRinging
from asterisk_cb.core.model import Callback, Event, Phase
from asterisk_cb.core.settings import Settings
from asterisk_cb.faults import checkpoint
from asterisk_cb.store import CallLocks, Claim, LeaseLost, LinePool

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SettingsFor = Callable[[Callback], Awaitable[Settings]]
DialFence = Callable[[], Awaitable[float]]
"""Called by the port right before each request that rings someone: proves this run still holds its
claim and returns the ``time.monotonic()`` deadline that request must be sent by (``AriClient``'s
``deadline``); raises ``LeaseLost`` when it cannot prove it (then dial nothing)."""

# The fence's deadline stops this much short of the lease's end as this process reckons it: room for
# the request's own trip to Asterisk and for the two clocks' rates to differ.
FENCE_MARGIN_S = 0.5

# What of a transition is still performed once a person's change ended its call: the hang-ups.
_ENDINGS = (HangUp, StopRinging)


@dataclass(frozen=True)
class ChangeNotice:
    """A person's change of the callback may be waiting on record (the runner reads it)."""


class ClaimWrites(Protocol):
    """What a runner writes through its claim: every write is fenced by the claim's token."""

    async def commit(
        self,
        claim: Claim,
        after: Callback,
        events: Sequence[Event],
        *,
        applying: ev.ChangeRequest | None = None,
    ) -> Claim: ...

    async def settle(self, claim: Claim, request: ev.ChangeRequest, refusal: str) -> Claim: ...

    async def pending_request(self, callback_id: str) -> ev.ChangeRequest | None: ...

    async def renew(self, claim: Claim, lease_ms: int) -> Claim: ...

    async def take_call_locks(self, claim: Claim, locks: CallLocks) -> ev.Waiting | None: ...

    async def release_call_locks(self, claim: Claim, locks: CallLocks) -> int: ...


class CallPort(Protocol):
    """The telephony half of one run: the call as the PBX sees it. ``callback`` is always the one
    last committed, so the port reads attempt and channel ids from the record, never from memory."""

    def ready_rings(self, callback: Callback) -> int | None:
        """How many devices of the agent would ring now; None when the agent cannot be rung."""
        ...

    @property
    def reachable(self) -> bool:
        """The PBX can be asked to place a call and tells how it goes (the queue phase's gate; the
        agent phase's is ``ready_rings``)."""
        ...

    async def resume(self, callback: Callback) -> tuple[ev.Input, ...]:
        """Follow the call a vanished holder left (never dial again): what happened meanwhile."""
        ...

    async def next_signal(self, callback: Callback) -> ev.Input | ChangeNotice | None:
        """Wait for what happens next to the call (None: something that changes nothing)."""
        ...

    async def committed(self, callback: Callback, happening: ev.Input) -> None:
        """``happening`` is on record: follow the attempt's channels, drop what it made moot."""
        ...

    async def perform(self, callback: Callback, effect: Effect) -> ev.Input | None:
        """Carry out one committed effect; a failure comes back as the input it stands for."""
        ...

    @property
    def screening(self) -> bool:
        """An answered contact is being screened (AMD): not ringing, not talking yet."""
        ...

    async def close(self) -> None:
        """The run is over, whatever the ending: stop following the call, lift what it held."""
        ...


OpenCall = Callable[[Callback, Settings, DialFence], CallPort]
"""Opens the port of one claim's call, with the callback's effective settings and the dial fence."""


class ClaimRunner:
    """Drives one claim: step the lifecycle, commit fenced, then let the port perform the effects."""

    def __init__(
        self,
        store: ClaimWrites,
        claim: Claim,
        *,
        settings_for: SettingsFor,
        open_call: OpenCall,
        clock: Clock,
        lines: LinePool | None = None,
    ) -> None:
        self.store = store
        self.claim = claim
        self.settings_for = settings_for
        self.open_call = open_call
        self.clock = clock
        self.lines = lines
        self.settings = Settings()
        self._port: CallPort | None = None
        # With a line pool the claim itself took a line (Store.claim): it is given back at the end.
        self._locked: CallLocks | None = self._locks() if lines else None

    @property
    def port(self) -> CallPort:
        assert self._port is not None, "run() opens the call first"
        return self._port

    @property
    def callback(self) -> Callback:
        return self.claim.callback

    async def run(self) -> None:
        """Until the callback rests (scheduled again, finished) or the lease is lost (``LeaseLost``)."""
        self.settings = await self.settings_for(self.callback)
        self._port = self.open_call(self.callback, self.settings, self.dial_fence)
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
            elif (happening := await self._understand()) is not None:
                pending.append(happening)

    async def close(self) -> None:
        """Let go of the call (the port's part), then of the call's locks; shielded from cancellation."""
        if self._port is not None:
            await asyncio.shield(self._port.close())
        await asyncio.shield(self._release_locks())

    async def dial_fence(self) -> float:
        """Renew the lease (fenced by the token, judged on the Redis server's clock) and return when
        it ends as this process reckons it, less ``FENCE_MARGIN_S``: the deadline of the request about
        to ring someone.

        Why this closes the stall: a take-over first replaces our token, so once another daemon holds
        the callback this renewal is refused and nothing is dialled. If it was granted, the take-over
        comes after it, and so after the contact's channel was created (it is created before the
        fence): the resumer finds that channel still Down and hangs it up, and the stalled dial then
        fails on a channel that is gone. A stall between the fence and the request itself outlasts
        the deadline (the monotonic clock runs on while the process is stopped), so the request is
        not sent. Redis unreachable proves nothing either way: dial nothing."""
        sent = time.monotonic()
        try:
            await self.store.renew(self.claim, self.claim.lease_ms)
        except RedisError as error:
            raise LeaseLost(f"cannot confirm the lease before dialling: {error}") from error
        return sent + self.claim.lease_ms / 1000 - FENCE_MARGIN_S

    async def _understand(self) -> ev.Input | None:
        signal = await self.port.next_signal(self.callback)
        if not isinstance(signal, ChangeNotice):
            return signal
        request = await self.store.pending_request(self.callback.id)
        if request is not None:
            await self._take_request(request)
        return None

    # --- the claim's own inputs ------------------------------------------------------------------

    async def _due(self) -> ev.Due:
        """Due: the agent must be available (agent phase), and the call's locks and a line free."""
        rings = 1
        if self.callback.phase is Phase.AGENT:
            ready = self.port.ready_rings(self.callback)
            if ready is None:
                return ev.Due(agent_available=False)
            rings = max(1, ready)
        elif not self.port.reachable:  # an attempt now would be spent on an outage, not on the contact
            log.info("callback %s due: waits, PBX unreachable", self.callback.id)
            return ev.Due(waiting=ev.Waiting.PBX)
        waiting = await self._take_locks()
        if waiting is not None:
            log.info("callback %s due: waits, %s", self.callback.id, waiting.value)
        return ev.Due(waiting=waiting, rings=rings)

    async def _resume(self) -> tuple[ev.Input, ...]:
        """The previous holder vanished mid-call: the call's locks are ours now (nobody else could take
        them meanwhile), and the port follows the recorded channels."""
        await self._take_locks()
        return await self.port.resume(self.callback)

    async def _take_locks(self) -> ev.Waiting | None:
        """The call's locks and a line in Redis, all or none; on a resume they are re-taken whatever
        the others hold (the call exists)."""
        locks = self._locks()
        waiting = await self.store.take_call_locks(self.claim, locks)
        if waiting is None:
            self._locked = locks
        return waiting

    def _locks(self) -> CallLocks:
        agent = self.callback.agent if self.callback.phase is Phase.AGENT else None
        return CallLocks(agent, self.callback.contact_number, self.lines)

    async def _release_locks(self) -> None:
        """Give the call's locks and line back (kept while the call lives: see the store), which wakes
        the schedulers waiting for a line."""
        locked, self._locked = self._locked, None
        if locked is None:
            return
        try:
            await self.store.release_call_locks(self.claim, locked)
        except (RedisError, OSError) as error:  # they end with the call's record, or lapse with the lease
            log.warning("callback %s: giving its locks back failed: %s", self.callback.id, error)

    # --- transitions -----------------------------------------------------------------------------

    async def _apply(self, happening: ev.Input) -> ev.Input | None:
        """Step, commit (fenced), tell the port, then perform the effects in order.

        Returns the input a failed effect stands for (e.g. the agent could not be rung), if any."""
        before = self.callback
        transition = lifecycle.step(before, happening, self.clock(), self.settings)
        self.claim = await self.store.commit(self.claim, transition.callback, transition.events)
        checkpoint(f"committed:{self.callback.phase.value}:{self.callback.state.value}")
        log.info(
            "callback %s: %s -> %s on %s",
            before.id,
            before.state.value,
            self.callback.state.value,
            type(happening).__name__,
        )
        await self.port.committed(self.callback, happening)
        effects = transition.effects
        if self.claim.request is not None:
            await self._take_request(self.claim.request)
            if not self.callback.state.is_live:  # the person's change ended the call: dial nothing
                effects = tuple(effect for effect in effects if isinstance(effect, _ENDINGS))
        return await self._perform_all(effects)

    async def _perform_all(self, effects: tuple[Effect, ...]) -> ev.Input | None:
        """Effects are shielded: one started finishes even if the lease is lost meanwhile."""
        for effect in effects:
            follow_up = await asyncio.shield(self.port.perform(self.callback, effect))
            if follow_up is not None:
                return follow_up
        return None

    async def _take_request(self, request: ev.ChangeRequest) -> None:
        """Apply a person's change through the fenced commit, or refuse it when the lifecycle does not
        take it now (the contact answered meanwhile, the new time has passed): the requester learns
        which. While AMD screens an answered contact the request waits (it stays on record) for the
        verdict's commit, which hands it over: an answered contact is never cut."""
        if self.port.screening:
            log.info("callback %s: change request %s waits for AMD's verdict", self.callback.id, request.id)
            return
        try:
            transition = lifecycle.step(self.callback, request.change, self.clock(), self.settings)
        except (lifecycle.IllegalTransition, rules.ValidationError) as refusal:
            log.info("callback %s: change request %s refused: %s", self.callback.id, request.id, refusal)
            self.claim = await self.store.settle(self.claim, request, _refusal_text(refusal))
            return
        before = self.callback.state
        self.claim = await self.store.commit(
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


def _refusal_text(refusal: Exception) -> str:
    """What the requester is told: the lifecycle's reason (after the colon) or the validation error."""
    text = str(refusal)
    return text.rpartition(": ")[2] if isinstance(refusal, lifecycle.ChangeRefused) else text
