"""Pages of a callback listing, for faces that cannot show everything at once (the API, the panel).

The cursor is opaque to the caller but names the last (due time, id) a page showed, in microseconds as
stored: the next page starts strictly after that key, so a callback added or moved meanwhile never
shifts the pages that follow (it shows up on a later page or not at all, never twice).
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from asterisk_cb.core.codec import time_from_text, time_to_text
from asterisk_cb.core.model import Callback
from asterisk_cb.service_access import ErrorCode, ServiceError
from asterisk_cb.store.records import OrderKey

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page:
    """One page of a listing; ``next_cursor`` is None on the last page."""

    callbacks: list[Callback]
    next_cursor: str | None


def order_key(callback: Callback) -> OrderKey:
    """Listings run by due time, then id (two callbacks due at the same instant keep one order)."""
    return (callback.due_at, callback.id)


def page_of(ordered: Sequence[Callback], limit: int, cursor: str | None) -> Page:
    """The ``limit`` callbacks after ``cursor`` (from the start without one) of a listing in order."""
    check_limit(limit)
    start = 0 if cursor is None else bisect.bisect_right(ordered, decode_cursor(cursor), key=order_key)
    shown = list(ordered[start : start + limit])
    more = start + limit < len(ordered)
    return Page(shown, encode_cursor(order_key(shown[-1])) if more else None)


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ServiceError(ErrorCode.INVALID, f"limit: {limit} is not between 1 and {MAX_LIMIT}", "limit")


def encode_cursor(key: OrderKey) -> str:
    due_at, callback_id = key
    text = f"{time_to_text(due_at)}:{callback_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> OrderKey:
    """The key a cursor names; anything ``encode_cursor`` did not make is refused (INVALID, ``cursor``)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        micros, _, callback_id = text.partition(":")
        if not (micros.isascii() and micros.isdigit() and callback_id):
            raise ValueError(text)
        return (time_from_text(micros), callback_id)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as error:
        raise ServiceError(
            ErrorCode.INVALID, f"cursor: {cursor!r} is not a cursor this listing gave", "cursor"
        ) from error
