"""The API's tests: a served API over a store in a random namespace of the lab's Redis; for the live
events, an aiohttp server on 127.0.0.1 mounting ``stream_events`` with one ``EventHub``, callbacks
written through the real service, and a small SSE client reading the stream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from api_harness import Api, served_api
from live_client import Directory, Lab

from asterisk_cb.api.live import EventHub, stream_events
from asterisk_cb.core.settings import Settings
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, connect
from asterisk_cb.service import ADMIN, Actor, CallbackService, Permission
from asterisk_cb.store import Store


@pytest.fixture
async def api(store: Store, redis: RedisClient) -> AsyncIterator[Api]:
    async with served_api(store, redis) as served:
        yield served


ACTORS = {
    "admin": ADMIN,
    "1001": Actor("1001", frozenset({Permission.SCHEDULE})),
    "1002": Actor("1002", frozenset({Permission.SCHEDULE})),
    "viewer": Actor("viewer", frozenset({Permission.VIEW_ALL})),
}


@pytest.fixture
async def named_redis(lab_redis_url: str) -> AsyncIterator[RedisClient]:
    """A client of its own, named so that its connections can be counted in CLIENT LIST."""
    client = connect(lab_redis_url, name="acb-live-" + uuid.uuid4().hex[:12])
    yield client
    await client.aclose()


@pytest.fixture
async def live_store(named_redis: RedisClient) -> AsyncIterator[Store]:
    store = Store(named_redis, Keys("test-" + uuid.uuid4().hex[:12]))
    yield store
    await store.delete_namespace()


@pytest.fixture
async def live_lab(live_store: Store, named_redis: RedisClient) -> AsyncIterator[Lab]:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return Settings()

    service = CallbackService(live_store, Directory(), settings_for, lambda: datetime.now(UTC))
    hub = EventHub(live_store)
    lab: Lab

    async def handler(request: web.Request) -> web.StreamResponse:
        actor = ACTORS[request.match_info["actor"]]
        return await stream_events(
            request,
            store=live_store,
            hub=hub,
            actor=actor,
            may_see=lab.may_see,
            heartbeat_s=lab.heartbeat_s,
            recheck=lab.recheck,
        )

    app = web.Application()
    app.router.add_get("/events/{actor}", handler)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    following = asyncio.create_task(hub.run())
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        lab = Lab(
            str(server.make_url("")).rstrip("/"), hub, named_redis, live_store, service, session, server
        )
        try:
            yield lab
        finally:
            hub.close()
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
            await server.close()
