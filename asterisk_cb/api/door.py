"""What the API's handlers reach: the service's faces, and nothing past them (no store, no Redis).

Kept in the application under ``DOOR``; the daemon builds it from the same service objects the
feature code and the CLI use, so every way in answers with the same checks and messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from asterisk_cb.api.live import EventFeed
from asterisk_cb.service import CallbackService, RolesService, SettingsService
from asterisk_cb.service_history import HistoryService

if TYPE_CHECKING:
    from asterisk_cb.api.events import TicketGate

Readiness = Callable[[], Awaitable[tuple[Mapping[str, bool], bool]]]
"""() -> (each daemon component: running, Redis answers)."""


@dataclass(frozen=True)
class Door:
    callbacks: CallbackService
    settings: Callable[[], SettingsService]  # over the config file as last reloaded (SIGHUP)
    roles: RolesService
    readiness: Readiness
    queues: Callable[[], Awaitable[list[str]]]  # what Asterisk reports (AMI QueueStatus)
    history: HistoryService  # the CDR: agents' calls, callbacks' rows
    events: EventFeed  # the event stream, read by the live events
    tickets: TicketGate  # the live events' single-use tickets


DOOR = web.AppKey("door", Door)


def door_of(request: web.Request) -> Door:
    return request.app[DOOR]
