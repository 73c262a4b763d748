"""The contact index rebuilt through the service, an ``administer`` action like every other.

Callbacks are indexed (and their calls locked) by the canonical form of their contact numbers under the
deployment's numbering plan (``[numbers]``). Entries written before that plan (an upgrade from literal
number keys) or under another one sit where lookups no longer find them until the index is rebuilt.
"""

from __future__ import annotations

from typing import Protocol

from asterisk_cb.service_access import Actor, Permission, require


class IndexStore(Protocol):
    """What the index service needs from the store."""

    async def reindex_contacts(self) -> int: ...


class ContactIndexService:
    """The contact index of one deployment."""

    def __init__(self, store: IndexStore) -> None:
        self._store = store

    async def reindex(self, actor: Actor) -> int:
        """Move every callback to its number's entry under the current plan; how many entries moved."""
        require(actor, Permission.ADMINISTER, "rebuild the contact index")
        return await self._store.reindex_contacts()
