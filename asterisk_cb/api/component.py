"""The API component of a daemon: its door (the daemon's own services), its gate (tokens) and its server.

The daemon and the API's tests build it here the same way, so what the tests serve is what an admin
runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from asterisk_cb.api.app import ApiServer
from asterisk_cb.api.auth import Gate
from asterisk_cb.api.door import Door, Readiness
from asterisk_cb.api.events import TicketGate
from asterisk_cb.api.live import EventFeed
from asterisk_cb.api.tickets import TicketKeeper, Tickets
from asterisk_cb.deployment import Deployment
from asterisk_cb.records.history import CdrHistory
from asterisk_cb.service import CallbackService, RolesService, SettingsService
from asterisk_cb.service_history import HistoryService, HistoryStore
from asterisk_cb.service_passwords import PasswordService, PasswordStore
from asterisk_cb.service_tokens import TokenService, TokenStore
from asterisk_cb.web.panel import Panel
from asterisk_cb.web.sessions import SessionLimits, Sessions, SessionStore


class ApiStore(TokenStore, HistoryStore, EventFeed, TicketKeeper, PasswordStore, SessionStore, Protocol):
    """What the API's own services and the panel need of the store beyond the callback service's."""


def api_server(
    site: Deployment,
    store: ApiStore,
    callbacks: CallbackService,
    settings: Callable[[], SettingsService],
    roles: RolesService,
    *,
    readiness: Readiness,
    queues: Callable[[], Awaitable[list[str]]],
    clock: Callable[[], datetime],
) -> ApiServer:
    tokens = TokenService(store, roles, clock)
    limits = SessionLimits(site.api.session_idle, site.api.session_max_age)
    sessions = Sessions(store, PasswordService(store, roles), tokens, roles, limits, clock=clock)
    tickets = TicketGate(Tickets(store), tokens, sessions.actor_of_digest if site.api.panel else None)
    history = HistoryService(_cdr(site), store, site.agents)
    door = Door(callbacks, settings, roles, readiness, queues, history, store, tickets)
    gate = Gate(tokens, tickets, site.api)
    panel = Panel(sessions, gate.failures, site.api.trusted_proxies) if site.api.panel else None
    return ApiServer(door, gate, site.api, panel=panel)


def _cdr(site: Deployment) -> CdrHistory | None:
    """The CDR reader of ``[records]`` (None without a DSN: the history then says it needs one)."""
    if site.records.dsn is None:
        return None
    devices = {agent: spec.devices for agent, spec in site.agents.items()}
    return CdrHistory(site.records, site.dialing.cdr_mark, devices)
