"""``asterisk-cb calls``, the pure parts: the cdr table's schema from its columns, the SQL per dialect
and schema, the rows read as callback calls (with and without the acb_* columns), the arguments."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from asterisk_cb.cli import main
from asterisk_cb.core import rules
from asterisk_cb.core.cdr_marks import CdrMark, MarkField
from asterisk_cb.records.cdr_calls import call_rows, device_agents, of_agent
from asterisk_cb.records.cdr_sql import (
    READ_COLUMNS,
    CallsFilter,
    CdrShape,
    calls_query,
    columns_query,
    shape_from_columns,
)
from asterisk_cb.records.settings import Dialect
from asterisk_cb.secrecy import write_private

STANDARD = dict.fromkeys((*READ_COLUMNS, "userfield"), "character varying")
SINCE = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
CLASSIC = CdrShape("calldate", zoned=True, acb_columns=frozenset({"acb_id", "acb_origin_linkedid"}))
ALEMBIC = CdrShape("start", zoned=False)


def test_the_schema_is_told_by_its_time_column() -> None:
    classic = shape_from_columns({**STANDARD, "calldate": "timestamp with time zone", "acb_id": "text"})
    alembic = shape_from_columns({**STANDARD, "start": "datetime", "answer": "datetime", "end": "datetime"})
    assert classic == CdrShape("calldate", zoned=True, acb_columns=frozenset({"acb_id"}))
    assert alembic == CdrShape("start", zoned=False)


def test_a_table_that_is_no_cdr_table_is_refused() -> None:
    with pytest.raises(ValueError, match="no calldate or start"):
        shape_from_columns(STANDARD)
    with pytest.raises(ValueError, match="no billsec"):
        shape_from_columns({**{k: v for k, v in STANDARD.items() if k != "billsec"}, "calldate": "datetime"})


def test_columns_are_looked_up_in_the_named_schema_or_the_current_one() -> None:
    assert columns_query(Dialect.POSTGRESQL, "cdr").params == ("cdr", None)
    assert columns_query(Dialect.MYSQL, "asteriskcdrdb.cdr").params == ("cdr", "asteriskcdrdb")


def test_postgresql_query_filters_on_the_mark_and_the_span() -> None:
    until = datetime(2026, 12, 2, tzinfo=UTC)
    query = calls_query(Dialect.POSTGRESQL, "cdr", CLASSIC, CdrMark(), CallsFilter(SINCE, until))
    assert query.text.startswith('SELECT "calldate" AS calltime, "src", ')
    assert (
        'WHERE "userfield" = $1 AND "calldate" >= $2 AND "calldate" < $3 ORDER BY "calldate", "sequence"'
        in (query.text)
    )
    assert query.params == ("scheduled-callback", SINCE, until)  # timestamptz: zoned times
    assert '"acb_id", "acb_origin_linkedid", "userfield"' in query.text


def test_a_naive_time_column_is_compared_with_asterisks_own_clock() -> None:
    mark = CdrMark(MarkField.ACCOUNTCODE, "cb")
    query = calls_query(Dialect.MYSQL, "cdr", ALEMBIC, mark, CallsFilter(SINCE), usegmtime=True)
    assert "WHERE `accountcode` = %s AND `start` >= %s ORDER BY `start`, `sequence`" in query.text
    assert query.params == ("cb", datetime(2026, 12, 1, 8, 0))  # UTC, as usegmtime = yes writes it


def test_one_originating_call_by_its_column_or_by_the_cel_rows() -> None:
    with_column = calls_query(Dialect.MYSQL, "cdr", CLASSIC, CdrMark(), CallsFilter(linkedid="17.4"))
    assert "WHERE (`linkedid` = %s OR (`userfield` = %s AND `acb_origin_linkedid` = %s))" in with_column.text
    assert with_column.params == ("17.4", "scheduled-callback", "17.4")  # %s: in the order they appear
    without = calls_query(Dialect.POSTGRESQL, "cdr", ALEMBIC, CdrMark(), CallsFilter(linkedid="17.4"))
    assert (
        '("linkedid" = $1 OR ("userfield" = $2 AND "linkedid" IN '
        '(SELECT uniqueid FROM "cel" WHERE eventtype LIKE $3 AND linkedid = $4)))'
    ) in without.text
    assert without.params == ("17.4", "scheduled-callback", "CALLBACK%", "17.4")


def test_without_a_mark_the_acb_id_column_tells_callback_calls() -> None:
    none = CdrMark(MarkField.NONE)
    assert (
        "WHERE \"acb_id\" <> ''" in calls_query(Dialect.POSTGRESQL, "cdr", CLASSIC, none, CallsFilter()).text
    )
    with pytest.raises(ValueError, match="no acb_id column"):
        calls_query(Dialect.POSTGRESQL, "cdr", ALEMBIC, none, CallsFilter())


def row(linkedid: str, channel: str, dstchannel: str, lastapp: str, **values: object) -> dict[str, object]:
    base = {"calltime": datetime(2026, 12, 1, 9, 0), "src": "", "dst": "", "disposition": "ANSWERED"}
    return {
        **base,
        "linkedid": linkedid,
        "channel": channel,
        "dstchannel": dstchannel,
        "lastapp": lastapp,
    } | values


ATTEMPT_1 = [
    row("acb-k3-1-agent", "PJSIP/1001-0001", "Local/200@out-1;1", "Stasis", src="+4930555", billsec=9),
    row("acb-k3-1-agent", "Local/200@out-1;2", "PJSIP/contacts-0002", "Dial", dst="+4930555", billsec=4),
]
QUEUE_ATTEMPT = [
    row("acb-k3-2-contact", "Local/200@out-2;1", "Local/failover@q-2;1", "Stasis", billsec=20),
    row("acb-k3-2-contact", "Local/failover@q-2;2", "PJSIP/1003-0005", "Queue", billsec=15),
]


def test_without_acb_columns_the_standard_columns_tell_callback_attempt_leg_agent_and_contact() -> None:
    calls = call_rows([*ATTEMPT_1, *QUEUE_ATTEMPT], device_agents({"1001": ["PJSIP/1001"]}))
    seen = [(c.callback, c.attempt, c.phase, c.leg, c.agent, c.contact, c.billsec) for c in calls]
    assert seen == [
        ("k3", "1", "agent", "agent", "1001", "+4930555", 9),
        ("k3", "1", "agent", "contact", "1001", "+4930555", 4),
        ("k3", "2", "queue", "contact", "PJSIP/1003", "-", 20),  # a member [agents] does not list
        ("k3", "2", "queue", "member", "PJSIP/1003", "-", 15),
    ]


def test_acb_columns_win_and_the_originating_call_is_told_apart() -> None:
    origin = row("17.4", "PJSIP/1001-0000", "PJSIP/trunk-0001", "Dial", acb_id="")
    marked = [{**found, "acb_id": "cb-42", "acb_attempt": "3", "acb_leg": "x"} for found in ATTEMPT_1]
    calls = call_rows([origin, *marked], {}, usegmtime=False)
    assert [(c.callback, c.attempt, c.leg, c.agent) for c in calls] == [
        ("-", "-", "origin", "-"),
        ("cb-42", "3", "x", "PJSIP/1001"),
        ("cb-42", "3", "x", "PJSIP/1001"),
    ]
    assert [c.leg for c in of_agent(calls, "1001")] == ["origin"]


def test_acb_agent_names_the_owner_whatever_phone_took_the_call() -> None:
    """A hot-desking agent's phone is no device of [agents]: only the column names the agent."""
    owned = [{**found, "acb_id": "cb-42", "acb_agent": "alice"} for found in ATTEMPT_1]
    calls = call_rows([*owned, *QUEUE_ATTEMPT], device_agents({"1001": ["PJSIP/1001"]}))
    assert [c.agent for c in calls] == ["alice", "alice", "PJSIP/1003", "PJSIP/1003"]
    assert [c.leg for c in of_agent(calls, "alice")] == ["agent", "contact"]


