"""A lifecycle event as a cel row: eventtype per kind, linkedid, uniqueid, caller ID, extra, eventtime."""

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from asterisk_cb.core.model import Attempt, Callback, Event, EventKind, Leg, LegRole, Phase
from asterisk_cb.records.cel_rows import cel_row, event_time, eventtype, fallback_linkedid

AT = datetime(2026, 12, 7, 10, 30, 15, 250000, tzinfo=UTC)


def callback(**changes: object) -> Callback:
    values: dict[str, object] = dict(
        id="cb7",
        contact_number="+4930123",
        contact_name="Ada",
        agent="1001",
        due_at=AT,
        timezone="Europe/Berlin",
        created_by="agent:1001",
        created_at=AT,
        origin_uniqueid="1733.10",
        origin_linkedid="1733.9",
    )
    values.update(changes)
    return Callback(**values)  # type: ignore[arg-type]


def event(kind: EventKind, **attributes: str) -> Event:
    return Event("cb7", kind, AT, 3, attributes)


def test_every_kind_has_a_callback_eventtype_that_fits_the_column() -> None:
    names = {kind: eventtype(kind) for kind in EventKind}
    assert names[EventKind.CREATED] == "CALLBACK_SCHEDULED"
    assert names[EventKind.AGENT_UNAVAILABLE] == "CALLBACK_AGENT_UNAVAILABLE"
    assert names[EventKind.ATTEMPT_FAILED] == "CALLBACK_ATTEMPT_FAILED"
    assert names[EventKind.FAILOVER] == "CALLBACK_FAILOVER"
    assert names[EventKind.CANCELLED] == "CALLBACK_CANCELLED"
    assert names[EventKind.EXPIRED] == "CALLBACK_EXPIRED"
    assert names[EventKind.EXHAUSTED] == "CALLBACK_EXHAUSTED"
    assert names[EventKind.COMPLETED] == "CALLBACK_COMPLETED"
    assert len(set(names.values())) == len(EventKind)
    assert all(name.startswith("CALLBACK_") and len(name) <= 30 for name in names.values())


def test_the_row_carries_the_originating_calls_linkedid_and_the_contact() -> None:
    row = cel_row(event(EventKind.CREATED, agent="1001", due_at=AT.isoformat()), callback(), True)
    assert row.linkedid == "1733.9"
    assert row.uniqueid == "1733.10"  # no attempt: the originating call's channel
    assert (row.cid_num, row.cid_name) == ("+4930123", "Ada")
    assert row.eventtype == "CALLBACK_SCHEDULED"
    assert row.appname == "asterisk-cb"


def test_a_callback_without_originating_call_gets_its_own_linkedid() -> None:
    row = cel_row(
        event(EventKind.CANCELLED, reason="cancelled", by="cli:root"),
        callback(origin_linkedid=None, origin_uniqueid=None),
        True,
    )
    assert row.linkedid == fallback_linkedid("cb7") == "acb-cb7"
    assert row.uniqueid == "acb-cb7"


def test_a_purged_callback_still_gives_a_row() -> None:
    row = cel_row(event(EventKind.EXPIRED, reason="agent_wait"), None, True)
    assert (row.linkedid, row.cid_num, row.cid_name) == ("acb-cb7", "", "")


def test_an_attempts_event_names_the_attempts_first_channel() -> None:
    """The agent leg (agent phase) or the contact leg (queue phase): its attempt's CDR rows' linkedid."""
    agent_phase = Attempt(
        "cb7-1",
        Phase.AGENT,
        AT,
        (Leg(LegRole.AGENT, "acb-cb7-1-agent-2"), Leg(LegRole.CONTACT, "acb-cb7-1-contact")),
    )
    queue_phase = Attempt("cb7-2", Phase.QUEUE, AT, (Leg(LegRole.CONTACT, "acb-cb7-2-contact"),))
    record = callback(attempts=(agent_phase, queue_phase))
    assert (
        cel_row(event(EventKind.AGENT_ANSWERED, attempt="cb7-1"), record, True).uniqueid
        == "acb-cb7-1-agent-2"
    )
    assert (
        cel_row(event(EventKind.CONTACT_RINGING, attempt="cb7-2"), record, True).uniqueid
        == "acb-cb7-2-contact"
    )


def test_extra_is_compact_json_with_the_attempt_number_and_the_cause_as_numbers() -> None:
    failed = event(
        EventKind.ATTEMPT_FAILED,
        attempt="cb7-2",
        phase="agent",
        outcome="busy",
        made="2",
        cause="17",
        sip="486",
    )
    extra = cel_row(failed, callback(), True).extra
    assert " " not in extra
    assert json.loads(extra) == {
        "callback": "cb7", "attempt": 2, "agent": "1001", "cause": 17, "made": 2, "outcome": "busy",
        "phase": "agent", "sip": 486,
    }  # fmt: skip
    assert extra.startswith('{"callback":"cb7","attempt":2,"agent":"1001",')


def test_extra_says_who_cancelled_and_why() -> None:
    extra = json.loads(
        cel_row(event(EventKind.CANCELLED, reason="cancelled", by="cli:root"), callback(), True).extra
    )
    assert (extra["by"], extra["reason"]) == ("cli:root", "cancelled")


@pytest.mark.parametrize("usegmtime", [True, False])
def test_eventtime_is_naive_utc_or_local_time_like_cel_pgsql(
    usegmtime: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        written = event_time(AT, usegmtime)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert written.tzinfo is None
    expected = AT if usegmtime else AT.astimezone(timezone(timedelta(hours=-5)))
    assert written == expected.replace(tzinfo=None)
