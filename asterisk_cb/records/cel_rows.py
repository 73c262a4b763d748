"""A lifecycle event as a row of Asterisk's standard ``cel`` table, shaped like a USER_DEFINED row.

Pure: no IO. The writer hands each event with what the callback record says (``CallbackFacts``) and
gets the values of one row back; which column holds which value is documented in the README ("CEL:
the callback's life in the cel table"). In short: ``eventtype`` is ``CALLBACK_<KIND>`` (as Asterisk
stores a user event with ``show_user_defined = no``), ``linkedid`` the originating call's linkedid so
one query on it tells the whole story, ``uniqueid`` the attempt's first channel (the linkedid of the
callback's own calls: the CDR rows of that attempt), ``extra`` compact JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from asterisk_cb.core.model import ARI_ID_PREFIX, Callback, Event, EventKind, LegRole, Phase

APPNAME = "asterisk-cb"  # who wrote the row (Asterisk writes the application that ran)
# CREATED reads as what happened to the contact's request; every other kind keeps its own name.
_EVENTTYPE_NAMES = {EventKind.CREATED: "SCHEDULED"}
# Attributes that are whole numbers: written as JSON numbers, so a report can sum and compare them.
_NUMBERS = frozenset({"cause", "sip", "made", "missed", "talk_s"})


def eventtype(kind: EventKind) -> str:
    """``CALLBACK_SCHEDULED``, ``CALLBACK_ATTEMPT_FAILED``...: 30 characters at most (cel's column)."""
    return "CALLBACK_" + _EVENTTYPE_NAMES.get(kind, kind.value.upper())


@dataclass(frozen=True)
class CelRow:
    """The values of one cel row; every other standard column is written empty (0 for amaflags)."""

    eventtype: str
    eventtime: datetime  # naive: local or UTC time as ``usegmtime`` says, as cel_pgsql writes it
    cid_name: str
    cid_num: str
    uniqueid: str
    linkedid: str
    extra: str
    appname: str = APPNAME


def fallback_linkedid(callback_id: str) -> str:
    """The linkedid of a callback with no originating call (scheduled from the CLI or the API):
    ``acb-<callback id>``, the prefix of its own calls' ids, so ``linkedid LIKE 'acb-<id>-%'`` finds
    them too."""
    return f"{ARI_ID_PREFIX}{callback_id}"


def cel_row(event: Event, callback: Callback | None, usegmtime: bool) -> CelRow:
    """The row for ``event``; ``callback`` is the record as it stands now (None once purged: the row
    then carries the fallback linkedid and no caller ID)."""
    linkedid = (callback and callback.origin_linkedid) or fallback_linkedid(event.callback_id)
    return CelRow(
        eventtype=eventtype(event.kind),
        eventtime=event_time(event.at, usegmtime),
        cid_name=callback.contact_name if callback else "",
        cid_num=callback.contact_number if callback else "",
        uniqueid=_uniqueid(event, callback) or linkedid,
        linkedid=linkedid,
        extra=extra_json(event, callback),
    )


def event_time(at: datetime, usegmtime: bool) -> datetime:
    """``at`` without a zone: UTC with ``usegmtime``, else this host's local time, exactly what
    cel_pgsql and cel_odbc write, so our rows and Asterisk's sort together by eventtime."""
    moment = at.astimezone(UTC) if usegmtime else at.astimezone()
    return moment.replace(tzinfo=None)


def _uniqueid(event: Event, callback: Callback | None) -> str:
    """The event's attempt's first channel (agent leg, or contact leg in the queue phase): the
    linkedid of that attempt's CDR rows. Else the originating call's channel."""
    attempt_id = event.attributes.get("attempt")
    attempt = next((a for a in callback.attempts if a.id == attempt_id), None) if callback else None
    if attempt is None:
        return (callback.origin_uniqueid or "") if callback else ""
    leg = attempt.leg(LegRole.AGENT if attempt.phase is Phase.AGENT else LegRole.CONTACT)
    return (leg.channel_id or "") if leg else ""


def extra_json(event: Event, callback: Callback | None) -> str:
    """``{"callback":..,"attempt":2,"agent":..,<the event's attributes>}``, compact, keys in a fixed
    order: the attempt as its number, the hangup cause and other counts as numbers."""
    values: dict[str, object] = {"callback": event.callback_id}
    attempt = event.attributes.get("attempt", "")
    if attempt.startswith(f"{event.callback_id}-"):
        values["attempt"] = _number(attempt.rpartition("-")[2])
    agent = event.attributes.get("agent") or (callback.agent if callback else None)
    if agent:
        values["agent"] = agent
    for key, text in sorted(event.attributes.items()):
        if key not in ("attempt", "agent"):
            values[key] = _number(text) if key in _NUMBERS else text
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def _number(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text
