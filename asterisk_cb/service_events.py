"""The event stream's consumer groups through the service: list them with their backlog, drop one.

A group nobody reads any more holds back the stream's trimming, and only an administrator can tell a
group abandoned from one whose readers are merely down (the daemon never drops a group itself), so
dropping one is an ``administer`` action checked here like every other change.
"""

from __future__ import annotations

from typing import Protocol

from asterisk_cb.service_access import Actor, ErrorCode, Permission, ServiceError, require
from asterisk_cb.store import GroupInfo


class GroupsStore(Protocol):
    """What the groups service needs from the store."""

    async def event_groups(self) -> list[GroupInfo]: ...

    async def drop_group(self, group: str) -> None: ...


class EventGroupsService:
    """The consumer groups of one deployment's event stream."""

    def __init__(self, store: GroupsStore) -> None:
        self._store = store

    async def groups(self, actor: Actor) -> list[GroupInfo]:
        require(actor, Permission.ADMINISTER, "look at the event stream's consumer groups")
        return await self._store.event_groups()

    async def drop(self, actor: Actor, name: str) -> GroupInfo:
        """Drop group ``name`` and return it as it was; an unknown name is NOT_FOUND with the known
        ones named. A daemon still consuming it creates it anew from new events on."""
        known = {group.name: group for group in await self.groups(actor)}
        group = known.get(name)
        if group is None:
            names = ", ".join(sorted(known)) or "none"
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"no consumer group {name!r} on the event stream (groups: {names})"
            )
        await self._store.drop_group(group.name)
        return group
