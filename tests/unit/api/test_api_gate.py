"""The API's HTTP layer on its own: the Bearer gate, the failure limit, the client address behind a
trusted proxy, request validation and the JSON error shape, over real HTTP on a local port. The
tokens here are a dictionary (the token store is tested against Redis in tests/integration/api)."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from ipaddress import ip_network

import pytest
from aiohttp import ClientSession, web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.test_utils import TestServer
from pydantic import Field

from asterisk_cb.api.app import QuietMalformed, build_app
from asterisk_cb.api.auth import FailureLimit, Gate, client_address
from asterisk_cb.api.errors import ApiError, json_errors
from asterisk_cb.api.live import EventHub
from asterisk_cb.api.models import Reply, Request
from asterisk_cb.api.routing import PREFIX, Auth, Call, Route, _json_of, endpoint
from asterisk_cb.api.settings import ApiSite
from asterisk_cb.service_access import Actor, ErrorCode, Permission, ServiceError

AGENT = Actor("1001", frozenset({Permission.SCHEDULE}))


class Tokens:
    async def authenticate(self, token: str) -> Actor | None:
        return AGENT if token == "good" else None


class Echo(Request):
    count: int = Field(ge=1, le=5)
    name: str = ""


class EchoReply(Reply):
    who: str
    count: int


async def echo(call: Call) -> EchoReply:
    return EchoReply(who=call.who.name, count=call.body.count)


async def refuse(call: Call) -> EchoReply:
    raise ServiceError(ErrorCode.NOT_FOUND, "no callback 'x'")


async def crash(call: Call) -> EchoReply:
    raise RuntimeError("secret internal detail")


async def open_door(call: Call) -> EchoReply:
    return EchoReply(who="nobody", count=0)


ROUTES = (
    Route("POST", "/echo", echo, "echo", EchoReply, body=Echo),
    Route("GET", "/refuse", refuse, "refuse", EchoReply),
    Route("GET", "/crash", crash, "crash", EchoReply),
    Route("GET", "/open", open_door, "open", EchoReply, auth=Auth.NONE),
)


def app_for(site: ApiSite) -> web.Application:
    app = web.Application(client_max_size=site.max_body, middlewares=[json_errors])
    gate = Gate(Tokens(), None, site)
    for route in ROUTES:
        app.router.add_route(route.method, PREFIX + route.path, endpoint(route, gate))
    return app


@pytest.fixture
async def base() -> AsyncIterator[str]:
    site = ApiSite(host="127.0.0.1", port=0, max_body=1024, auth_failures=3, auth_window=timedelta(minutes=1))
    server = TestServer(app_for(site), host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}{PREFIX}"
    await server.close()


async def fetch(method: str, url: str, **kwargs: object) -> tuple[int, dict[str, object], dict[str, str]]:
    async with ClientSession() as session, session.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.json(), dict(response.headers)


BEARER = {"Authorization": "Bearer good"}


async def test_a_good_token_reaches_the_handler_as_its_actor(base: str) -> None:
    status, body, _ = await fetch("POST", f"{base}/echo", json={"count": 2}, headers=BEARER)
    assert (status, body) == (200, {"who": "1001", "count": 2})


async def test_no_token_is_401_with_a_bearer_challenge(base: str) -> None:
    status, body, headers = await fetch("POST", f"{base}/echo", json={"count": 2})
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_wrong_token_is_401_and_never_echoed(base: str) -> None:
    status, body, _ = await fetch(
        "POST", f"{base}/echo", json={"count": 2}, headers={"Authorization": "Bearer s3cr3t"}
    )
    assert status == 401
    assert "s3cr3t" not in str(body)


async def test_failed_authentications_are_limited_per_address_even_for_a_good_token(base: str) -> None:
    for _ in range(3):
        status, _, _ = await fetch("GET", f"{base}/refuse", headers={"Authorization": "Bearer bad"})
        assert status == 401
    status, body, headers = await fetch("GET", f"{base}/refuse", headers=BEARER)
    assert status == 429
    assert body["error"]["code"] == "rate_limited"
    assert int(headers["Retry-After"]) >= 1


async def test_a_public_route_needs_no_token(base: str) -> None:
    status, body, _ = await fetch("GET", f"{base}/open")
    assert (status, body["who"]) == (200, "nobody")


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "field"),
    [
        ({"json": {"count": 9}}, 422, "invalid", "count"),
        ({"json": {"count": "many"}}, 422, "invalid", "count"),
        ({"json": {"count": 1, "extra": 1}}, 422, "invalid", "extra"),
        ({"json": [1, 2]}, 422, "invalid", "body"),
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "malformed", "body"),
        ({"data": b'"\xff"', "headers": {"Content-Type": "application/json"}}, 400, "malformed", "body"),
        (
            {"data": b"count=1", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
            None,
        ),
        ({"json": {"count": 1, "name": "x" * 5000}}, 413, "too_large", None),
    ],
)
async def test_bad_bodies_get_the_json_error_shape_naming_the_field(
    base: str, kwargs: dict[str, object], status: int, code: str, field: str | None
) -> None:
    headers = {**BEARER, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    got, body, _ = await fetch("POST", f"{base}/echo", headers=headers, **kwargs)
    assert got == status
    assert body["error"]["code"] == code  # type: ignore[index]
    if field is not None:
        assert body["error"]["field"] == field  # type: ignore[index]


async def test_service_refusals_unknown_routes_and_bugs_are_json_and_never_a_traceback(base: str) -> None:
    status, body, _ = await fetch("GET", f"{base}/refuse", headers=BEARER)
    assert (status, body["error"]["code"]) == (404, "not_found")  # type: ignore[index]
    status, body, _ = await fetch("GET", f"{base}/nowhere", headers=BEARER)
    assert (status, body["error"]["code"]) == (404, "no_route")  # type: ignore[index]
    status, body, headers = await fetch("DELETE", f"{base}/echo", headers=BEARER)
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")  # type: ignore[index]
    assert "POST" in headers["Allow"]
    status, body, _ = await fetch("GET", f"{base}/crash", headers=BEARER)
    assert (status, body["error"]["code"]) == (500, "internal")  # type: ignore[index]
    assert "secret internal detail" not in str(body) and "Traceback" not in str(body)


def test_failure_limit_forgets_failures_once_the_window_has_passed() -> None:
    now = [100.0]
    limit = FailureLimit(2, timedelta(seconds=10), clock=lambda: now[0])
    limit.failed("192.0.2.1")
    limit.failed("192.0.2.1")
    assert limit.retry_after("192.0.2.1") == pytest.approx(10.0)
    assert limit.retry_after("192.0.2.2") == 0.0
    now[0] += 10.5
    assert limit.retry_after("192.0.2.1") == 0.0


class FakePeer:
    """Only what ``client_address`` reads of a request."""

    def __init__(self, remote: str, forwarded: str | None = None) -> None:
        self.remote = remote
        self.headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}


PROXY = (ip_network("10.0.0.5/32"),)


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("192.0.2.7", "198.51.100.1", "192.0.2.7"),  # not our proxy: its header is anyone's
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),  # our proxy names the client
        ("10.0.0.5", "203.0.113.9, 198.51.100.1", "198.51.100.1"),  # the client's own header is not trusted
        ("10.0.0.5", "198.51.100.1, 10.0.0.5", "198.51.100.1"),  # proxies chained
        ("10.0.0.5", "not-an-address", "10.0.0.5"),
        ("10.0.0.5", None, "10.0.0.5"),
    ],
)
def test_client_address_trusts_x_forwarded_for_only_from_listed_proxies(
    remote: str, forwarded: str | None, expected: str
) -> None:
    assert client_address(FakePeer(remote, forwarded), PROXY) == expected  # type: ignore[arg-type]


def test_a_malformed_request_is_one_warning_without_what_was_sent() -> None:
    """aiohttp quotes the bad header line in its error, and that line may hold a token."""
    try:
        raise BadHttpMessage("Invalid header value char: b'Authorization: Bearer acb_1234abcd_s3cret\\x00'")
    except BadHttpMessage:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, "", 0, "Error handling request", (), sys.exc_info()
        )
    assert QuietMalformed().filter(record)
    assert (record.levelname, record.exc_info) == ("WARNING", None)
    assert "s3cret" not in record.getMessage()


async def test_cors_answers_only_the_listed_origins() -> None:
    site = ApiSite(host="127.0.0.1", port=0, cors_origins=("https://crm.example.com",))
    idle = EventHub(None)  # type: ignore[arg-type] # never run: no route here streams
    app = build_app(None, Gate(Tokens(), None, site), site, hub=idle, routes=ROUTES)  # type: ignore[arg-type]
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}{PREFIX}"
    try:
        preflight = {"Origin": "https://crm.example.com", "Access-Control-Request-Method": "POST"}
        async with ClientSession() as session, session.options(f"{base}/echo", headers=preflight) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "https://crm.example.com"
            assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
        _, _, headers = await fetch(
            "POST", f"{base}/echo", json={"count": 1}, headers={**BEARER, "Origin": "https://crm.example.com"}
        )
        assert headers["Access-Control-Allow-Origin"] == "https://crm.example.com"
        _, _, headers = await fetch(
            "POST", f"{base}/echo", json={"count": 1}, headers={**BEARER, "Origin": "https://evil.example"}
        )
        assert "Access-Control-Allow-Origin" not in headers
    finally:
        await server.close()


class Sent:
    """Only what ``_json_of`` reads of a request: its content type and body."""

    content_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def read(self) -> bytes:
        return self.body


async def test_a_body_nested_past_the_parser_is_malformed_not_a_crash() -> None:
    with pytest.raises(ApiError) as refused:
        await _json_of(Sent(b"[" * 100_000 + b"]" * 100_000))  # type: ignore[arg-type]
    assert (refused.value.code, refused.value.field) == ("malformed", "body")
