"""The contact index through the service: only an administrator rebuilds it (the real index:
tests/integration/test_store_numbers.py)."""

from __future__ import annotations

import pytest

from asterisk_cb.service_access import ADMIN, Actor, ErrorCode, Permission, ServiceError
from asterisk_cb.service_index import ContactIndexService


class Index:
    def __init__(self) -> None:
        self.rebuilt = 0

    async def reindex_contacts(self) -> int:
        self.rebuilt += 1
        return 7


async def test_an_administrator_rebuilds_the_index() -> None:
    store = Index()
    assert await ContactIndexService(store).reindex(ADMIN) == 7
    assert store.rebuilt == 1


async def test_without_the_administer_permission_nothing_is_rebuilt() -> None:
    store = Index()
    supervisor = Actor("sue", frozenset(Permission) - {Permission.ADMINISTER})
    with pytest.raises(ServiceError) as refused:
        await ContactIndexService(store).reindex(supervisor)
    assert refused.value.code is ErrorCode.FORBIDDEN
    assert store.rebuilt == 0
