"""The call history's pure parts: caller-ID parsing, devices from channels, direction, the SQL per
dialect (devices escaped and bound), and rows grouped into calls."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from asterisk_cb.core.cdr_marks import CdrMark, MarkField
from asterisk_cb.records.cdr_sql import CdrShape
from asterisk_cb.records.history import (
    Direction,
    HistoryCall,
    Reading,
    aware,
    calls_query,
    device_of,
    direction,
    history_calls,
    like_device,
    parse_clid,
    rows_query,
)
from asterisk_cb.records.settings import Dialect

CLASSIC = CdrShape("calldate", zoned=True, acb_columns=frozenset({"acb_id"}))
ALEMBIC = CdrShape("start", zoned=False)
AT = datetime(2026, 12, 7, 14, 41, 28, tzinfo=UTC)
MINE = frozenset({"PJSIP/1001"})
AGENTS = frozenset({"PJSIP/1001", "PJSIP/1002", "PJSIP/1003"})
READING = Reading(MINE, AGENTS, CdrMark())


@pytest.mark.parametrize(
    ("clid", "expected"),
    [
        ('"" <4930555123>', (None, "4930555123")),  # the lab's inbound rows
        ('"Agent 1002" <1002>', ("Agent 1002", "1002")),  # the lab's agent rows
        ('"Lovelace, Ada" <+4930555>', ("Lovelace, Ada", "+4930555")),
        ('"Say \\"hi\\"" <200>', ('Say "hi"', "200")),
        ("Ada <4930555>", ("Ada", "4930555")),
        ("<4930555>", (None, "4930555")),
        ("4930555", (None, "4930555")),
        ("", (None, "")),
    ],
)
def test_a_caller_id_gives_name_and_number(clid: str, expected: tuple[str | None, str]) -> None:
    assert parse_clid(clid) == expected


def test_a_channel_is_its_device_and_a_counter() -> None:
    assert device_of("PJSIP/1001-0000002a") == "PJSIP/1001"
    assert device_of("PJSIP/1002-mobile-00000001") == "PJSIP/1002-mobile"
    assert device_of("") == ""


def _row(channel: str, dstchannel: str, **columns: object) -> dict[str, object]:
    return {"channel": channel, "dstchannel": dstchannel, **columns}


@pytest.mark.parametrize(
    ("channel", "dstchannel", "expected"),
    [
        ("PJSIP/lab-caller-00000000", "PJSIP/1001-00000004", Direction.INBOUND),
        ("PJSIP/1001-00000001", "PJSIP/contacts-00000002", Direction.OUTBOUND),
        ("PJSIP/1001-00000001", "", Direction.OUTBOUND),  # nobody took it
        ("PJSIP/1001-00000001", "Local/200@callback-outbound-00a1;1", Direction.OUTBOUND),  # a callback
        ("PJSIP/1001-00000001", "PJSIP/1002-00000002", Direction.INTERNAL),
        ("PJSIP/1003-00000001", "PJSIP/1001-00000002", Direction.INTERNAL),
        ("PJSIP/10011-00000001", "PJSIP/1001-00000002", Direction.INBOUND),  # not an agent's device
    ],
)
def test_the_direction_is_the_agents_side(channel: str, dstchannel: str, expected: Direction) -> None:
    assert direction(_row(channel, dstchannel), MINE, AGENTS) is expected


def test_like_wildcards_in_a_device_are_escaped() -> None:
    assert like_device("PJSIP/1001") == "PJSIP/1001-%"
    assert like_device("PJSIP/a_b%c!d") == "PJSIP/a!_b!%c!!d-%"


def test_the_calls_query_binds_every_value_and_bounds_time_and_count() -> None:
    before = AT
    devices = ["PJSIP/1001", "PJSIP/x' OR '1'='1"]
    postgres = calls_query(Dialect.POSTGRESQL, "cdr", CLASSIC, devices, limit=50, before=before)
    assert "'1'='1" not in postgres.text and "PJSIP" not in postgres.text
    assert postgres.text.endswith('GROUP BY "linkedid" ORDER BY started DESC, "linkedid" DESC LIMIT $10')
    assert '"calldate" < $9' in postgres.text
    assert postgres.params[:2] == ("PJSIP/1001-%", "PJSIP/1001-%-%")
    assert postgres.params[-2:] == (before, 50)
    mysql = calls_query(Dialect.MYSQL, "cdr", ALEMBIC, ["PJSIP/1001"], limit=5, before=before, usegmtime=True)
    assert "`start` < %s" in mysql.text and "ESCAPE '!'" in mysql.text
    assert mysql.params[-2:] == (datetime(2026, 12, 7, 14, 41, 28), 5)  # naive UTC, as Asterisk wrote it


def test_without_before_there_is_no_time_bound() -> None:
    query = calls_query(Dialect.POSTGRESQL, "cdr", CLASSIC, ["PJSIP/1001"], limit=3)
    assert "calldate" in query.text and "<" not in query.text and query.params[-1] == 3


def test_the_rows_query_reads_the_mark_and_acb_id_when_there() -> None:
    query = rows_query(Dialect.POSTGRESQL, "cdr", CLASSIC, CdrMark(), ["a", "b"])
    assert '"userfield", "acb_id" FROM "cdr" WHERE "linkedid" IN ($1, $2)' in query.text
    none = rows_query(Dialect.MYSQL, "cdr", ALEMBIC, CdrMark(MarkField.NONE), ["a"])
    assert "userfield" not in none.text and "acb_id" not in none.text


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This host's local time is Berlin's (UTC+1 in December) for the test."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("berlin")
def test_a_naive_time_is_utc_with_usegmtime_else_local() -> None:
    naive = datetime(2026, 12, 7, 14, 41, 28)
    assert aware(naive, usegmtime=True) == AT
    assert aware(naive, usegmtime=False) == AT - timedelta(hours=1)
    assert aware(AT, usegmtime=False) is AT
    local = calls_query(Dialect.MYSQL, "cdr", ALEMBIC, ["PJSIP/1001"], limit=5, before=AT)
    assert local.params[-2] == datetime(2026, 12, 7, 15, 41, 28)  # Berlin's wall clock, as Asterisk wrote it


# Rows as the lab's Asterisk 22.10 wrote them for `pbx-lab call support` (a ringall queue: one row per
# member rung, the caller's channel as `channel`) and for a callback (the agent's row to the Local
# channel with dst `s`, then the Local channel's Dial row with the number).
def _cdr(linkedid: str, channel: str, dstchannel: str, **columns: object) -> dict[str, object]:
    row: dict[str, object] = {"calltime": AT, "clid": "", "src": "", "dst": "", "lastapp": "Dial",
                              "lastdata": "", "duration": 0, "billsec": 0, "disposition": "ANSWERED",
                              "uniqueid": linkedid, "userfield": "", "acb_id": ""}  # fmt: skip
    return row | {"linkedid": linkedid, "channel": channel, "dstchannel": dstchannel, **columns}


QUEUE = {"clid": '"" <4930555123>', "src": "4930555123", "dst": "support", "lastapp": "Queue",
         "lastdata": "support,,,,300,,acb-queue-member"}  # fmt: skip


def test_rows_become_one_call_each_in_the_first_querys_order() -> None:
    rows = [
        _cdr("q.0", "PJSIP/lab-caller-00000000", "PJSIP/1001-00000004", **QUEUE, disposition="NO ANSWER"),
        _cdr("q.0", "PJSIP/lab-caller-00000000", "PJSIP/1003-00000003", **QUEUE, duration=9, billsec=8),
        _cdr("q.0", "PJSIP/lab-caller-00000000", "PJSIP/1001-00000006", **QUEUE, duration=5, billsec=4),
        _cdr("acb-k3-1-agent", "PJSIP/1001-0000001a", "Local/4930777@callback-outbound-00a1;1", dst="s",
             lastapp="Stasis", userfield="scheduled-callback", duration=20, billsec=18,
             uniqueid="acb-k3-1-agent"),
        _cdr("acb-k3-1-agent", "Local/4930777@callback-outbound-00a1;2", "PJSIP/contacts-0000001b",
             dst="4930777", userfield="scheduled-callback", billsec=12),
    ]  # fmt: skip
    started = [("acb-k3-1-agent", AT + timedelta(minutes=5)), ("q.0", AT), ("gone", AT)]
    calls = history_calls(started, rows, READING)
    assert calls == [
        HistoryCall("acb-k3-1-agent", "acb-k3-1-agent", AT + timedelta(minutes=5), Direction.OUTBOUND,
                    "4930777", None, 20, 18, "ANSWERED", None, is_callback=True),
        HistoryCall("q.0", "q.0", AT, Direction.INBOUND, "4930555123", None, 5, 4, "ANSWERED", "support",
                    is_callback=False),
    ]  # fmt: skip


def test_a_missed_queue_call_is_no_answer_and_the_name_comes_from_the_caller_id() -> None:
    named = QUEUE | {"clid": '"Ada" <49301>'}
    rows = [_cdr("q.1", "PJSIP/lab-caller-00000000", "PJSIP/1001-00000004", **named, disposition="NO ANSWER")]
    (call,) = history_calls([("q.1", AT)], rows, READING)
    assert (call.contact_name, call.contact_number, call.disposition) == ("Ada", "49301", "NO ANSWER")


def test_an_internal_call_names_the_other_phone_and_the_mark_is_found_in_a_joined_userfield() -> None:
    rows = [_cdr("i.0", "PJSIP/1002-00000001", "PJSIP/1001-00000002", clid='"Agent 1002" <1002>', src="1002",
                 dst="1001", userfield="scheduled-callback;scheduled-callback")]  # fmt: skip
    (call,) = history_calls([("i.0", AT)], rows, READING)
    assert (call.direction, call.contact_number) == (Direction.INTERNAL, "1002")
    assert call.contact_name == "Agent 1002"
    assert call.is_callback
    unmarked = Reading(MINE, AGENTS, CdrMark(MarkField.ACCOUNTCODE))
    assert not history_calls([("i.0", AT)], rows, unmarked)[0].is_callback