def test_zoned_times_are_shown_on_asterisks_clock() -> None:
    zoned = {**ATTEMPT_1[0], "calltime": datetime(2026, 12, 1, 9, 0, tzinfo=UTC)}
    assert call_rows([zoned], {}, usegmtime=True)[0].time == datetime(2026, 12, 1, 9, 0)


def test_since_takes_iso_times_and_durations_before_now() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    berlin = rules.zone("Europe/Berlin")
    for text in ("-2h", "2h", "120m"):
        assert rules.parse_moment(text, berlin, "--since", now=now) == datetime(2026, 12, 7, 10, tzinfo=UTC)
    assert rules.parse_moment("2026-12-07 12:00", berlin, "--since", now=now) == datetime(
        2026, 12, 7, 11, 0, tzinfo=UTC
    )
    with pytest.raises(rules.ValidationError, match="not a duration before now"):
        rules.parse_moment("-2x", berlin, "--since", now=now)
    with pytest.raises(rules.ValidationError, match="not an ISO 8601 time or a duration"):
        rules.parse_moment("2", berlin, "--since", now=now)


CONFIG = "[ari]\nuser=a\npassword=b\n[ami]\nuser=a\nsecret=b\n[dialing]\noutbound_context=x\n"


@pytest.mark.parametrize(
    ("records", "arguments", "message"),
    [
        ("", ["--since", "1h"], "[records] dsn is empty and no --dsn"),
        ("dsn = postgresql://u:pw@127.0.0.1:1/db\n", [], "give --since"),
        ("dsn = postgresql://u:pw@127.0.0.1:1/db\n", ["--since", "yesterday"], "--since: 'yesterday' is not"),
    ],
)
def test_bad_arguments_exit_2_with_a_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], records: str, arguments: list[str], message: str
) -> None:
    path = tmp_path / "asterisk-cb.conf"
    write_private(path, CONFIG + "[records]\n" + records)
    assert main(["--config", str(path), "calls", *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and ":pw@" not in error


def test_a_database_that_is_not_there_exits_4_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "asterisk-cb.conf"
    write_private(
        path, CONFIG + "[records]\nconnect_timeout = 1s\ndsn = postgresql://u:s3cret@127.0.0.1:1/db\n"
    )
    assert main(["--config", str(path), "calls", "--since=-1d"]) == 4
    error = capsys.readouterr().err
    assert "cannot read the cdr table: postgresql://u:(set)@127.0.0.1:1/db" in error and "s3cret" not in error
