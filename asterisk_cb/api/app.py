"""The REST API as a daemon component: an aiohttp application on ``[api] listen`` serving the route
tables of ``api.callbacks``, ``api.admin`` and this module (health, readiness, the OpenAPI document),
and with ``[api] panel = yes`` the web panel's pages under ``/panel`` (``asterisk_cb.web``).

Auxiliary: a failing API is restarted by the supervisor and never stops the callbacks. It listens on
127.0.0.1 unless told otherwise; TLS is the job of the proxy in front (README "REST API").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.log import server_logger

from asterisk_cb.api import admin, callbacks, events, history
from asterisk_cb.api.auth import Gate
from asterisk_cb.api.door import DOOR, Door, door_of
from asterisk_cb.api.errors import Handler, json_errors
from asterisk_cb.api.events import HUB
from asterisk_cb.api.live import EventHub
from asterisk_cb.api.models import Health, Readiness
from asterisk_cb.api.openapi import document
from asterisk_cb.api.routing import PREFIX, Auth, Call, Route, endpoint
from asterisk_cb.api.settings import ApiSite
from asterisk_cb.components import forever
from asterisk_cb.web.app import panel_app
from asterisk_cb.web.panel import MOUNT, Panel

log = logging.getLogger(__name__)

_CORS_METHODS = "GET, POST, PUT, PATCH, DELETE"
_CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"


async def health(call: Call) -> Health:
    """The process answers (a liveness probe)."""
    return Health(status="ok")


async def ready(call: Call) -> tuple[int, Readiness]:
    """Every component runs and Redis answers (a readiness probe: the API's ``doctor``); 503 if not."""
    components, redis = await door_of(call.request).readiness()
    is_ready = redis and all(components.values())
    return (200 if is_ready else 503), Readiness(ready=is_ready, components=dict(components), redis=redis)


HEALTH_ROUTES = (
    Route("GET", "/health", health, "Liveness: the daemon answers", Health, auth=Auth.NONE, tag="health"),
    Route(
        "GET",
        "/ready",
        ready,
        "Readiness: every component runs and Redis answers",
        Readiness,
        also={503: "not ready: see components and redis"},
        auth=Auth.NONE,
        tag="health",
    ),
)
ROUTES: tuple[Route, ...] = (
    *HEALTH_ROUTES,
    *callbacks.ROUTES,
    *history.ROUTES,
    *events.ROUTES,
    *admin.ROUTES,
)
SPEC = web.AppKey("spec", dict)


def build_app(
    door: Door,
    gate: Gate,
    site: ApiSite,
    hub: EventHub,
    routes: Sequence[Route] = ROUTES,
    *,
    panel: Panel | None = None,
) -> web.Application:
    """The application: routes, the JSON error shape, the body limit, CORS for the listed origins;
    ``hub`` wakes the live events' streams, and ends them all when the server shuts down; ``panel``:
    the web panel's pages too."""
    middlewares = [json_errors]
    if site.cors_origins:
        middlewares.insert(0, _cors(site.cors_origins))
    app = web.Application(client_max_size=site.max_body, middlewares=middlewares)
    app[DOOR] = door
    app[HUB] = hub
    app[SPEC] = document(routes)
    app.on_shutdown.append(lambda _: _close(hub))
    for route in routes:
        app.router.add_route(route.method, PREFIX + route.path, endpoint(route, gate))
    app.router.add_get(PREFIX + "/openapi.json", _openapi)
    if panel is not None:
        app.router.add_get(MOUNT, _to_panel)  # the address a person types (before the sub-app's prefix)
        app.add_subapp(MOUNT, panel_app(door, panel))
    return app


async def _to_panel(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(MOUNT + "/")


async def _close(hub: EventHub) -> None:
    hub.close()


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[SPEC])


def _cors(origins: Sequence[str]) -> Any:
    """Browsers at ``origins`` may call the API (a preflight answered here); any other origin gets no
    CORS header, so its page cannot read a reply."""
    allowed = frozenset(origins)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin not in allowed:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = _CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = origin or ""
        response.headers["Vary"] = "Origin"
        return response

    return cors


class QuietMalformed(logging.Filter):
    """aiohttp logs a request it cannot parse (a scanner, a fuzzer, a NUL in a header) as an error with
    a traceback quoting the offending line, which may hold a token. Such a request is the client's
    fault and aiohttp already answered 400: one warning line, nothing of what was sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "malformed HTTP request refused (400)", ()
            record.exc_info, record.exc_text = None, None
        return True


_QUIET = QuietMalformed()


@dataclass
class ApiServer:
    """The API on ``site``'s address until cancelled."""

    door: Door
    gate: Gate
    site: ApiSite
    routes: Sequence[Route] = ROUTES
    panel: Panel | None = None  # the web panel's sessions and sign-in limit; None: no pages
    name: str = "api"
    essential: bool = False
    runner: web.AppRunner | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._listening = asyncio.Event()

    async def run(self) -> None:
        """Serve until cancelled, with a hub of this run's own following the event stream (one
        blocking read for every live-events client)."""
        server_logger.addFilter(_QUIET)  # once: adding the same filter again is a no-op
        hub = EventHub(self.door.events)
        following = asyncio.create_task(hub.run(), name="live events hub")
        app = build_app(self.door, self.gate, self.site, hub, self.routes, panel=self.panel)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        try:
            await self.runner.setup()
            await web.TCPSite(self.runner, self.site.host, self.site.port).start()
            log.info("API listening", extra={"host": self.site.host, "port": self.port})
            self._listening.set()
            await forever()
        finally:
            self._listening.clear()
            await self.runner.cleanup()
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)

    async def listening(self) -> int:
        """Wait until the server listens; its port (the one the OS picked for ``listen = ...:0``)."""
        await self._listening.wait()
        return self.port

    @property
    def port(self) -> int:
        assert self.runner is not None and self.runner.addresses, "the server listens"
        return int(self.runner.addresses[0][1])
