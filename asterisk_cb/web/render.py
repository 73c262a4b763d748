"""Pages from jinja2 templates with autoescaping on (every value a caller or the CDR supplies is
escaped), and the few helpers templates share: times, the navigation, the CSRF field.

A time is written twice: in the viewer's zone (the page's script rewrites the UTC text of each
``<time data-viewer>`` with the browser's zone, so the server never needs to know it) and, beside it,
in the contact's zone, which is the one the calling hours and a person on the phone speak of.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from markupsafe import Markup

from asterisk_cb.service_access import Permission
from asterisk_cb.web.csrf import FIELD

SIGNED: web.RequestKey[Any] = web.RequestKey("signed")  # the guard's ``Signed``, for the navigation

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("asterisk_cb.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def at(moment: datetime | None, zone: str | None = None) -> Markup:
    """``moment`` for the viewer (rewritten by the page's script) and, with ``zone``, for the contact."""
    if moment is None:
        return Markup("&ndash;")
    utc = moment.astimezone(UTC)
    viewer = Markup('<time datetime="{}" data-viewer>{} UTC</time>').format(
        utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M")
    )
    if not zone:
        return viewer
    local = moment.astimezone(ZoneInfo(zone)).strftime("%a %H:%M")
    return viewer + Markup(' <span class="contact-time">({} {})</span>').format(local, zone)


def csrf_field(token: str) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, token)


_ENV.globals.update(at=at, csrf_field=csrf_field, Permission=Permission)


def page(request: web.Request, template: str, *, status: int = 200, **values: Any) -> web.Response:
    """``template`` rendered with ``values`` and the signed-in person (if any) for the navigation."""
    signed = request.get(SIGNED)
    text = _ENV.get_template(template).render(signed=signed, **values)
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"  # a page holds a CSRF token and personal data
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response
