"""An agent's pages: the call history with "Schedule callback" beside each call, the scheduling form
pre-filled from that call, the agent's callbacks, and one callback's story (its attempts and its CDR
rows) where its time is moved or it is cancelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from asterisk_cb.api.callbacks import schedule
from asterisk_cb.api.models import CallbackChange, CallbackCreate
from asterisk_cb.core.model import Callback
from asterisk_cb.core.settings import Settings
from asterisk_cb.records.history import HistoryCall
from asterisk_cb.service import Query
from asterisk_cb.service_access import ErrorCode, ServiceError
from asterisk_cb.web.forms import Problems, asked, parsed
from asterisk_cb.web.hours import describe_hours
from asterisk_cb.web.panel import MOUNT, PageRoute, Visit
from asterisk_cb.web.render import page

HISTORY_PAGE = 25
MY_CALLBACKS = 200
CHANGE_WAIT_S = 5.0  # a change of a ringing callback waits this long for the daemon holding it
_PICKER = "%Y-%m-%dT%H:%M"  # <input type=datetime-local>'s value
TURNED_OFF = "Callbacks are turned off for you by the admin (setting: enabled = no)."


async def history(visit: Visit) -> web.StreamResponse:
    """The agent's calls, newest first (``?before=`` pages back); with the feature off, each Schedule
    button is disabled and says why."""
    agent = visit.signed.actor.name
    before = _moment(visit.request.query.get("before"))
    entries = await visit.door.history.calls(visit.signed.actor, agent, limit=HISTORY_PAGE, before=before)
    enabled = {
        entry.call.queue: (await _settings(visit, agent, entry.call.queue)).enabled for entry in entries
    }
    older = entries[-1].call.started_at.isoformat() if len(entries) == HISTORY_PAGE else None
    return page(
        visit.request, "history.html", entries=entries, enabled=enabled, older=older, turned_off=TURNED_OFF
    )


async def schedule_form(visit: Visit) -> web.StreamResponse:
    """The form for a call of the history (``?call=<linkedid>``), or an empty one."""
    origin = await _origin(visit, visit.request.query.get("call", ""))
    settings = await _settings(visit, visit.signed.actor.name, origin.queue if origin else None)
    values = _prefilled(origin, settings)
    return _schedule_page(visit, values, settings, origin, Problems())


async def schedule_post(visit: Visit) -> web.StreamResponse:
    """Schedule through the API's own path; on a refusal the form again, the message beside its field."""
    form, problems = visit.form, Problems()
    fields = ("from_call", "contact_number", "contact_name", "due_at", "timezone", "note")
    body = parsed(CallbackCreate, {name: form.get(name, "") for name in fields}, problems)
    created = await asked(schedule(visit.door, visit.signed.actor, body, None), problems) if body else None
    if created is not None:
        raise web.HTTPSeeOther(f"{MOUNT}/callbacks?scheduled={created.callback.id}")
    origin = await _origin(visit, form.get("from_call", ""))
    settings = await _settings(visit, visit.signed.actor.name, origin.queue if origin else None)
    return _schedule_page(
        visit, {name: form.get(name, "") for name in fields}, settings, origin, problems, status=422
    )


async def _origin(visit: Visit, linkedid: str) -> HistoryCall | None:
    """The call of the agent's own history a callback is scheduled from (none: a blank form)."""
    if not linkedid:
        return None
    return (await visit.door.history.call(visit.signed.actor, visit.signed.actor.name, linkedid)).call


def _schedule_page(
    visit: Visit,
    values: dict[str, str],
    settings: Settings,
    origin: HistoryCall | None,
    problems: Problems,
    *,
    status: int = 200,
) -> web.Response:
    chosen = values.get("timezone", "")
    zone = ZoneInfo(chosen if _is_zone(chosen) else settings.default_timezone)
    now = datetime.now(UTC).astimezone(zone)
    limits = {"min": now.strftime(_PICKER), "max": (now + settings.horizon).strftime(_PICKER)}
    return page(
        visit.request,
        "schedule.html",
        status=status,
        values=values,
        origin=origin,
        limits=limits,
        horizon_days=settings.horizon / timedelta(days=1),
        calling_hours=describe_hours(settings.calling_hours),
        enabled=settings.enabled,
        turned_off=TURNED_OFF,
        problems=problems,
        csrf=visit.csrf,
    )


