"""The supervisor's page (``view_all_callbacks``): every callback, filtered by agent, state, queue and
due date, ticked rows cancelled or handed to another agent at once (``manage_callbacks``, checked by the
service per callback), and rows kept current from the live events.

The page's script opens the API's event stream with a single-use ticket bound to this session (an
EventSource sends no header, and the session cookie is not an API credential), and on each event of a
listed callback fetches that row again from ``/panel/rows/<id>``: the row is rendered by the same
template as the page, through the service, so what appears live is what a reload would show.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from aiohttp import web

from asterisk_cb.core.inputs import Edit
from asterisk_cb.core.model import State
from asterisk_cb.service import Query
from asterisk_cb.service_access import ErrorCode, Permission, ServiceError
from asterisk_cb.web.forms import Problems, asked
from asterisk_cb.web.panel import PageRoute, Visit
from asterisk_cb.web.render import page

LISTED = 200
CHANGE_WAIT_S = 5.0
_FILTERS = ("agent", "state", "queue", "date")


async def supervisor(visit: Visit) -> web.StreamResponse:
    filters = {name: visit.request.query.get(name, "").strip() for name in _FILTERS}
    return await _supervisor_page(visit, filters, [])


async def _supervisor_page(
    visit: Visit, filters: dict[str, str], results: list[tuple[str, str]]
) -> web.Response:
    query = _query(filters)
    found = await visit.door.callbacks.list_page(visit.signed.actor, query, limit=LISTED)
    return page(
        visit.request,
        "supervisor.html",
        callbacks=found.callbacks,
        more=found.next_cursor is not None,
        filters=filters,
        states=[state.value for state in State],
        results=results,
        csrf=visit.csrf,
    )


def _query(filters: dict[str, str]) -> Query:
    """The filters as the service's query; a date is a UTC day of due times."""
    state = None
    if filters["state"]:
        try:
            state = State(filters["state"])
        except ValueError:
            raise ServiceError(ErrorCode.INVALID, f"state: no state {filters['state']!r}", "state") from None
    start = None
    if filters["date"]:
        try:
            start = datetime.combine(datetime.strptime(filters["date"], "%Y-%m-%d").date(), time(), UTC)
        except ValueError:
            raise ServiceError(ErrorCode.INVALID, "date: write it as YYYY-MM-DD", "date") from None
    return Query(
        agent=filters["agent"] or None,
        state=state,
        queue=filters["queue"] or None,
        due_from=start,
        due_until=start + timedelta(days=1) if start else None,
    )


async def bulk(visit: Visit) -> web.StreamResponse:
    """Cancel the ticked callbacks, or hand them to ``agent``; each one's result listed on the page."""
    ids = list(visit.every("id"))
    action, agent = visit.form.get("action"), visit.form.get("agent", "")
    results = []
    for callback_id in ids:
        problems = Problems()
        if action == "cancel":
            done = await asked(
                visit.door.callbacks.cancel(visit.signed.actor, callback_id, CHANGE_WAIT_S), problems
            )
        else:
            edit = Edit(by=visit.signed.actor.name, agent=agent)
            done = await asked(
                visit.door.callbacks.edit(visit.signed.actor, callback_id, edit, CHANGE_WAIT_S), problems
            )
        message = next(iter(problems.by_field.values()), "") if done is None else done.outcome.value
        results.append((callback_id, message))
    filters = {name: visit.form.get(name, "") for name in _FILTERS}
    return await _supervisor_page(visit, filters, results or [("", "tick at least one callback first")])


async def row(visit: Visit) -> web.StreamResponse:
    """One callback's row as the page shows it (the live update's fetch)."""
    callback = await visit.door.callbacks.get(visit.signed.actor, visit.request.match_info["callback_id"])
    return page(visit.request, "_row.html", callback=callback)


async def ticket(visit: Visit) -> web.StreamResponse:
    """A single-use ticket for the API's live events, bound to this session (CSRF-checked POST)."""
    issued = await visit.door.tickets.issue_for_session(visit.signed.digest)
    return web.json_response({"ticket": issued}, headers={"Cache-Control": "no-store"})


ROUTES = (
    PageRoute("GET", "/supervisor", supervisor, Permission.VIEW_ALL),
    PageRoute("POST", "/supervisor", bulk, Permission.VIEW_ALL),
    PageRoute("GET", "/rows/{callback_id}", row),
    PageRoute("POST", "/ticket", ticket),
)
