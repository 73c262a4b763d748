"""The API component of a daemon: its door (the daemon's own services), its gate (tokens) and its server.

The daemon and the API's tests build it here the same way, so what the tests serve is what an admin
runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from asterisk_cb.api.app import ApiServer
from asterisk_cb.api.auth import Gate
from asterisk_cb.api.door import Door, Readiness
from asterisk_cb.api.settings import ApiSite
from asterisk_cb.service import CallbackService, RolesService, SettingsService
from asterisk_cb.service_tokens import TokenService, TokenStore


def api_server(
    site: ApiSite,
    store: TokenStore,
    callbacks: CallbackService,
    settings: Callable[[], SettingsService],
    roles: RolesService,
    *,
    readiness: Readiness,
    queues: Callable[[], Awaitable[list[str]]],
    clock: Callable[[], datetime],
) -> ApiServer:
    tokens = TokenService(store, roles, clock)
    door = Door(callbacks=callbacks, settings=settings, roles=roles, readiness=readiness, queues=queues)
    return ApiServer(door, Gate(tokens, None, site), site)
