"""The contact calls in first: settle its pending callbacks once it has talked with an agent.

Asterisk's bridge and hangup events (AMI ``BridgeEnter``, ``BridgeLeave``, ``Hangup``: the daemon's AMI
user needs them in its event filter, README "Least rights") feed the pure ``TalkTracker``, which
measures how long each inbound caller was bridged with each agent, whatever the admin's dialplan did
(Queue, Dial, transfers). When the caller hangs up, each agent's talk goes to
``CallbackService.settle_call_in``: the callbacks of that number the talk settles under their own
settings (``on_call_in``, ``call_in_agent``, ``call_in_min_talk``) complete with the reason "contact
called in"; one whose call rings or talks at that moment is left alone (the call locks decide).

Several daemons on one Asterisk all see the events: the store's versioned writes let one of them
complete a callback and the others find it finished, never doubled. A call in progress while the daemon
restarts, or while AMI reconnects, cannot be measured: its callbacks simply stay scheduled, as after a
short talk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.exceptions import RedisError

from asterisk_cb.core.model import Callback
from asterisk_cb.service import ServiceError
from asterisk_cb.telephony.ami_events import AmiEvent, BridgeEnter, BridgeLeave, Hangup
from asterisk_cb.telephony.backoff import Backoff
from asterisk_cb.telephony.inbound_talk import Talk, TalkTracker

log = logging.getLogger(__name__)

Settle = Callable[[Talk], Awaitable[list[Callback]]]
MAX_WAITING = 10_000  # talks waiting to be settled while Redis is away; beyond, dropped and logged
SETTLE_RETRIES = 6  # a settlement that cannot reach Redis is retried this often (1 s, 2 s, ... 30 s)
RETRY = Backoff(initial_s=1.0, cap_s=30.0)


class AmiEvents(Protocol):
    """What the watch needs of the AMI link (``telephony.ami.AmiConnection``)."""

    def subscribe(self, handler: Callable[[AmiEvent], Any], *types: type[AmiEvent]) -> Callable[[], None]: ...

    def on_resync(self, hook: Callable[[Any], Any]) -> None: ...


class CallInWatch:
    """A daemon component (auxiliary): follows the talks from AMI, settles them one by one."""

    name = "call-in"
    essential = False

    def __init__(
        self,
        ami: AmiEvents,
        tracker: TalkTracker,
        settle: Settle,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry: Backoff = RETRY,
    ) -> None:
        self._tracker = tracker
        self._settle = settle
        self._clock = clock
        self._retry = retry
        self._talks: asyncio.Queue[Talk] = asyncio.Queue(MAX_WAITING)
        # Followed from construction on, so a restart of this component loses no call in progress.
        ami.subscribe(self.on_event, BridgeEnter, BridgeLeave, Hangup)
        ami.on_resync(lambda _: tracker.forget_all())

    def on_event(self, event: AmiEvent) -> None:
        now = self._clock()
        match event:
            case BridgeEnter(bridge=bridge, member=member):
                self._tracker.bridge_enter(bridge, member, now)
            case BridgeLeave(bridge=bridge, member=member):
                self._tracker.bridge_leave(bridge, member, now)
            case Hangup(member=member):
                for talk in self._tracker.hangup(member, now):
                    self._hand_over(talk)

    async def run(self) -> None:
        while True:
            talk = await self._talks.get()
            await self._settle_retrying(talk)

    def _hand_over(self, talk: Talk) -> None:
        try:
            self._talks.put_nowait(talk)
        except asyncio.QueueFull:
            log.error("call-in: too many talks waiting to be settled, one dropped", extra=_about(talk))

    async def _settle_retrying(self, talk: Talk) -> None:
        for attempt in range(SETTLE_RETRIES):
            try:
                settled = await self._settle(talk)
            except RedisError as error:
                log.warning("call-in: Redis unavailable, settlement retried",
                            extra={"linkedid": talk.linkedid, "error": str(error)})  # fmt: skip
                await asyncio.sleep(self._retry.delay(attempt))
                continue
            except ServiceError as error:
                log.warning(
                    "call-in: talk not settled", extra={"linkedid": talk.linkedid, "error": error.message}
                )
                return
            for callback in settled:
                log.info("callback completed: the contact called in",
                         extra={"callback": callback.id, "agent": talk.agent, "talk_s": int(talk.seconds),
                                "linkedid": talk.linkedid})  # fmt: skip
            return
        log.error("call-in: talk not settled, Redis stayed unavailable", extra=_about(talk))


def _about(talk: Talk) -> dict[str, object]:
    return {
        "number": talk.number,
        "agent": talk.agent,
        "talk_s": int(talk.seconds),
        "linkedid": talk.linkedid,
    }