def _prefilled(origin: HistoryCall | None, settings: Settings) -> dict[str, str]:
    """An hour from now, or the calling hours' next opening after it, in the contact's zone (the
    settings' default zone); the call's contact."""
    zone = ZoneInfo(settings.default_timezone)
    soon = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    due = settings.calling_hours.next_opening(soon, zone).astimezone(zone)
    return {
        "from_call": origin.linkedid if origin else "",
        "contact_number": origin.contact_number if origin else "",
        "contact_name": (origin.contact_name or "") if origin else "",
        "due_at": due.strftime(_PICKER),
        "timezone": settings.default_timezone,
        "note": "",
    }


async def my_callbacks(visit: Visit) -> web.StreamResponse:
    """The agent's callbacks: upcoming (not finished) first by due time, then the finished ones."""
    actor = visit.signed.actor
    found = await visit.door.callbacks.list_page(actor, Query(agent=actor.name), limit=MY_CALLBACKS)
    upcoming = [callback for callback in found.callbacks if not callback.state.is_finished]
    past = sorted(
        (callback for callback in found.callbacks if callback.state.is_finished),
        key=lambda callback: callback.finished_at or callback.due_at,
        reverse=True,
    )
    scheduled = visit.request.query.get("scheduled")
    return page(
        visit.request, "callbacks.html", upcoming=upcoming, past=past, scheduled=scheduled, csrf=visit.csrf
    )


async def story(visit: Visit) -> web.StreamResponse:
    callback = await visit.door.callbacks.get(visit.signed.actor, visit.request.match_info["callback_id"])
    return await _story_page(visit, callback, Problems())


async def _story_page(
    visit: Visit, callback: Callback, problems: Problems, status: int = 200
) -> web.Response:
    """The callback, its attempts, and its CDR rows (or why they cannot be read now)."""
    rows, rows_problem = [], None
    try:
        rows = await visit.door.history.callback_cdr(visit.signed.actor, callback)
    except ServiceError as error:
        if error.code is not ErrorCode.UNAVAILABLE:
            raise
        rows_problem = error.message
    due_local = callback.due_at.astimezone(ZoneInfo(callback.timezone)).strftime(_PICKER)
    return page(
        visit.request,
        "story.html",
        status=status,
        callback=callback,
        rows=rows,
        rows_problem=rows_problem,
        due_local=due_local,
        problems=problems,
        csrf=visit.csrf,
    )


async def reschedule(visit: Visit) -> web.StreamResponse:
    """Move the due time (read in the contact's zone); the story again with the refusal beside it."""
    callback_id, problems = visit.request.match_info["callback_id"], Problems()
    callback = await visit.door.callbacks.get(visit.signed.actor, callback_id)
    values = {"due_at": visit.form.get("due_at", ""), "timezone": callback.timezone}
    body = parsed(CallbackChange, values, problems)
    if body is not None and body.due_at is None:
        problems.by_field["due_at"] = "choose the new time"
    elif body is not None:
        call = visit.door.callbacks.reschedule(
            visit.signed.actor, callback_id, body.due_at, CHANGE_WAIT_S, timezone=body.timezone
        )
        if await asked(call, problems) is not None:
            raise web.HTTPSeeOther(f"{MOUNT}/callbacks/{callback_id}")
    return await _story_page(visit, callback, problems, status=422)


async def cancel(visit: Visit) -> web.StreamResponse:
    callback_id, problems = visit.request.match_info["callback_id"], Problems()
    call = visit.door.callbacks.cancel(visit.signed.actor, callback_id, CHANGE_WAIT_S)
    if await asked(call, problems) is not None:
        raise web.HTTPSeeOther(f"{MOUNT}/callbacks/{callback_id}")
    callback = await visit.door.callbacks.get(visit.signed.actor, callback_id)
    return await _story_page(visit, callback, problems, status=409)


async def _settings(visit: Visit, agent: str, queue: str | None) -> Settings:
    """The settings a callback of ``agent`` from ``queue`` would run with (the switch, the horizon)."""
    return await visit.door.settings().effective(agent, queue)


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ServiceError(ErrorCode.INVALID, "before: not an ISO 8601 time", "before") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError):
        return False
    return True


ROUTES = (
    PageRoute("GET", "/history", history),
    PageRoute("GET", "/schedule", schedule_form),
    PageRoute("POST", "/schedule", schedule_post),
    PageRoute("GET", "/callbacks", my_callbacks),
    PageRoute("GET", "/callbacks/{callback_id}", story),
    PageRoute("POST", "/callbacks/{callback_id}/reschedule", reschedule),
    PageRoute("POST", "/callbacks/{callback_id}/cancel", cancel),
)
