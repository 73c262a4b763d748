"""Sign in (an agent id or ``[users]`` name with its password, or an API token), sign out, and the
first page after it.

Failed sign-ins count with the API's failed authentications of the same client address (one limit:
a guesser gains nothing by switching door). Neither the password nor the token is ever logged or put
in a URL; the form posts them, and the reply never says which part was wrong.
"""

from __future__ import annotations

import logging

from aiohttp import web

from asterisk_cb.api.auth import client_address
from asterisk_cb.service_access import Permission
from asterisk_cb.web.panel import COOKIE, MOUNT, PANEL, PageRoute, Visit, is_tls, signed_in
from asterisk_cb.web.render import page

log = logging.getLogger(__name__)
_MAX_FIELD = 512  # longer than any agent id, password or token


async def login_form(request: web.Request) -> web.StreamResponse:
    if await signed_in(request) is not None:
        raise web.HTTPSeeOther(f"{MOUNT}/")
    ended = "ended" in request.query
    return page(request, "login.html", error=None, name="", ended=ended)


async def login(request: web.Request) -> web.StreamResponse:
    panel = request.app[PANEL]
    address = client_address(request, panel.trusted_proxies)
    wait_s = panel.failures.retry_after(address)
    if wait_s > 0:
        message = f"too many failed sign-ins from this address: try again in {max(1, round(wait_s))} s"
        return page(request, "login.html", status=429, error=message, name="", ended=False)
    form = await request.post()
    name, password, token = (
        str(form.get(key, ""))[:_MAX_FIELD].strip() for key in ("name", "password", "token")
    )
    if token:
        session_id = await panel.sessions.sign_in_token(token)
    else:
        session_id = await panel.sessions.sign_in_password(name, password) if name and password else None
    if session_id is None:
        # the address only: what was typed in the name field may be a password typed one field early
        log.warning("panel sign-in refused", extra={"address": address})
        panel.failures.failed(address)
        message = "the agent id and password, or the token, are not right"
        return page(request, "login.html", status=401, error=message, name=name, ended=False)
    log.info("panel sign-in", extra={"who": "(a token)" if token else name, "address": address})
    if COOKIE in request.cookies:  # signing in again (as someone else?): the older session is over
        await panel.sessions.end(request.cookies[COOKIE])
    response = web.HTTPSeeOther(f"{MOUNT}/")
    response.set_cookie(
        COOKIE,
        session_id,
        path=MOUNT,
        max_age=round(panel.sessions.limits.max_age.total_seconds()),
        httponly=True,
        samesite="Strict",
        secure=is_tls(request, panel.trusted_proxies),
    )
    raise response


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
