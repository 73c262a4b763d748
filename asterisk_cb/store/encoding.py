"""How a callback sits in Redis, and the JSON change every write script applies (see common.lua).

The hash holds the codec's fields less the id (the key holds it) plus store bookkeeping fields starting
with ``_`` (the codec's short names never do). The attempt history has a string of its own: inside the
hash, a value over 64 bytes would make Redis drop the compact listpack encoding and multiply its size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from asterisk_cb.core.codec import (
    FIELDS,
    CodecError,
    callback_from_fields,
    callback_to_fields,
    changed_fields,
    event_to_fields,
    request_from_text,
    time_to_ms,
    time_to_text,
)
from asterisk_cb.core.inputs import ChangeRequest
from asterisk_cb.core.model import Callback, Event, State
from asterisk_cb.keys import Keys, check_callback_id

log = logging.getLogger(__name__)

VERSION_FIELD = FIELDS["version"]
_ID_FIELD = FIELDS["id"]  # not stored: the key already holds the id (saves memory on every callback)
_HISTORY_FIELD = FIELDS["attempts"]
# The fields the scripts read a due-set score from (next_at, else due_at), see common.lua.
DUE_FIELDS = f"{FIELDS['next_at']} {FIELDS['due_at']}"
LIVE_FIELD = "_live"  # "1" while a call exists
REQUEST_FIELD = "_req"  # a person's change request waiting for the holder (codec JSON)


def change(keys: Keys, before: Callback | None, after: Callback | None, events: Sequence[Event]) -> str:
    """The JSON change the scripts apply (see common.lua): the index changes from ``before`` to
    ``after``, the events, and ``after``'s hash fields (plus bookkeeping) and history: all of them for a
    new callback, only what differs from ``before`` for a change of one."""
    old = _index_entries(keys, before) if before else frozenset()
    new = _index_entries(keys, after) if after else frozenset()
    index = [(kind + "rem", key, value) for kind, key, value in sorted(old - new)]
    index += [(kind + "add", key, value) for kind, key, value in sorted(new - old)]
    result: dict[str, Any] = {
        "index": index,
        "events": [_flat(event_to_fields(event)) for event in events],
    }
    if after is not None:
        check_callback_id(after.id)
        result.update(_whole(after) if before is None else _difference(before, after))
    return json.dumps(result, separators=(",", ":"))


def _whole(callback: Callback) -> dict[str, Any]:
    fields = callback_to_fields(callback)
    del fields[_ID_FIELD]
    history = fields.pop(_HISTORY_FIELD, "")
    if callback.state.is_live:
        fields[LIVE_FIELD] = "1"
    return {"fields": _flat(fields), "history": history}


def _difference(before: Callback, after: Callback) -> dict[str, Any]:
    """The fields that change, those that go (back to their default), and the history only when it
    changes; the stored record is ``before``'s, which the write's version check guarantees."""
    fields, dropped = changed_fields(before, after)
    result: dict[str, Any] = {}
    if _HISTORY_FIELD in fields:
        result["history"] = fields.pop(_HISTORY_FIELD)
    elif _HISTORY_FIELD in dropped:
        dropped.remove(_HISTORY_FIELD)
        result["history"] = ""
    if after.state.is_live and not before.state.is_live:
        fields[LIVE_FIELD] = "1"
    elif before.state.is_live and not after.state.is_live:
        dropped.append(LIVE_FIELD)
    return result | {"fields": _flat(fields), "drop": dropped}


def _index_entries(keys: Keys, callback: Callback) -> frozenset[tuple[str, str, str]]:
    """(s = set | h = hash of ids | z = sorted set, key, value) for each index the callback is listed
    in; a sorted set's value is "<score> <id>" (a new due time: the old entry goes, the new one comes).
    The contact index lists pending (unfinished) callbacks only: the write that finishes one drops it
    there, so a contact calling in is looked up without reading its finished past (``contact_listed``).
    The due orders list every callback by due time, in microseconds: a double holds those exactly
    (2^53 us is year 2255), and Redis orders equal scores by id, as listings do; the agent's waiting
    order, in the same unit, those scheduled to look at their busy agent again."""
    entries = {("s", keys.state_index(callback.state.value), callback.id)}
    if contact_listed(callback.state):
        entries.add(("h", keys.contact_index, keys.contact_entry(callback.contact_number)))
    ordered = f"{due_order_score(callback)} {callback.id}"
    entries.add(("z", keys.due_order, ordered))
    if callback.agent:
        entries.add(("z", keys.agent_due_order(callback.agent), ordered))
    if callback.agent and callback.waiting_for_agent and callback.state is State.SCHEDULED:
        entries.add(("z", keys.agent_waiting(callback.agent), ordered))
    entries.update(
        ("h", keys.call_index, call_id)
        for call_id in (callback.origin_uniqueid, callback.origin_linkedid)
        if call_id
    )
    return frozenset(entries)


def contact_listed(state: State) -> bool:
    """Whether a callback in ``state`` belongs in the contact index: while it is not finished."""
    return not state.is_finished


def placement(callback: Callback) -> tuple[str, str]:
    """(due ms or '', live flag) for the scripts: only a scheduled callback sits in the due set."""
    if callback.state is State.SCHEDULED:
        return str(due_ms(callback)), ""
    return "", "1" if callback.state.is_live else ""


def due_order_score(callback: Callback) -> int:
    """The callback's place in the due orders: its due time in microseconds (the codec's unit)."""
    return int(time_to_text(callback.due_at))


def due_ms(callback: Callback) -> int:
    return time_to_ms(callback.next_at or callback.due_at)


def decode(callback_id: str, stored: Mapping[str, str], history: str | None) -> Callback:
    """The callback from its hash and its history string."""
    restored = {**stored, _ID_FIELD: callback_id}
    if history:
        restored[_HISTORY_FIELD] = history
    return callback_from_fields(restored)


def request_or_none(callback_id: str, text: str) -> ChangeRequest | None:
    """A pending request this version cannot read is left unread (logged); the callback goes on."""
    try:
        return request_from_text(text)
    except CodecError as error:
        log.error("callback %s: change request cannot be read: %s", callback_id, error)
        return None


def _flat(fields: Mapping[str, str]) -> list[str]:
    return [part for item in fields.items() for part in item]


def flat_to_dict(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
