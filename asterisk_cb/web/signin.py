"""Sign in (an agent id or ``[users]`` name with its password, or an API token), sign out, and the
first page after it.

Failed sign-ins count with the API's failed authentications of the same client address (one limit:
a guesser gains nothing by switching door). The sign-in form has a CSRF token of its own, before any
session exists: a random value in a short-lived cookie and in the form, which another site can make a
browser send but cannot read (a forged sign-in would sign the victim in as the forger). Neither the
password nor the token is ever logged or put in a URL; the form posts them, and the reply never says
which part was wrong.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from asterisk_cb.api.auth import client_address
from asterisk_cb.service_access import Permission
from asterisk_cb.web.csrf import FIELD, csrf_ok
from asterisk_cb.web.panel import COOKIE, MOUNT, PANEL, PageRoute, Visit, is_tls, signed_in
from asterisk_cb.web.render import page

log = logging.getLogger(__name__)
_MAX_FIELD = 512  # longer than any agent id, password or token
SIGNIN_COOKIE = "acb_signin"  # the sign-in form's CSRF token
SIGNIN_TTL = timedelta(hours=1)  # a sign-in form left open longer is sent again


async def login_form(request: web.Request) -> web.StreamResponse:
    if await signed_in(request) is not None:
        raise web.HTTPSeeOther(f"{MOUNT}/")
    return _login_page(request, ended="ended" in request.query)


def _login_page(
    request: web.Request, *, status: int = 200, error: str | None = None, name: str = "", ended: bool = False
) -> web.Response:
    """The sign-in form with a fresh CSRF token, in the form and in its cookie."""
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", status=status, error=error, name=name, ended=ended, csrf=token)
    _cookie(response, request, SIGNIN_COOKIE, token, SIGNIN_TTL)
    return response


def _cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: timedelta
) -> None:
    """A panel cookie: HttpOnly, SameSite=Strict, under /panel, Secure when the browser came over TLS."""
    response.set_cookie(
        name,
        value,
        path=MOUNT,
        max_age=round(max_age.total_seconds()),
        httponly=True,
        samesite="Strict",
        secure=is_tls(request, request.app[PANEL].trusted_proxies),
    )


async def login(request: web.Request) -> web.StreamResponse:
    panel = request.app[PANEL]
    address = client_address(request, panel.trusted_proxies)
    wait_s = panel.failures.retry_after(address)
    if wait_s > 0:
        message = f"too many failed sign-ins from this address: try again in {max(1, round(wait_s))} s"
        return _login_page(request, status=429, error=message)
    form = await request.post()
    if not csrf_ok(request.cookies.get(SIGNIN_COOKIE, ""), _field(form, FIELD)):
        return _login_page(request, status=403, error="the sign-in form was stale: sign in again")
    name, token = _field(form, "name").strip(), _field(form, "token").strip()
    password = _field(form, "password")  # as typed: spaces are part of a password
    if token:
        session_id = await panel.sessions.sign_in_token(token)
    else:
        session_id = await panel.sessions.sign_in_password(name, password) if name and password else None
    if session_id is None:
        # the address only: what was typed in the name field may be a password typed one field early
        log.warning("panel sign-in refused", extra={"address": address})
        panel.failures.failed(address)
        message = "the agent id and password, or the token, are not right"
        return _login_page(request, status=401, error=message, name=name)
    log.info("panel sign-in", extra={"who": "(a token)" if token else name, "address": address})
    if COOKIE in request.cookies:  # signing in again (as someone else?): the older session is over
        await panel.sessions.end(request.cookies[COOKIE])
    response = web.HTTPSeeOther(f"{MOUNT}/")
    _cookie(response, request, COOKIE, session_id, panel.sessions.limits.max_age)
    response.del_cookie(SIGNIN_COOKIE, path=MOUNT)
    raise response


def _field(form: MultiDictProxy[str | bytes | FileField], name: str) -> str:
    """A text field of the form, cut to a length no real value reaches; anything else is empty."""
    value = form.get(name, "")
    return value[:_MAX_FIELD] if isinstance(value, str) else ""


async def logout(visit: Visit) -> web.StreamResponse:
    await visit.request.app[PANEL].sessions.end(visit.request.cookies[COOKIE])
    response = web.HTTPSeeOther(f"{MOUNT}/login")
    response.del_cookie(COOKIE, path=MOUNT)
    raise response


async def home(visit: Visit) -> web.StreamResponse:
    """An agent's own history first; a supervisor's every callback; an admin's settings."""
    actor = visit.signed.actor
    if visit.signed.is_agent:
        target = "history"
    elif actor.may(Permission.VIEW_ALL):
        target = "supervisor"
    elif actor.may(Permission.MANAGE_SETTINGS):
        target = "admin"
    else:
        target = "callbacks"
    raise web.HTTPSeeOther(f"{MOUNT}/{target}")


OPEN_ROUTES = (web.get("/login", login_form), web.post("/login", login))
ROUTES = (PageRoute("GET", "/", home), PageRoute("POST", "/logout", logout))
