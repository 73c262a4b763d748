"""Flat string encodings of callbacks and events, for a Redis hash and a Redis stream entry.

Why this shape: a Redis hash stays in its compact listpack encoding only while it has few, short
fields, and the schedule must cost well under 1 KB per callback. So keys are short (``FIELDS`` maps
each attribute to its key: the one place they are spelled), empty values are left out, times are
integer microseconds since the Unix epoch (exact, 16 digits, sortable), and the attempt history is one
compact JSON field. Decoding accepts ``bytes`` or ``str`` keys and values, as redis-py returns either.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from asterisk_cb.core.inputs import Cancel, ChangeRequest, Edit, Reschedule
from asterisk_cb.core.model import (
    Attempt,
    Callback,
    Event,
    EventKind,
    FinishReason,
    Leg,
    LegRole,
    Outcome,
    Phase,
    Source,
    State,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Callback attribute -> hash field. Stable: stored data depends on it.
FIELDS: dict[str, str] = {
    "id": "id",
    "contact_number": "num",
    "contact_name": "name",
    "agent": "agent",
    "queue": "queue",
    "origin_uniqueid": "ouid",
    "origin_linkedid": "olid",
    "source": "src",
    "due_at": "due",
    "timezone": "tz",
    "note": "note",
    "created_by": "by",
    "created_at": "cat",
    "state": "st",
    "phase": "ph",
    "next_at": "next",
    "updated_at": "uat",
    "finished_at": "fat",
    "finish_reason": "why",
    "cancelled_by": "cby",
    "called_in_agent": "cia",
    "called_in_talk_s": "cit",
    "agent_attempts": "na",
    "queue_attempts": "nq",
    "missed_agent_rings": "nm",
    "held_seconds": "held",
    "waiting_for_agent": "wfa",
    "attempts": "hist",
    "version": "v",
}

# Event stream entry fields; attribute names may not reuse them.
EVENT_RESERVED = frozenset({"cb", "kind", "at", "v"})


class CodecError(ValueError):
    """Stored data cannot be decoded (missing field, bad value): names the field."""


def time_to_text(moment: datetime) -> str:
    """Aware datetime -> integer microseconds since the epoch, as text."""
    if moment.tzinfo is None:
        raise CodecError(f"naive datetime {moment!r}: only aware times are stored")
    return str((moment - _EPOCH) // _MICROSECOND)


def time_from_text(text: str) -> datetime:
    """Inverse of ``time_to_text``: always an aware UTC datetime."""
    return _EPOCH + int(text) * _MICROSECOND


def time_to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (a sorted-set score; Redis TIME compares in the same unit)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


# History: a JSON list of attempts with short keys and no nulls (legs likewise).
_LEG_KEYS = {
    "role": "r",
    "channel_id": "ch",
    "local_peer_id": "peer",
    "uniqueid": "uid",
    "linkedid": "lid",
    "endpoint": "ep",
}


def _history_to_json(attempts: tuple[Attempt, ...]) -> str:
    return json.dumps([_attempt_to_dict(attempt) for attempt in attempts], separators=(",", ":"))


def _attempt_to_dict(attempt: Attempt) -> dict[str, Any]:
    raw = {
        "id": attempt.id,
        "ph": attempt.phase.value,
        "t0": time_to_text(attempt.started_at),
        "t1": time_to_text(attempt.ended_at) if attempt.ended_at else None,
        "out": attempt.outcome.value if attempt.outcome else None,
        "cause": attempt.hangup_cause,
        "sip": attempt.sip_code,
        "legs": [_leg_to_dict(leg) for leg in attempt.legs],
    }
    return {key: value for key, value in raw.items() if value is not None}


def _leg_to_dict(leg: Leg) -> dict[str, str]:
    raw = {short: getattr(leg, name) for name, short in _LEG_KEYS.items()}
    raw["r"] = leg.role.value
    return {key: value for key, value in raw.items() if value is not None}


def _history_from_json(text: str) -> tuple[Attempt, ...]:
    return tuple(_attempt_from_dict(item) for item in json.loads(text))


def _attempt_from_dict(item: dict[str, Any]) -> Attempt:
    return Attempt(
        id=item["id"],
        phase=Phase(item["ph"]),
        started_at=time_from_text(item["t0"]),
        ended_at=time_from_text(item["t1"]) if "t1" in item else None,
        outcome=Outcome(item["out"]) if "out" in item else None,
        hangup_cause=item.get("cause"),
        sip_code=item.get("sip"),
        legs=tuple(_leg_from_dict(leg) for leg in item.get("legs", ())),
    )


def _leg_from_dict(item: dict[str, str]) -> Leg:
    values: dict[str, Any] = {name: item.get(short) for name, short in _LEG_KEYS.items()}
    values["role"] = LegRole(values["role"])
    return Leg(**values)


# How each non-str Callback attribute is written; a value equal to its default is left out.
_ENCODERS: dict[str, Callable[[Any], str]] = {
    "due_at": time_to_text,
    "created_at": time_to_text,
    "next_at": time_to_text,
    "updated_at": time_to_text,
    "finished_at": time_to_text,
    "source": lambda value: value.value,
    "state": lambda value: value.value,
    "phase": lambda value: value.value,
    "finish_reason": lambda value: value.value,
    "agent_attempts": str,
    "queue_attempts": str,
    "missed_agent_rings": str,
    "held_seconds": str,
    "waiting_for_agent": lambda value: "1" if value else "0",
    "called_in_talk_s": str,
    "version": str,
    "attempts": _history_to_json,
}

_DECODERS: dict[str, Callable[[str], Any]] = {
    "due_at": time_from_text,
    "created_at": time_from_text,
    "next_at": time_from_text,
    "updated_at": time_from_text,
    "finished_at": time_from_text,
    "source": Source,
    "state": State,
    "phase": Phase,
    "finish_reason": FinishReason,
    "agent_attempts": int,
    "queue_attempts": int,
    "missed_agent_rings": int,
    "held_seconds": int,
    "waiting_for_agent": lambda text: text == "1",
    "called_in_talk_s": int,
    "version": int,
    "attempts": _history_from_json,
}

# Written even when equal to the default, so store scripts and indexes can always read them.
_ALWAYS_WRITTEN = frozenset({"id", "contact_number", "agent", "due_at", "state", "phase", "version"})
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Callback)} | {"attempts": ()}


def callback_to_fields(callback: Callback) -> dict[str, str]:
    """Callback -> flat mapping of short field names to strings (only non-default values)."""
    encoded: dict[str, str] = {}
    for name, key in FIELDS.items():
        value = getattr(callback, name)
        if _written(name, value):
            encoded[key] = _ENCODERS.get(name, str)(value)
    return encoded


def changed_fields(before: Callback, after: Callback) -> tuple[dict[str, str], list[str]]:
    """What turns ``callback_to_fields(before)`` into ``callback_to_fields(after)``: the fields to set
    and the fields to drop. A transition changes a handful of ~30 attributes (unchanged ones are
    usually the very same objects), so a write encodes and sends those only."""
    encoded: dict[str, str] = {}
    dropped: list[str] = []
    for name, key in FIELDS.items():
        value = getattr(after, name)
        old = getattr(before, name)
        if value is old or value == old:
            continue
        if _written(name, value):
            encoded[key] = _ENCODERS.get(name, str)(value)
        elif _written(name, old):
            dropped.append(key)
    return encoded, dropped


def _written(name: str, value: Any) -> bool:
    """Whether ``callback_to_fields`` writes an attribute with this value (defaults are left out)."""
    return name in _ALWAYS_WRITTEN or not (value is None or value == _DEFAULTS.get(name))


def callback_from_fields(stored: Mapping[str | bytes, str | bytes]) -> Callback:
    """Inverse of ``callback_to_fields``; raises ``CodecError`` naming the bad field."""
    text = _as_text(stored)
    values: dict[str, Any] = {}
    for name, key in FIELDS.items():
        if key not in text:
            continue
        try:
            values[name] = _DECODERS.get(name, str)(text[key])
        except (ValueError, TypeError, KeyError) as error:
            raise CodecError(f"field {key!r} ({name}): cannot decode {text[key]!r}: {error}") from error
    try:
        return Callback(**values)
    except TypeError as error:
        raise CodecError(f"incomplete callback record: {error}") from error


def event_to_fields(event: Event) -> dict[str, str]:
    """Event -> stream entry fields: cb, kind, at, v, then the attributes as they are."""
    clash = EVENT_RESERVED.intersection(event.attributes)
    if clash:
        raise CodecError(f"event attribute names {sorted(clash)} are reserved")
    head = {
        "cb": event.callback_id,
        "kind": event.kind.value,
        "at": time_to_text(event.at),
        "v": str(event.version),
    }
    return head | dict(event.attributes)


def event_from_fields(stored: Mapping[str | bytes, str | bytes]) -> Event:
    """Inverse of ``event_to_fields``."""
    text = _as_text(stored)
    try:
        return Event(
            callback_id=text["cb"],
            kind=EventKind(text["kind"]),
            at=time_from_text(text["at"]),
            version=int(text["v"]),
            attributes={key: value for key, value in text.items() if key not in EVENT_RESERVED},
        )
    except (KeyError, ValueError) as error:
        raise CodecError(f"bad event entry {text!r}: {error}") from error


def _as_text(stored: Mapping[str | bytes, str | bytes]) -> dict[str, str]:
    """redis-py returns bytes unless decode_responses is set: accept both."""
    return {_decode(key): _decode(value) for key, value in stored.items()}


def _decode(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


# A change request: one JSON object, {"id": ..., "kind": "cancel" | "reschedule" | "edit", "by": ...}
# plus the change's own fields (a reschedule's due time in codec microseconds). The store's scripts
# read its "id" (cjson), so the request a commit applies is the one pending.
_CHANGE_KINDS: dict[str, type[Cancel | Reschedule | Edit]] = {
    "cancel": Cancel,
    "reschedule": Reschedule,
    "edit": Edit,
}
_CHANGE_NAMES = {kind: name for name, kind in _CHANGE_KINDS.items()}


def request_to_text(request: ChangeRequest) -> str:
    values = {key: value for key, value in asdict(request.change).items() if value is not None}
    if isinstance(request.change, Reschedule):
        values["due_at"] = time_to_text(request.change.due_at)
    head = {"id": request.id, "kind": _CHANGE_NAMES[type(request.change)]}
    return json.dumps(head | values, separators=(",", ":"))


def request_from_text(text: str) -> ChangeRequest:
    """Inverse of ``request_to_text``; raises ``CodecError``."""
    try:
        values = json.loads(text)
        request_id, kind = values.pop("id"), _CHANGE_KINDS[values.pop("kind")]
        if kind is Reschedule:
            values["due_at"] = time_from_text(values["due_at"])
        return ChangeRequest(request_id, kind(**values))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise CodecError(f"bad change request {text!r}: {error}") from error
