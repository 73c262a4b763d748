"""The API's tests get a served API over a store in a random namespace of the lab's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from api_harness import Api, served_api

from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.store import Store


@pytest.fixture
async def api(store: Store, redis: RedisClient) -> AsyncIterator[Api]:
    async with served_api(store, redis) as served:
        yield served
