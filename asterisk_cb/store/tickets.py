"""Short-lived single-use tickets: a browser's EventSource cannot send an Authorization header, and a
token never goes in a URL, so a client trades its token for a ticket it puts in the URL once.

Only a digest of each ticket is stored (a Redis dump or MONITOR shows no usable ticket); taking one
deletes it in the same command (GETDEL), so two requests racing with one ticket cannot both win.
"""

from __future__ import annotations

from asterisk_cb.store.base import StorePart


class TicketStore(StorePart):
    """Keep and take tickets by digest; what a ticket stands for is the caller's text."""

    async def put_ticket(self, digest: str, holder: str, ttl_ms: int) -> None:
        """Keep ``holder`` under ``digest`` for ``ttl_ms``; Redis forgets it then, taken or not."""
        await self._redis.set(self._keys.ticket(digest), holder, px=ttl_ms)

    async def take_ticket(self, digest: str) -> str | None:
        """What ``digest`` stood for, removed at once: None if never kept, already taken, or expired."""
        holder = await self._redis.getdel(self._keys.ticket(digest))
        return None if holder is None else str(holder)
