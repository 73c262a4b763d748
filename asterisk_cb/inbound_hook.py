"""The contact calls in first: the inbound hook's FastAGI face (dialplan/callback-inbound.conf).

At the top of the admin's inbound route, ``Gosub(acb-inbound,s,1)`` asks, through a helper channel
(``telephony.agi_channel``), whether a callback is pending for the caller's number. The answer names
the soonest due one, its agent, that agent's phones and whether the agent is free now, how many are
pending, and the callback's ``call_in_priority`` and ``call_in_caller_id_prefix``: the admin's dialplan
routes on them. The look-up is the contact index (pending callbacks only, keyed on the canonical
number): a few Redis reads, no scan. It changes nothing: a late or repeated question is harmless, and
the Gosub waits for the answer no longer than its own limit (200 ms by default).

Settling the callbacks once the caller has talked with the agent is ``call_in_watch``'s part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from redis.exceptions import RedisError

from asterisk_cb.core.model import Callback
from asterisk_cb.core.settings import Settings
from asterisk_cb.service import Actor, CallbackService, Permission, ServiceError
from asterisk_cb.telephony.agi_channel import AgiRequest, AgiSession, call_channel

log = logging.getLogger(__name__)

ROUTE = "callback-inbound"  # the AGI script name the hook's helper channel asks for
# Who looks numbers up and settles callbacks on the contact's behalf (recorded on the events).
CALL_IN = Actor("call-in", frozenset({Permission.VIEW_ALL, Permission.MANAGE}))


class Status(StrEnum):
    """``ACB_I_STATUS``: the Gosub's ``ACB_INBOUND``."""

    FOUND = "found"
    UNKNOWN = "unknown"  # nothing pending for this number, or no usable caller ID
    UNAVAILABLE = "unavailable"  # the look-up failed (Redis down): routed as unknown


class Agents(Protocol):
    """The availability view, as the hook needs it."""

    def is_free(self, agent: str, now: float) -> bool: ...

    def ring_targets(self, agent: str) -> tuple[str, ...]: ...


SettingsFor = Callable[[str | None, str | None], Awaitable[Settings]]


@dataclass(frozen=True)
class Answer:
    status: Status
    callback: Callback | None = None
    pending: int = 0
    endpoints: tuple[str, ...] = ()
    free: bool = False
    priority: int = 0
    prefix: str = ""

    def fields(self) -> dict[str, str]:
        """``SHARED(ACB_I_*)`` of the caller's channel, stale ones cleared, the status last."""
        found = self.callback
        return {
            "ACB_I_ID": found.id if found else "",
            "ACB_I_AGENT": found.agent if found else "",
            "ACB_I_ENDPOINTS": "&".join(self.endpoints),
            "ACB_I_FREE": "1" if self.free else "0",
            "ACB_I_DUE": str(int(found.due_at.timestamp())) if found else "",
            "ACB_I_COUNT": str(self.pending),
            "ACB_I_PRIORITY": str(self.priority) if found else "",
            "ACB_I_PREFIX": self.prefix,
            "ACB_I_STATUS": self.status.value,
        }


class InboundHook:
    """The AGI handler of route ``callback-inbound``: one look-up per inbound call."""

    def __init__(
        self,
        service: CallbackService,
        agents: Agents,
        settings_for: SettingsFor,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service = service
        self._agents = agents
        self._settings_for = settings_for
        self._clock = clock

    async def __call__(self, request: AgiRequest, session: AgiSession) -> None:
        channel = call_channel(request, session)
        if channel is None:
            log.warning("inbound hook: helper channel without a caller uniqueid",
                        extra={"exten": request.env.get("extension", "")})  # fmt: skip
            return
        number = await channel.get("CALLERID(num)")
        answer = await self.look_up(number)
        await channel.answer(answer.fields())
        log.info(
            "inbound hook",
            extra={"uniqueid": channel.uniqueid, "status": answer.status.value, "pending": answer.pending,
                   "callback": answer.callback.id if answer.callback else ""},
        )  # fmt: skip

    async def look_up(self, number: str) -> Answer:
        """What the dialplan is told about a caller with this caller ID number."""
        try:
            return await self._describe(number)
        except (RedisError, ServiceError, OSError) as error:
            log.warning("inbound hook: look-up failed, routed as unknown", extra={"error": str(error)})
            return Answer(Status.UNAVAILABLE)

    async def _describe(self, number: str) -> Answer:
        found = await self._service.pending_for_number(CALL_IN, number)
        first = found.first
        if first is None:
            return Answer(Status.UNKNOWN)
        settings = await self._settings_for(first.agent, first.queue)
        return Answer(
            Status.FOUND,
            first,
            pending=len(found.pending),
            endpoints=self._agents.ring_targets(first.agent),
            free=self._agents.is_free(first.agent, self._clock()),
            priority=settings.call_in_priority,
            prefix=_with_space(settings.call_in_caller_id_prefix),
        )


def _with_space(prefix: str) -> str:
    """The configured prefix and a space before the caller's name ("CB" shows "CB John Smith"): a
    setting cannot end in a space of its own (outer spaces are trimmed)."""
    return f"{prefix} " if prefix else ""
