"""``/api/v1/callbacks``: schedule, list, read, change and cancel callbacks, through the service.

The CLI's ``schedule``, ``list``, ``show``, ``reschedule``, ``assign`` and ``cancel`` are the same
service calls; a change of a callback whose call rings is handed to the daemon holding the call, as
from the CLI (``ChangeReply.outcome`` says which way it went).
"""

from __future__ import annotations

from aiohttp import web

from asterisk_cb.api.door import Door, door_of
from asterisk_cb.api.errors import ApiError
from asterisk_cb.api.models import (
    CallbackChange,
    CallbackCreate,
    CallbackCreated,
    CallbackDetail,
    CallbackOut,
    CallbackPage,
    CallbackQuery,
    ChangeQuery,
    ChangeReply,
)
from asterisk_cb.api.routing import Call, Header, Route
from asterisk_cb.core.inputs import Edit
from asterisk_cb.records.history import HistoryCall
from asterisk_cb.service import Change, Query, ScheduleRequest
from asterisk_cb.service_access import Actor, ErrorCode
from asterisk_cb.store import Created

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY_MAX = 200


async def list_callbacks(call: Call) -> CallbackPage:
    query: CallbackQuery = call.query
    wanted = Query(
        agent=query.agent,
        state=query.state,
        contact_number=query.number,
        origin_call=query.origin_call,
        queue=query.queue,
        due_from=query.due_from,
        due_until=query.due_until,
    )
    page = await door_of(call.request).callbacks.list_page(
        call.who, wanted, limit=query.limit, cursor=query.cursor
    )
    return CallbackPage(callbacks=[CallbackOut.of(c) for c in page.callbacks], next_cursor=page.next_cursor)


async def create_callback(call: Call) -> tuple[int, CallbackCreated]:
    """Schedule; a retry with the same ``Idempotency-Key`` (per caller) returns the first callback. With
    ``from_call``, the call of the agent's history gives the contact, the queue and the call's ids,
    and the call itself is the key when none is sent: one callback per call and caller."""
    body: CallbackCreate = call.body
    created = await schedule(door_of(call.request), call.who, body, _idempotency_key(call.request))
    reply = CallbackCreated(created=created.created, callback=CallbackDetail.of(created.callback))
    return (201 if created.created else 200), reply


async def schedule(door: Door, actor: Actor, body: CallbackCreate, key: str | None) -> Created:
    """Schedule what ``body`` asks (the web panel's form is the same body): the history's call fills
    what the body leaves out, and is the idempotency key when ``key`` is None."""
    agent = body.agent or actor.name
    origin = await door.history.call(actor, agent, body.from_call) if body.from_call else None
    request = _schedule_request(body, agent, origin.call if origin else None)
    key = key or (f"call:{body.from_call}" if body.from_call else None)
    scoped = f"{actor.name}:{key}" if key else None  # one caller's key never answers another's
    return await door.callbacks.schedule(actor, request, idempotency_key=scoped)


def _schedule_request(body: CallbackCreate, agent: str, origin: HistoryCall | None) -> ScheduleRequest:
    """The body as the service takes it; what the body leaves out comes from the history's call."""
    number = body.contact_number or (origin.contact_number if origin else None)
    if number is None:
        raise ApiError(ErrorCode.INVALID, "contact_number: required (or from_call)", "contact_number")
    return ScheduleRequest(
        contact_number=number,
        agent=agent,
        due_at=body.due_at,
        timezone=body.timezone,
        contact_name=body.contact_name or (origin.contact_name or "" if origin else ""),
        queue=body.queue or (origin.queue if origin else None),
        origin_uniqueid=body.origin_uniqueid or (origin.uniqueid if origin else None),
        origin_linkedid=body.origin_linkedid or (origin.linkedid if origin else None),
        source=body.source,
        note=body.note,
    )


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= _KEY_MAX or not key.isascii() or not key.isprintable():
        message = f"{IDEMPOTENCY_HEADER}: 1-{_KEY_MAX} printable ASCII characters"
        raise ApiError(ErrorCode.INVALID, message, IDEMPOTENCY_HEADER)
    return key


async def get_callback(call: Call) -> CallbackDetail:
    callback = await door_of(call.request).callbacks.get(call.who, call.path["callback_id"])
    return CallbackDetail.of(callback)


async def change_callback(call: Call) -> ChangeReply:
    """Move the due time, or change the details (note, contact name, agent): one kind per request, so
    a refusal never leaves half a change applied."""
    body: CallbackChange = call.body
    service = door_of(call.request).callbacks
    callback_id, wait_s = call.path["callback_id"], call.query.wait
    details = {"note": body.note, "contact_name": body.contact_name, "agent": body.agent}
    changed = {name: value for name, value in details.items() if value is not None}
    if body.due_at is not None and changed:
        message = f"due_at: change the due time in its own request, not with {', '.join(changed)}"
        raise ApiError(ErrorCode.INVALID, message, "due_at")
    if body.due_at is not None:
        change = await service.reschedule(call.who, callback_id, body.due_at, wait_s, timezone=body.timezone)
    elif changed:
        change = await service.edit(call.who, callback_id, Edit(by=call.who.name, **changed), wait_s)
    else:
        raise ApiError(
            ErrorCode.INVALID, "nothing to change: send due_at, note, contact_name or agent", "body"
        )
    return _change_reply(change)


async def cancel_callback(call: Call) -> ChangeReply:
    change = await door_of(call.request).callbacks.cancel(call.who, call.path["callback_id"], call.query.wait)
    return _change_reply(change)


def _change_reply(change: Change) -> ChangeReply:
    return ChangeReply(outcome=change.outcome.value, callback=CallbackDetail.of(change.callback))


ROUTES = (
    Route(
        "GET",
        "/callbacks",
        list_callbacks,
        "List callbacks, oldest due first",
        CallbackPage,
        query=CallbackQuery,
    ),
    Route(
        "POST",
        "/callbacks",
        create_callback,
        "Schedule a callback (Idempotency-Key header: a retry returns the first)",
        CallbackCreated,
        body=CallbackCreate,
        status=201,
        also={200: "already scheduled by an earlier request with this Idempotency-Key"},
        headers=(
            Header(
                IDEMPOTENCY_HEADER,
                "a retry with the same key (per caller, 24 h) returns the first callback",
                f"^[\\x20-\\x7e]{{1,{_KEY_MAX}}}$",
            ),
        ),
    ),
    Route("GET", "/callbacks/{callback_id}", get_callback, "A callback with every attempt", CallbackDetail),
    Route(
        "PATCH",
        "/callbacks/{callback_id}",
        change_callback,
        "Move the due time, or change note, contact name or agent",
        ChangeReply,
        body=CallbackChange,
        query=ChangeQuery,
        refusals=(409,),
    ),
    Route(
        "POST",
        "/callbacks/{callback_id}/cancel",
        cancel_callback,
        "Cancel a callback (its ringing call is hung up)",
        ChangeReply,
        query=ChangeQuery,
        refusals=(409,),
    ),
)
