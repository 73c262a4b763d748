"""A small aiohttp fake of ARI for unit tests: recorded REST answers and events, and a switch to "restart".

It serves just what the client and the event stream use, from JSON recorded off the lab's Asterisk 22
(fixtures/ari_*.json), and counts what it was asked so tests can check re-registration and resync.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, encode_basic_auth, web
from aiohttp.test_utils import TestServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class FakeAri:
    """State a test can set (channels, bridges, events to push) and inspect (calls)."""

    def __init__(self) -> None:
        self.channels: dict[str, dict[str, Any]] = {}
        self.bridges: dict[str, dict[str, Any]] = {}
        self.on_connect_events: list[dict[str, Any]] = []
        self.calls: Counter[str] = Counter()
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.down = False
        self.unreachable: set[str] = set()  # endpoints whose originate answers 500 (unregistered)
        self.delay_s = 0.0
        self.auth = encode_basic_auth("acb", "secret")
        self.websockets: list[web.WebSocketResponse] = []
        self.server: TestServer | None = None

    # --- control ---------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._rest)
        self.server = TestServer(app)
        await self.server.start_server()
        return f"http://127.0.0.1:{self.server.port}/ari"

    async def close(self) -> None:
        await self.drop_websockets()
        if self.server is not None:
            await self.server.close()

    async def drop_websockets(self) -> None:
        """What the client sees when Asterisk restarts: every events socket closes."""
        for ws in list(self.websockets):
            await ws.close()
        self.websockets.clear()

    async def push(self, event: dict[str, Any]) -> None:
        for ws in list(self.websockets):
            await ws.send_str(json.dumps(event))

    # --- handlers --------------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.down:
            raise web.HTTPServiceUnavailable()
        if request.headers.get("Authorization") != self.auth:
            return web.json_response({"message": "Authentication required"}, status=401)
        await asyncio.sleep(self.delay_s)
        key = f"{request.method} {request.path}"
        self.calls[key] += 1
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.raw_path.split("?")[0], dict(request.query), body))
        return await handler(request)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.websockets.append(ws)
        for event in self.on_connect_events:
            await ws.send_str(json.dumps(event))
        async for message in ws:
            if message.type == WSMsgType.ERROR:
                break
        return ws

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        route = self._routes().get((request.method, request.match_info["tail"]))
        if route is not None:
            return await route(request)
        return await self._object_route(request)

    def _routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "channels"): self._list(self.channels),
            ("GET", "bridges"): self._list(self.bridges),
            ("GET", "asterisk/ping"): self._ping,
            ("POST", "channels"): self._originate,
            ("POST", "channels/create"): self._create,
        }

    def _list(self, objects: dict[str, dict[str, Any]]) -> Any:
        async def handler(_request: web.Request) -> web.Response:
            return web.json_response(list(objects.values()))

        return handler

    async def _ping(self, _request: web.Request) -> web.Response:
        return web.json_response(load_fixture("ari_ping.json"))

    async def _originate(self, request: web.Request) -> web.Response:
        channel_id = request.query["channelId"]
        if request.query["endpoint"] in self.unreachable:  # what Asterisk 22 answers, recorded
            return web.json_response({"error": "Allocation failed"}, status=500)
        if channel_id in self.channels:
            return web.json_response({"message": "Channel with given unique ID already exists"}, status=409)
        channel = dict(load_fixture("ari_channel.json"), id=channel_id)
        self.channels[channel_id] = channel
        return web.json_response(channel)

    async def _create(self, request: web.Request) -> web.Response:
        """A created channel is not dialled; it enters the app right away (its StasisStart)."""
        channel_id = request.query["channelId"]
        if channel_id in self.channels:
            return web.json_response({"message": "Channel with given unique ID already exists"}, status=409)
        channel = dict(load_fixture("ari_channel.json"), id=channel_id, state="Down")
        self.channels[channel_id] = channel
        entered = {"type": "StasisStart", "application": request.query["app"], "args": [], "channel": channel}
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.push(entered)))
        return web.json_response(channel)

    async def _object_route(self, request: web.Request) -> web.StreamResponse:
        kind, _, rest = request.match_info["tail"].partition("/")
        if kind == "channels":
            return self._channel_route(request, rest)
        if kind == "bridges" and request.method == "GET" and "/" not in rest:
            if rest not in self.bridges:
                return web.json_response({"message": "Bridge not found"}, status=404)
            return web.json_response(self.bridges[rest])
        if kind == "bridges" and request.method == "POST" and "/" not in rest:
            self.bridges[rest] = {
                "id": rest,
                "technology": "simple_bridge",
                "bridge_type": "mixing",
                "channels": [],
            }
            return web.json_response(self.bridges[rest])
        if kind == "bridges" and rest.endswith("/addChannel"):
            if request.query["channel"] not in self.channels:  # what Asterisk 22 answers, recorded
                return web.json_response({"message": "Channel not in Stasis application"}, status=422)
            return web.Response(status=204)
        return web.json_response({"message": "Resource not found"}, status=404)

    def _channel_route(self, request: web.Request, rest: str) -> web.Response:
        channel_id, _, action = rest.partition("/")
        channel = self.channels.get(channel_id)
        if channel is None:
            return web.json_response({"message": "Channel not found"}, status=404)
        if action and not channel.get("in_stasis", True):  # what Asterisk 22 answers, recorded
            return web.json_response({"message": "Channel not in Stasis application"}, status=409)
        if action == "variable" and request.method == "POST":
            channel.setdefault("channelvars", {})[request.query["variable"]] = request.query.get("value", "")
            return web.Response(status=204)
        if action == "variable":
            value = channel.get("channelvars", {}).get(request.query["variable"])
            if value is None:
                return web.json_response({"message": "Provided variable was not found"}, status=404)
            return web.json_response({"value": value})
        if action.startswith("play"):  # POST /channels/{id}/play[/{playbackId}]: the playback starts
            playback_id = action.partition("/")[2] or f"playback-{len(self.requests)}"
            media = request.query["media"]
            return web.json_response(
                {
                    "id": playback_id,
                    "media_uri": media,
                    "target_uri": f"channel:{channel_id}",
                    "state": "queued",
                }
            )
        if request.method == "DELETE" and not action:
            del self.channels[channel_id]
        if request.method == "GET" and not action:
            return web.json_response(channel)
        return web.Response(status=204)
