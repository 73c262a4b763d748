"""A minimal ARI client for the lab's own checks (smoke call, lab tests): REST calls plus the
events websocket. Needs aiohttp (the project's virtualenv); the daemon has its own client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp

Event = dict[str, Any]


class LabAri:
    """An ARI session subscribed as `app`; every event lands in a queue that callers filter."""

    def __init__(self, url: str, user: str, password: str, app: str) -> None:
        self._url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self.app = app
        self._session: aiohttp.ClientSession | None = None
        self._websocket: aiohttp.ClientWebSocketResponse | None = None
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LabAri:
        self._session = aiohttp.ClientSession(headers=self._headers)
        ws_url = self._url.replace("http", "ws", 1) + "/events"
        try:
            self._websocket = await self._session.ws_connect(ws_url, params={"app": self.app})
        except BaseException:
            await self._session.close()  # __aexit__ does not run when __aenter__ fails
            raise
        self._reader = asyncio.create_task(self._read_events())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._websocket is not None:
            await self._websocket.close()
        if self._session is not None:
            await self._session.close()

    async def _read_events(self) -> None:
        assert self._websocket is not None
        async for message in self._websocket:
            if message.type == aiohttp.WSMsgType.TEXT:
                await self._events.put(message.json())

    async def request(self, method: str, path: str, **params: str) -> Any:
        """One REST call; raises on an HTTP error status, returns the decoded JSON body (or None)."""
        assert self._session is not None
        async with self._session.request(method, f"{self._url}/{path.lstrip('/')}", params=params) as reply:
            if reply.status >= 400:
                raise RuntimeError(f"ARI {method} {path} -> {reply.status}: {await reply.text()}")
            if reply.content_type == "application/json":
                return await reply.json()
            return None

    async def wait_for(self, matches: Callable[[Event], bool], timeout_s: float) -> Event:
        """The next event for which matches() is true; TimeoutError after timeout_s."""
        async with asyncio.timeout(timeout_s):
            while True:
                event = await self._events.get()
                if matches(event):
                    return event

    async def originate(self, endpoint: str, channel_id: str, timeout_s: int = 30) -> Event:
        """Call endpoint; once answered, the channel enters this Stasis app (StasisStart)."""
        return await self.request(
            "POST", "channels", endpoint=endpoint, app=self.app, channelId=channel_id, timeout=str(timeout_s),
            callerId="asterisk-cb lab <0000>",
        )  # fmt: skip
