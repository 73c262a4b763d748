"""The panel as an aiohttp sub-application under ``/panel``: its page table, the guard every page goes
through (session, CSRF, permission), its error pages and its static files.

A page handler gets a ``Visit`` and reaches the engine only through the API's door (``door_of``): the
same service calls, permission checks and messages as the API, never the store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from redis.exceptions import RedisError

from asterisk_cb.api.auth import FailureLimit, in_networks
from asterisk_cb.api.door import DOOR, Door
from asterisk_cb.api.errors import STATUS, route_of
from asterisk_cb.api.settings import Network
from asterisk_cb.service_access import ErrorCode, Permission, ServiceError
from asterisk_cb.web.csrf import FIELD, HEADER, csrf_ok
from asterisk_cb.web.render import SIGNED, page
from asterisk_cb.web.sessions import Sessions, Signed

log = logging.getLogger(__name__)

MOUNT = "/panel"
COOKIE = "acb_session"
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Panel:
    """What the panel needs beside the door: sessions, and the API's failed-authentication limit
    (sign-ins count with the API's failures, per client address) and trusted proxies."""

    sessions: Sessions
    failures: FailureLimit
    trusted_proxies: tuple[Network, ...] = ()


PANEL = web.AppKey("panel", Panel)


@dataclass(frozen=True)
class Visit:
    """One signed-in request as a page sees it: who (``signed``), and the form of a POST."""

    request: web.Request
    signed: Signed
    form: Mapping[str, str] = field(default_factory=dict)  # a POST's fields, the last of each name
    repeated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # ... every value of each name

    def every(self, name: str) -> tuple[str, ...]:
        """Each value sent for ``name`` (the supervisor's ticked rows, the role's permissions)."""
        return self.repeated.get(name, ())

    @property
    def door(self) -> Door:
        return self.request.app[DOOR]

    @property
    def csrf(self) -> str:
        return self.signed.record.csrf


PageHandler = Callable[[Visit], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class PageRoute:
    method: str
    path: str  # under MOUNT
    handler: PageHandler
    need: Permission | None = None  # beyond being signed in


def build_panel(
    door: Door, panel: Panel, routes: tuple[PageRoute, ...], open_routes: tuple[web.RouteDef, ...]
) -> web.Application:
    """The sub-application: ``routes`` behind the guard, ``open_routes`` (sign-in) and static files
    without it."""
    app = web.Application(middlewares=[_error_pages])
    app[DOOR] = door
    app[PANEL] = panel
    for route in routes:
        app.router.add_route(route.method, route.path, guarded(route))
    app.add_routes(open_routes)
    app.router.add_static("/static", STATIC, name="static", append_version=True)
    return app


def guarded(route: PageRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of a page: a live session or the sign-in page; on a POST the session's CSRF
    token or 403; the route's permission or 403; then the page."""

    async def handle(request: web.Request) -> web.StreamResponse:
        signed = await signed_in(request)
        if signed is None:
            raise web.HTTPSeeOther(
                f"{MOUNT}/login?ended=1" if COOKIE in request.cookies else f"{MOUNT}/login"
            )
        request[SIGNED] = signed
        form: dict[str, str] = {}
        repeated: dict[str, tuple[str, ...]] = {}
        if request.method == "POST":
            form, repeated = await _posted(request)
            if not csrf_ok(signed.record.csrf, form.get(FIELD) or request.headers.get(HEADER)):
                raise ServiceError(
                    ErrorCode.FORBIDDEN,
                    "this form is stale or was not sent by the panel: reload the page and try again",
                )
        if route.need is not None and not signed.actor.may(route.need):
            raise ServiceError(
                ErrorCode.FORBIDDEN, f"{signed.actor.name} may not open this page ({route.need.value} needed)"
            )
        return await route.handler(Visit(request, signed, form, repeated))

    handle.__name__ = route.handler.__name__
    return handle


async def _posted(request: web.Request) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """A POST's text fields: the last value of each name, and every value of each (files ignored)."""
    posted = await request.post()
    repeated: dict[str, tuple[str, ...]] = {}
    for name, value in posted.items():
        if isinstance(value, str):
            repeated[name] = (*repeated.get(name, ()), value)
    return {name: values[-1] for name, values in repeated.items()}, repeated


async def signed_in(request: web.Request) -> Signed | None:
    """The request's live session (now marked used), or None."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    return await request.app[PANEL].sessions.resume(session_id)


def is_tls(request: web.Request, trusted: tuple[Network, ...]) -> bool:
    """Whether the browser reached us over TLS: directly, or through a trusted proxy that says so."""
    if request.secure:
        return True
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return forwarded == "https" and in_networks(request.remote or "", trusted)


@web.middleware
async def _error_pages(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A refusal or failure as a page a person can read (the API's JSON shape is for programs)."""
    try:
        return await handler(request)
    except ServiceError as error:
        return _error_page(request, STATUS[error.code], error.message)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _error_page(request, error.status, error.reason)
    except RedisError:
        return _error_page(request, 503, "the schedule (Redis) cannot be reached now: try again in a moment")
    except Exception:
        log.exception("panel request failed", extra={"method": request.method, "route": route_of(request)})
        return _error_page(request, 500, "the daemon failed to answer this page; see its log")


_TITLES = {401: "Sign in first", 403: "Not allowed", 404: "Not found", 409: "Not now"}


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    title = _TITLES.get(status, "Something is not right")
    return page(request, "error.html", status=status, title=title, message=message)
