"""A small SSE client, the callbacks the live-events tests write, and the server they read from."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from asterisk_cb.api.auth import Recheck
from asterisk_cb.api.live import EventHub, MaySee
from asterisk_cb.core.inputs import Edit
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.service import ADMIN, CallbackService, ScheduleRequest
from asterisk_cb.store import Store


@dataclass
class Frame:
    """One server-sent event as a client parses it (a comment-only frame has no event and no data)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class SseClient:
    """Reads frames off one response, as an EventSource would; ``last_id`` is what it resumes from."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.last_id: str | None = None

    async def frame(self, timeout_s: float = 5.0) -> Frame:
        frame = Frame()
        async with asyncio.timeout(timeout_s):
            while (line := (await self.response.content.readline()).decode()) not in ("\n", ""):
                name, _, value = line.rstrip("\n").partition(":")
                value = value.removeprefix(" ")
                if not name:
                    frame.comments.append(value)
                else:
                    assert name in ("id", "event", "data"), line
                    setattr(frame, name, value)
        if frame.id is not None:
            self.last_id = frame.id
        return frame

    async def event(self, timeout_s: float = 5.0) -> Frame:
        """The next frame that is an event (heartbeats skipped)."""
        async with asyncio.timeout(timeout_s):
            while (frame := await self.frame(timeout_s)).event is None:
                pass
        return frame

    async def events(self, count: int, timeout_s: float = 5.0) -> list[Frame]:
        return [await self.event(timeout_s) for _ in range(count)]

    def close(self) -> None:
        self.response.close()


class Directory:
    def has_agent(self, agent: str) -> bool:
        return agent in {"1001", "1002"}

    def has_queue(self, queue: str) -> bool:
        return False


@dataclass
class Lab:
    """The server, its hub, and a service writing callbacks into the same namespace."""

    url: str
    hub: EventHub
    redis: RedisClient  # the store's own client (its connections are counted)
    store: Store
    service: CallbackService
    session: aiohttp.ClientSession
    server: TestServer
    heartbeat_s: float = 15.0
    may_see: MaySee | None = None
    recheck: Recheck | None = None

    def open_connections(self) -> int:
        """HTTP connections the server still holds (a stream's handler runs until its ends)."""
        assert self.server.runner is not None and self.server.runner.server is not None
        return len(self.server.runner.server.connections)

    async def connect(
        self, actor: str = "admin", headers: Mapping[str, str] | None = None, **query: str
    ) -> SseClient:
        response = await self.session.get(f"{self.url}/events/{actor}", headers=headers or {}, params=query)
        assert response.status == 200, await response.text()
        return SseClient(response)

    async def schedule(self, agent: str = "1001") -> str:
        due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        created = await self.service.schedule(ADMIN, ScheduleRequest("+4930123456", agent, due))
        return created.callback.id

    async def reassign(self, callback_id: str, agent: str) -> None:
        await self.service.edit(ADMIN, callback_id, Edit(by="admin", agent=agent))

    async def reschedule(self, callback_id: str) -> None:
        await self.service.reschedule(ADMIN, callback_id, datetime.now(UTC) + timedelta(hours=2))
