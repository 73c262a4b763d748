"""The API's routes as data: each ``Route`` names its models, and one generic endpoint validates the
request with them, asks the handler and writes the reply. The OpenAPI document (``api.openapi``) reads
the same table, so what is documented is what is enforced.

A handler gets a ``Call`` (who asks, the validated query and body, the path's values) and returns a
reply model (or ``(status, model)``, or a stream it wrote itself); it holds no parsing and no
permission check of its own: those are the service's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from asterisk_cb.api.errors import ApiError, HttpCode
from asterisk_cb.service_access import Actor, ErrorCode

PREFIX = "/api/v1"


class Auth(StrEnum):
    TOKEN = "token"  # Authorization: Bearer <token>
    TICKET = "ticket"  # the live events: a Bearer token, or a single-use ticket (EventSource sends no header)
    NONE = "none"  # health, readiness, the OpenAPI document


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it. ``actor`` is None only on ``Auth.NONE`` routes."""

    request: web.Request
    actor: Actor | None
    path: Mapping[str, str]
    query: Any = None  # the route's query model, validated
    body: Any = None  # the route's body model, validated

    @property
    def who(self) -> Actor:
        assert self.actor is not None, "an authenticated route"
        return self.actor


Result = BaseModel | tuple[int, BaseModel] | web.StreamResponse
Handler = Callable[[Call], Awaitable[Result]]


@dataclass(frozen=True)
class Header:
    """A request header a route reads, as the OpenAPI document describes it."""

    name: str
    description: str
    pattern: str


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under PREFIX, aiohttp's {name} placeholders
    handler: Handler
    summary: str
    reply: type[BaseModel] | None  # None: a stream (text/event-stream)
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    also: Mapping[int, str] = field(default_factory=dict)  # other success statuses and their meaning
    refusals: tuple[int, ...] = ()  # statuses beyond the ones every route of its kind may answer
    auth: Auth = Auth.TOKEN
    tag: str = "callbacks"
    headers: tuple[Header, ...] = ()  # request headers the handler reads (documented, not validated here)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")


Authenticate = Callable[[web.Request, Auth], Awaitable[Actor | None]]


def endpoint(
    route: Route, authenticate: Authenticate
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of ``route``: authenticate, validate, ask, answer."""

    async def handle(request: web.Request) -> web.StreamResponse:
        actor = await authenticate(request, route.auth)
        query = _model(route.query, _query_of(request), "query") if route.query else None
        body = _model(route.body, await _json_of(request), "body") if route.body else None
        result = await route.handler(Call(request, actor, request.match_info, query, body))
        if isinstance(result, web.StreamResponse):
            return result
        status, reply = result if isinstance(result, tuple) else (route.status, result)
        return web.Response(text=reply.model_dump_json(), status=status, content_type="application/json")

    handle.__name__ = route.operation_id
    return handle


def _query_of(request: web.Request) -> dict[str, str]:
    """The query string as one value per name: a repeated name is refused, not silently merged."""
    values: dict[str, str] = {}
    for name, value in request.query.items():
        if name in values:
            raise ApiError(ErrorCode.INVALID, f"{name}: given more than once", name)
        values[name] = value
    return values


async def _json_of(request: web.Request) -> object:
    """The body as JSON (aiohttp refuses one over ``client_max_size`` with 413 while reading)."""
    if request.content_type != "application/json":
        raise ApiError(HttpCode.UNSUPPORTED, "send the body as application/json", "Content-Type")
    raw = await request.read()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApiError(HttpCode.MALFORMED, f"the body is not JSON: {error}", "body") from None
    except RecursionError:  # nested deeper than the parser goes: no request of ours looks like that
        raise ApiError(HttpCode.MALFORMED, "the body is nested too deeply", "body") from None


def _model(model: type[BaseModel], data: object, where: str) -> BaseModel:
    """``data`` validated by ``model``; the first problem as INVALID naming its field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        name = ".".join(str(part) for part in first["loc"]) or where
        raise ApiError(ErrorCode.INVALID, f"{name}: {first['msg']}", name) from None
