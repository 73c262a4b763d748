"""Listing a page at a time with a cursor (as the API and the panel will), on the lab's Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_service import AGENT_1001, AGENT_1002, NOW, Clock, Directory, refused, request

from asterisk_cb.core.model import Callback, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.service import ADMIN, CallbackService, ErrorCode, Page, Query
from asterisk_cb.service_paging import encode_cursor
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


@pytest.fixture
def service(store: Store) -> CallbackService:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return Settings()

    return CallbackService(store, Directory(), settings_for, Clock())


async def schedule(service: CallbackService, count: int, agent: str = "1001", start_min: int = 60) -> None:
    for minute in range(start_min, start_min + count):
        due = NOW + timedelta(minutes=minute)
        await service.schedule(ADMIN, request(agent=agent, due_at=due, created_by="admin"))


async def all_pages(service: CallbackService, query: Query, limit: int) -> list[Page]:
    pages = [await service.list_page(ADMIN, query, limit=limit)]
    while pages[-1].next_cursor is not None:
        pages.append(await service.list_page(ADMIN, query, limit=limit, cursor=pages[-1].next_cursor))
    return pages


def ids(callbacks: list[Callback]) -> list[str]:
    return [callback.id for callback in callbacks]


async def test_pages_cover_every_callback_once_in_order(service: CallbackService) -> None:
    await schedule(service, 250)
    pages = await all_pages(service, Query(), 100)
    assert [len(page.callbacks) for page in pages] == [100, 100, 50]
    paged = [callback for page in pages for callback in page.callbacks]
    assert ids(paged) == ids(await service.list(ADMIN, Query()))
    assert len(set(ids(paged))) == 250


async def test_same_due_time_pages_by_id(service: CallbackService) -> None:
    for _ in range(5):
        await service.schedule(AGENT_1001, request())
    pages = await all_pages(service, Query(), 2)
    assert [len(page.callbacks) for page in pages] == [2, 2, 1]
    paged = ids([callback for page in pages for callback in page.callbacks])
    assert paged == sorted(paged)


async def test_a_callback_added_between_pages_does_not_shift_later_ones(service: CallbackService) -> None:
    await schedule(service, 30)
    before = ids(await service.list(ADMIN, Query()))
    first = await service.list_page(ADMIN, Query(), limit=10)
    await service.schedule(ADMIN, request(due_at=NOW + timedelta(minutes=5), created_by="admin"))
    second = await service.list_page(ADMIN, Query(), limit=10, cursor=first.next_cursor)
    assert ids(first.callbacks) == before[:10]
    assert ids(second.callbacks) == before[10:20]


async def test_a_page_of_a_filtered_listing(service: CallbackService) -> None:
    await schedule(service, 3)
    cancelled = (await service.list(ADMIN, Query()))[1]
    await service.cancel(ADMIN, cancelled.id)
    page = await service.list_page(ADMIN, Query(state=State.SCHEDULED), limit=5)
    assert cancelled.id not in ids(page.callbacks)
    assert (len(page.callbacks), page.next_cursor) == (2, None)


async def test_an_agent_without_view_all_pages_only_its_own(service: CallbackService) -> None:
    await schedule(service, 5, agent="1001")
    await schedule(service, 5, agent="1002", start_min=62)
    first = await service.list_page(AGENT_1002, Query(), limit=3)
    second = await service.list_page(AGENT_1002, Query(), limit=3, cursor=first.next_cursor)
    assert {callback.agent for callback in first.callbacks + second.callbacks} == {"1002"}
    assert (len(first.callbacks), len(second.callbacks), second.next_cursor) == (3, 2, None)
    await refused(service.list_page(AGENT_1002, Query(agent="1001"), limit=3), ErrorCode.FORBIDDEN)


@pytest.mark.parametrize(
    "cursor", ["", "not a cursor", "!!!!", "MTIzNDU2", encode_cursor((NOW, "x"))[:-3], "OjEyMzQ", "LTU6YWJj"]
)
async def test_a_malformed_cursor_is_refused(service: CallbackService, cursor: str) -> None:
    await refused(service.list_page(ADMIN, Query(), limit=10, cursor=cursor), ErrorCode.INVALID, "cursor")


@pytest.mark.parametrize("limit", [0, -1, 501])
async def test_a_limit_out_of_bounds_is_refused(service: CallbackService, limit: int) -> None:
    await refused(service.list_page(ADMIN, Query(), limit=limit), ErrorCode.INVALID, "limit")


async def test_the_default_page_and_its_bounds(service: CallbackService) -> None:
    await schedule(service, 3)
    assert len((await service.list_page(ADMIN, Query())).callbacks) == 3
    assert (await service.list_page(ADMIN, Query(), limit=500)).next_cursor is None
    assert (await service.list_page(AGENT_1001, Query(), limit=1)).next_cursor is not None
    assert (await service.list_page(AGENT_1002, Query(), limit=1)) == Page([], None)
