"""Single-use tickets for clients that cannot send a token: a browser's EventSource sends no
Authorization header, and a token in a URL ends up in logs and histories. A client holding a token asks
for a ticket (valid ``TICKET_TTL_S``, once) and puts that in the URL instead.

The ticket is 32 random bytes; Redis keeps only its SHA-256 (``TicketStore``), so a leaked dump holds
nothing to replay. Redeeming never raises on what a client sends and never logs it: whatever is not a
live ticket is simply None.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Protocol

TICKET_TTL_S = 30.0
_TICKET_BYTES = 32
# token_urlsafe(32): 43 characters of the URL-safe base64 alphabet, no padding.
_TICKET = re.compile(r"[A-Za-z0-9_-]{43}\Z")


class TicketKeeper(Protocol):
    """The store's ticket methods (``asterisk_cb.store.tickets.TicketStore``)."""

    async def put_ticket(self, digest: str, holder: str, ttl_ms: int) -> None: ...

    async def take_ticket(self, digest: str) -> str | None: ...


class Tickets:
    """Issue and redeem tickets standing for an identity: its ``kind`` (as the API's auth names it)
    and ``name``. The roles are not in the ticket: the redeemer resolves them at that moment."""

    def __init__(self, store: TicketKeeper, ttl_s: float = TICKET_TTL_S) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ticket lifetime must be positive, not {ttl_s}")
        self._store = store
        self._ttl_ms = max(1, round(ttl_s * 1000))

    async def issue(self, actor_name: str, kind: str) -> str:
        """A new ticket for ``(kind, actor_name)``, valid once within the lifetime."""
        ticket = secrets.token_urlsafe(_TICKET_BYTES)
        await self._store.put_ticket(_digest(ticket), json.dumps([kind, actor_name]), self._ttl_ms)
        return ticket

    async def redeem(self, ticket: str) -> tuple[str, str] | None:
        """``(kind, name)`` of a live ticket, which is gone from then on; None for anything else
        (unknown, used, expired, or not shaped like a ticket: then Redis is not even asked)."""
        if not _TICKET.match(ticket):
            return None
        return _holder(await self._store.take_ticket(_digest(ticket)))


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("ascii")).hexdigest()


def _holder(stored: str | None) -> tuple[str, str] | None:
    """The stored ``[kind, name]``; a value this module did not write counts as no ticket."""
    if stored is None:
        return None
    try:
        kind, name = json.loads(stored)
    except (ValueError, TypeError):
        return None
    if not isinstance(kind, str) or not isinstance(name, str):
        return None
    return kind, name
