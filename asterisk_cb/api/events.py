"""``/api/v1/events``: the callbacks' live events as server-sent events (``api.live``), and the
single-use tickets a browser's EventSource connects with, as it cannot send an Authorization header
and a token must never sit in a URL.

A ticket stands for the token that asked for it (its id, not its secret), or for the web panel's
session that asked for it (its id's digest): redeemed, it resolves to the agent or user with the role
held then, and a token revoked or a session ended meanwhile redeems to nobody.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated

from aiohttp import web
from pydantic import Field

from asterisk_cb.api.auth import Recheck, recheck_of
from asterisk_cb.api.door import door_of
from asterisk_cb.api.live import EventHub, stream_events
from asterisk_cb.api.models import Reply, Request
from asterisk_cb.api.routing import Auth, Call, Header, Route
from asterisk_cb.api.tickets import TICKET_TTL_S, Tickets
from asterisk_cb.service_access import Actor
from asterisk_cb.service_tokens import TokenService, parse_token

HUB = web.AppKey("hub", EventHub)
_TOKEN, _SESSION = "token", "session"  # what a ticket's holder is: a token id, a panel session's digest

SessionActor = Callable[[str], Awaitable[Actor | None]]
"""A panel session's digest -> its actor now, None once the session is over."""


class TicketGate:
    """Tickets issued to the caller's token or panel session, redeemed to that credential's check
    (``auth.TicketRedeemer``)."""

    def __init__(self, tickets: Tickets, tokens: TokenService, sessions: SessionActor | None = None) -> None:
        self._tickets = tickets
        self._checks: dict[str, Callable[[str], Awaitable[Actor | None]]] = {
            _TOKEN: tokens.actor_for_token_id
        }
        if sessions is not None:
            self._checks[_SESSION] = sessions

    async def issue(self, request: web.Request) -> str:
        """A ticket for the token of ``request`` (already authenticated by the gate)."""
        _, _, token = request.headers.get("Authorization", "").partition(" ")
        parsed = parse_token(token.strip())
        assert parsed is not None, "the gate let only a valid token through"
        return await self._tickets.issue(parsed[0], _TOKEN)

    async def issue_for_session(self, digest: str) -> str:
        """A ticket for the panel session stored under ``digest`` (already resumed by the panel)."""
        return await self._tickets.issue(digest, _SESSION)

    async def redeem(self, ticket: str) -> Recheck | None:
        held = await self._tickets.redeem(ticket)
        check = None if held is None else self._checks.get(held[0])
        if held is None or check is None:
            return None
        return functools.partial(check, held[1])


class EventsQuery(Request):
    since: Annotated[str, Field(pattern=r"^[0-9]{1,20}(-[0-9]{1,20})?$")] | None = Field(
        None, description="a first connect's start: an event id, or 0 for all the stream holds"
    )
    ticket: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="from POST /events/tickets, for clients that cannot send Authorization"
    )


class TicketReply(Reply):
    ticket: str = Field(description="single use: pass as ?ticket= to GET /api/v1/events")
    expires_in_s: float


async def live_events(call: Call) -> web.StreamResponse:
    """The events of the callbacks the caller may see (its own; every one with view_all_callbacks),
    from ``Last-Event-ID`` (a reconnect) or ``?since=``; an ``event: reset`` asks the client to
    reload when its position was trimmed away."""
    door, hub = door_of(call.request), call.request.app[HUB]
    recheck = recheck_of(call.request)  # every heartbeat: a token revoked meanwhile ends the stream
    return await stream_events(call.request, store=door.events, hub=hub, actor=call.who, recheck=recheck)


async def event_ticket(call: Call) -> TicketReply:
    ticket = await door_of(call.request).tickets.issue(call.request)
    return TicketReply(ticket=ticket, expires_in_s=TICKET_TTL_S)


ROUTES = (
    Route(
        "GET",
        "/events",
        live_events,
        "Live callback events (text/event-stream; resumable with Last-Event-ID)",
        None,
        query=EventsQuery,
        auth=Auth.TICKET,
        tag="events",
        headers=(
            Header("Last-Event-ID", "resume after this event id (browsers send it)", r"^[0-9]+-[0-9]+$"),
        ),
    ),
    Route(
        "POST",
        "/events/tickets",
        event_ticket,
        "A single-use ticket for GET /events (valid 30 s)",
        TicketReply,
        status=201,
        tag="events",
    ),
)
