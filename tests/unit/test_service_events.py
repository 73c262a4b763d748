"""The consumer groups through the service: only an administrator sees or drops them, and an unknown
group is refused with the known ones named (the real stream: tests/integration/test_cli_events.py)."""

from __future__ import annotations

import pytest

from asterisk_cb.service_access import ADMIN, Actor, ErrorCode, Permission, ServiceError
from asterisk_cb.service_events import EventGroupsService
from asterisk_cb.store import GroupInfo

METRICS = GroupInfo("metrics", consumers=2, pending=0, last_delivered="1-0", lag=0)
CEL = GroupInfo("cel", consumers=0, pending=40, last_delivered="0-0", lag=None)


class Groups:
    def __init__(self) -> None:
        self.known = [METRICS, CEL]
        self.dropped: list[str] = []

    async def event_groups(self) -> list[GroupInfo]:
        return list(self.known)

    async def drop_group(self, group: str) -> None:
        self.dropped.append(group)


async def test_an_administrator_lists_and_drops_a_group() -> None:
    store = Groups()
    service = EventGroupsService(store)
    assert await service.groups(ADMIN) == [METRICS, CEL]
    assert await service.drop(ADMIN, "cel") == CEL
    assert store.dropped == ["cel"]


async def test_an_unknown_group_is_not_found_and_names_the_known_ones() -> None:
    store = Groups()
    with pytest.raises(ServiceError) as refused:
        await EventGroupsService(store).drop(ADMIN, "cdr")
    assert refused.value.code is ErrorCode.NOT_FOUND
    assert "cel, metrics" in refused.value.message
    assert store.dropped == []


@pytest.mark.parametrize("action", ["groups", "drop"])
async def test_without_the_administer_permission_nothing_is_read_or_dropped(action: str) -> None:
    store = Groups()
    supervisor = Actor("sue", frozenset(Permission) - {Permission.ADMINISTER})
    service = EventGroupsService(store)
    with pytest.raises(ServiceError) as refused:
        await (service.groups(supervisor) if action == "groups" else service.drop(supervisor, "cel"))
    assert refused.value.code is ErrorCode.FORBIDDEN
    assert store.dropped == []
