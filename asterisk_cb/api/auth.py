"""Who asks: the Bearer token (or the live events' ticket) turned into an ``Actor``, roles resolved at
every request, and failed attempts slowed down per client address.

A token is only ever read from the ``Authorization`` header and never written anywhere: not in a log
line, not in an error message. The client address is the peer's, or, when the peer is one of
``[api] trusted_proxies`` (the TLS proxy in front), the last address in ``X-Forwarded-For`` that is
not a trusted proxy: a header any client can write counts only when a proxy of ours wrote it.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from ipaddress import ip_address
from typing import Protocol

from aiohttp import web

from asterisk_cb.api.errors import ApiError, HttpCode
from asterisk_cb.api.routing import Auth
from asterisk_cb.api.settings import ApiSite, Network
from asterisk_cb.service_access import Actor

# Addresses whose failures are remembered at once; the oldest is forgotten first (a flood of spoofed
# sources cannot grow the daemon's memory without bound).
MAX_TRACKED = 50_000
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="asterisk-cb"'}


Recheck = Callable[[], Awaitable[Actor | None]]
"""A request's credential checked again: its actor with the role held now, None once it is no more (a
token revoked or expired, its agent or user removed). A long request (the live events) calls it."""
RECHECK_KEY: web.RequestKey[Recheck] = web.RequestKey("recheck")  # where the gate leaves it


class Authenticator(Protocol):
    """Turns a token into the actor it stands for, roles as they are now; None for any bad token."""

    async def authenticate(self, token: str) -> Actor | None: ...


class TicketRedeemer(Protocol):
    """Redeems a single-use live-events ticket, once: how to check its credential (the token it was
    issued to); None for any bad or used ticket."""

    async def redeem(self, ticket: str) -> Recheck | None: ...


class FailureLimit:
    """At most ``limit`` failed authentications per ``window`` from one address, then refused until the
    oldest failure leaves the window (``retry_after``)."""

    def __init__(self, limit: int, window: timedelta, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._window_s = window.total_seconds()
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        failures = self._recent(address)
        if len(failures) < self._limit:
            return 0.0
        return max(0.0, failures[0] + self._window_s - self._clock())

    def failed(self, address: str) -> None:
        self._recent(address).append(self._clock())
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        horizon = self._clock() - self._window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The client's address (see the module's docstring for proxies)."""
    peer = request.remote or ""
    if not in_networks(peer, trusted):
        return peer
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed(forwarded):
        if hop and not in_networks(hop, trusted):
            return hop if _is_address(hop) else peer
    return peer


def in_networks(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def _is_address(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


class Gate:
    """The API's authentication: ``await gate(request, route.auth)`` is the caller's actor or a 401/429."""

    def __init__(
        self,
        tokens: Authenticator,
        tickets: TicketRedeemer | None,
        site: ApiSite,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = tokens
        self._tickets = tickets
        self._trusted = site.trusted_proxies
        self.failures = FailureLimit(site.auth_failures, site.auth_window, clock)  # the panel's sign-in too

    async def __call__(self, request: web.Request, auth: Auth) -> Actor | None:
        if auth is Auth.NONE:
            return None
        address = client_address(request, self._trusted)
        wait_s = self.failures.retry_after(address)
        if wait_s > 0:
            raise ApiError(
                HttpCode.RATE_LIMITED,
                "too many failed authentications from this address: try again later",
                headers={"Retry-After": str(max(1, round(wait_s)))},
            )
        recheck = await self._credential(request, auth)
        actor = None if recheck is None else await recheck()
        if recheck is None or actor is None:
            self.failures.failed(address)
            raise ApiError(
                HttpCode.UNAUTHORIZED, "the token is unknown, expired or revoked", "Authorization", _CHALLENGE
            )
        request[RECHECK_KEY] = recheck
        return actor

    async def _credential(self, request: web.Request, auth: Auth) -> Recheck | None:
        """How to resolve the request's credential (now, and again later); None for a bad one."""
        header = request.headers.get("Authorization")
        ticket = request.query.get("ticket") if auth is Auth.TICKET else None
        if header is None and ticket is not None and self._tickets is not None:
            return await self._tickets.redeem(ticket)
        if header is None:
            raise ApiError(
                HttpCode.UNAUTHORIZED,
                "send the token as Authorization: Bearer <token>",
                "Authorization",
                _CHALLENGE,
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return functools.partial(self._tokens.authenticate, token.strip())


def recheck_of(request: web.Request) -> Recheck:
    """The credential of an authenticated request, to check again (``Gate`` left it there)."""
    return request[RECHECK_KEY]
