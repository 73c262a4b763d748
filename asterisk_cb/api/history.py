"""``/api/v1/agents/{agent}/history`` and ``/api/v1/callbacks/{id}/cdr``: the past, from Asterisk's CDR.

The history is the second way a callback is born ("call back this caller"): each entry carries the
callbacks already requested on it, and its linkedid is what ``POST /callbacks`` takes as ``from_call``.
"""

from __future__ import annotations

from asterisk_cb.api.door import door_of
from asterisk_cb.api.models import CdrReply, CdrRowOut, HistoryCallOut, HistoryQuery, HistoryReply
from asterisk_cb.api.routing import Call, Route


async def agent_history(call: Call) -> HistoryReply:
    """An agent's calls, newest first; ``next_before`` pages to older ones (none once a page is short)."""
    query: HistoryQuery = call.query
    history = door_of(call.request).history
    entries = await history.calls(call.who, call.path["agent"], limit=query.limit, before=query.before)
    full = len(entries) == query.limit
    return HistoryReply(
        calls=[HistoryCallOut.of(entry) for entry in entries],
        next_before=entries[-1].call.started_at if full else None,
    )


async def callback_cdr(call: Call) -> CdrReply:
    """The CDR rows of a callback's calls, oldest first, as ``asterisk-cb calls --linkedid`` reads them."""
    door = door_of(call.request)
    callback = await door.callbacks.get(call.who, call.path["callback_id"])
    rows = await door.history.callback_cdr(call.who, callback)
    return CdrReply(rows=[CdrRowOut(**vars(row)) for row in rows])


ROUTES = (
    Route(
        "GET",
        "/agents/{agent}/history",
        agent_history,
        "An agent's recent calls from the CDR (one's own, or anyone's with view_all_callbacks)",
        HistoryReply,
        query=HistoryQuery,
        tag="history",
    ),
    Route(
        "GET",
        "/callbacks/{callback_id}/cdr",
        callback_cdr,
        "A callback's calls in Asterisk's CDR",
        CdrReply,
        tag="history",
    ),
)
