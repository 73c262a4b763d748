"""A daemon's REST API served on a local port over the lab's Redis (a store in its own namespace), built
by ``asterisk_cb.api.component`` exactly as the daemon builds it; tokens made by the real token service.

Only the queue list (Asterisk's, over AMI) is given by the test: the API's tests are about HTTP and the
service, and the e2e tests cover the daemon with its AMI link.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession
from config_texts import REQUIRED

from asterisk_cb import deployment
from asterisk_cb.api.component import api_server
from asterisk_cb.core import ini
from asterisk_cb.core.settings import from_documents
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.service import ADMIN, CallbackService, RolesService, SettingsService
from asterisk_cb.service_tokens import TokenService
from asterisk_cb.store import Store

CONFIG = (
    REQUIRED
    + """
[general]
default_timezone = Europe/Berlin
[agents]
1001 = PJSIP/1001
1002 = PJSIP/1002
1003 = PJSIP/1003
[users]
anna = supervisor
root = admin
[api]
listen = 127.0.0.1:8090
max_body = 4096
auth_failures = 5
"""
)
QUEUES = ["failover", "support"]


@dataclass
class Api:
    """The served API: its base URL and a token per identity (agents by id, users by name)."""

    base: str
    tokens: dict[str, str]
    service: TokenService
    store: Store
    roles: RolesService  # the served daemon's (the panel's passwords are set through it)

    async def call(
        self, method: str, path: str, who: str | None = None, **kwargs: Any
    ) -> tuple[int, Any, dict[str, str]]:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        async with (
            ClientSession() as session,
            session.request(method, self.base + path, headers=headers, **kwargs) as response,
        ):
            text = await response.text()
            body = json.loads(text) if response.content_type == "application/json" else text
            return response.status, body, dict(response.headers)


@asynccontextmanager
async def served_api(store: Store, redis: RedisClient, config: str = CONFIG) -> AsyncIterator[Api]:
    file = from_documents([ini.parse(config, "api.conf")], deployment.SECTIONS)
    site = deployment.from_settings_file(file)
    # a port of the OS's choosing, free by definition
    served_at = dataclasses.replace(site, api=dataclasses.replace(site.api, port=0))
    clock = lambda: datetime.now(UTC)  # noqa: E731 - the daemon's clock
    roles = RolesService(store, site.roles, site.agents)
    settings = SettingsService(store, file, site)
    callbacks = CallbackService(store, site, settings.effective, clock)

    async def readiness() -> tuple[dict[str, bool], bool]:
        return {"api": True}, bool(await redis.ping())

    async def queues() -> list[str]:
        return list(QUEUES)

    server = api_server(
        served_at, store, callbacks, lambda: settings, roles, readiness=readiness, queues=queues, clock=clock
    )
    task = asyncio.create_task(server.run())
    try:
        port = await asyncio.wait_for(server.listening(), 10)
        tokens = TokenService(store, roles, clock)
        issued = {}
        for agent in ("1001", "1002", "1003"):
            issued[agent], _ = await tokens.create(ADMIN, agent=agent)
        for user in ("anna", "root"):
            issued[user], _ = await tokens.create(ADMIN, user=user)
        yield Api(f"http://127.0.0.1:{port}/api/v1", issued, tokens, store, roles)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
