"""The flat encodings round-trip exactly and refuse what they cannot decode."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from core_strategies import aware_times, callbacks, change_requests, events
from hypothesis import given

from asterisk_cb.core.codec import (
    FIELDS,
    CodecError,
    callback_from_fields,
    callback_to_fields,
    changed_fields,
    event_from_fields,
    event_to_fields,
    request_from_text,
    request_to_text,
    time_from_text,
    time_to_ms,
    time_to_text,
)
from asterisk_cb.core.inputs import ChangeRequest
from asterisk_cb.core.model import Callback, Event, EventKind


@given(callbacks)
def test_callback_round_trip(callback: Callback) -> None:
    assert callback_from_fields(callback_to_fields(callback)) == callback


@given(callbacks)
def test_callback_round_trip_from_bytes_as_redis_returns_them(callback: Callback) -> None:
    as_bytes = {key.encode(): value.encode() for key, value in callback_to_fields(callback).items()}
    assert callback_from_fields(as_bytes) == callback


@given(callbacks)
def test_only_known_fields_are_written_and_all_are_strings(callback: Callback) -> None:
    encoded = callback_to_fields(callback)
    assert set(encoded) <= set(FIELDS.values())
    assert all(isinstance(value, str) for value in encoded.values())
    assert {"id", "num", "agent", "due", "st", "ph", "v"} <= set(encoded)


@given(callbacks, callbacks)
def test_the_changed_fields_turn_one_record_into_the_other(before: Callback, after: Callback) -> None:
    """A write sends only these; applied to ``before``'s stored fields they give ``after``'s exactly."""
    changed, dropped = changed_fields(before, after)
    stored = callback_to_fields(before)
    assert set(dropped) <= set(stored) and not set(dropped) & set(changed)
    assert {key: value for key, value in stored.items() if key not in dropped} | changed == (
        callback_to_fields(after)
    )


@given(callbacks)
def test_an_unchanged_callback_changes_no_field(callback: Callback) -> None:
    assert changed_fields(callback, callback) == ({}, [])


@given(events)
def test_event_round_trip(event: Event) -> None:
    assert event_from_fields(event_to_fields(event)) == event


@given(aware_times)
def test_times_are_exact_and_utc(moment: datetime) -> None:
    decoded = time_from_text(time_to_text(moment))
    # Compared in UTC: Python never calls times in a repeated (DST fold) hour equal across zones.
    assert decoded == moment.astimezone(UTC)
    assert decoded.tzinfo is UTC


def test_milliseconds_score() -> None:
    assert time_to_ms(datetime(1970, 1, 1, 0, 0, 1, 500, tzinfo=UTC)) == 1000


def test_naive_time_refused() -> None:
    with pytest.raises(CodecError, match="naive"):
        time_to_text(datetime(2026, 1, 1))


def test_reserved_event_attribute_refused() -> None:
    event = Event("cb1", EventKind.CREATED, datetime(2026, 1, 1, tzinfo=UTC), 1, {"kind": "x"})
    with pytest.raises(CodecError, match="reserved"):
        event_to_fields(event)


def test_bad_field_names_the_field() -> None:
    with pytest.raises(CodecError, match="'st'"):
        callback_from_fields(
            {"id": "a", "num": "1", "agent": "1001", "due": "0", "st": "nope", "ph": "agent"}
        )


def test_missing_required_field_refused() -> None:
    with pytest.raises(CodecError, match="incomplete"):
        callback_from_fields({"id": "a", "num": "1"})


def test_bad_event_refused() -> None:
    with pytest.raises(CodecError):
        event_from_fields({"cb": "a", "kind": "no-such-kind", "at": "0", "v": "1"})


@given(change_requests)
def test_change_request_round_trip(request: ChangeRequest) -> None:
    assert request_from_text(request_to_text(request)) == request


@pytest.mark.parametrize(
    "text",
    ['{"id": "r1", "kind": "delete", "by": "x"}', '{"kind": "cancel", "by": "x"}', "not json", "[]"],
)
def test_bad_change_request_refused(text: str) -> None:
    with pytest.raises(CodecError, match="bad change request"):
        request_from_text(text)
