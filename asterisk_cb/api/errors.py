"""One JSON shape for every refusal the API gives, and the HTTP status of each code.

``{"error": {"code": ..., "message": ..., "field": ..., "next_allowed": ...}}``: ``code`` is stable
(the service's ``ErrorCode`` values, plus the HTTP layer's own below) so a client branches on it, never
on the sentence; ``field`` names the input at fault (a body field, a query parameter, a header). A
client never sees a traceback: anything unexpected is logged here and answered ``internal``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum

from aiohttp import web
from redis.exceptions import RedisError

from asterisk_cb.service_access import ErrorCode, ServiceError

log = logging.getLogger(__name__)


class HttpCode(StrEnum):
    """Codes of refusals the HTTP layer makes before the service is asked."""

    MALFORMED = "malformed"  # 400: the body is not JSON
    UNAUTHORIZED = "unauthorized"  # 401: no token, or one that is unknown, expired or revoked
    NO_ROUTE = "no_route"  # 404: no such path
    METHOD = "method_not_allowed"  # 405
    TOO_LARGE = "too_large"  # 413: the body is over [api] max_body
    UNSUPPORTED = "unsupported_media_type"  # 415: a body that is not application/json
    RATE_LIMITED = "rate_limited"  # 429: too many failed authentications from this address
    INTERNAL = "internal"  # 500: a bug; the log has the traceback


STATUS = {
    ErrorCode.INVALID: 422,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.UNAVAILABLE: 503,
    HttpCode.MALFORMED: 400,
    HttpCode.UNAUTHORIZED: 401,
    HttpCode.NO_ROUTE: 404,
    HttpCode.METHOD: 405,
    HttpCode.TOO_LARGE: 413,
    HttpCode.UNSUPPORTED: 415,
    HttpCode.RATE_LIMITED: 429,
    HttpCode.INTERNAL: 500,
}
_FROM_HTTP = {404: HttpCode.NO_ROUTE, 405: HttpCode.METHOD, 413: HttpCode.TOO_LARGE}


class ApiError(Exception):
    """A refusal of the HTTP layer itself (the service raises ``ServiceError``)."""

    def __init__(
        self,
        code: HttpCode | ErrorCode,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_response(
    code: HttpCode | ErrorCode,
    message: str,
    field: str | None = None,
    next_allowed: datetime | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, object] = {"code": code.value, "message": message, "field": field}
    if next_allowed is not None:
        body["next_allowed"] = next_allowed.isoformat()
    return web.json_response({"error": body}, status=STATUS[code], headers=headers, dumps=json.dumps)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal and failure as the JSON error shape; 500s logged with their traceback only here."""
    try:
        return await handler(request)
    except ServiceError as error:
        return error_response(error.code, error.message, error.field, error.next_allowed)
    except ApiError as error:
        return error_response(error.code, error.message, error.field, headers=error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = _FROM_HTTP.get(error.status, HttpCode.MALFORMED)
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return error_response(code, _http_message(error), headers=allow)
    except RedisError as error:
        log.warning("API request failed: Redis", extra={"route": route_of(request), "error": str(error)})
        return error_response(ErrorCode.UNAVAILABLE, "the schedule (Redis) cannot be reached now: try again")
    except Exception:
        log.exception("API request failed", extra={"method": request.method, "route": route_of(request)})
        return error_response(HttpCode.INTERNAL, "the daemon failed to answer this request; see its log")


def _http_message(error: web.HTTPException) -> str:
    if error.status == 404:
        return "no such route (see /api/v1/openapi.json)"
    if error.status == 405:
        return "method not allowed on this route"
    if error.status == 413:
        return "the request body is too large ([api] max_body)"
    return error.reason


def route_of(request: web.Request) -> str:
    """The route's template, never the path as sent (it may hold anything a client typed)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(none)"
