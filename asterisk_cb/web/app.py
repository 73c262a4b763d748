"""The panel's pages in one table, mounted by the API component under ``/panel``."""

from __future__ import annotations

from aiohttp import web

from asterisk_cb.api.door import Door
from asterisk_cb.web import admin, agent, signin, supervisor
from asterisk_cb.web.panel import Panel, build_panel

PAGES = (*signin.ROUTES, *agent.ROUTES, *supervisor.ROUTES, *admin.ROUTES)


def panel_app(door: Door, panel: Panel) -> web.Application:
    return build_panel(door, panel, PAGES, signin.OPEN_ROUTES)
