"""Asterisk cdr tables for the ``calls`` tests, in the CEL tests' databases (``cel_databases``): the
classic schema (``calldate``, the lab's scripts/lab/sql files, with the README's acb_* columns) as
``cdr`` and the alembic one (``start``/``answer``/``end``, no acb_* columns) as ``cdr_alembic``, each
filled with the same calls: an originating call, a callback done on its second attempt, another
agent's missed ring, an older callback and an unmarked call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cel_databases import REPO, Database

from asterisk_cb.records.cel_rows import event_time
from asterisk_cb.records.settings import Dialect

ORIGIN = "1796600000.77"
BASE = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # the calls are between 07:00 and 09:40 UTC
MARK = "scheduled-callback"

_ALEMBIC = """CREATE TABLE cdr_alembic (
  accountcode varchar(80), src varchar(80), dst varchar(80), dcontext varchar(80), clid varchar(80),
  channel varchar(80), dstchannel varchar(80), lastapp varchar(80), lastdata varchar(80),
  start {time} NOT NULL, answer {time}, {end} {time} NOT NULL, duration integer NOT NULL,
  billsec integer NOT NULL, disposition varchar(45), amaflags varchar(45), userfield varchar(256),
  uniqueid varchar(150), linkedid varchar(150), peeraccount varchar(80), sequence integer)"""
_MARIADB_ACB = """ALTER TABLE cdr ADD COLUMN acb_id varchar(64) NOT NULL DEFAULT '',
  ADD COLUMN acb_attempt varchar(10) NOT NULL DEFAULT '',
  ADD COLUMN acb_phase varchar(10) NOT NULL DEFAULT '',
  ADD COLUMN acb_leg varchar(10) NOT NULL DEFAULT '',
  ADD COLUMN acb_origin_linkedid varchar(150) NOT NULL DEFAULT ''"""


def _call(minute: int, linkedid: str, leg: dict[str, object], acb: dict[str, str]) -> dict[str, object]:
    at = BASE + timedelta(minutes=minute)
    return {"at": at, "linkedid": linkedid, "uniqueid": f"{linkedid}/{leg['channel']}", **leg, **acb}


def _leg(channel: str, dstchannel: str, lastapp: str, disposition: str, billsec: int) -> dict[str, object]:
    return {"channel": channel, "dstchannel": dstchannel, "lastapp": lastapp, "disposition": disposition,
            "billsec": billsec, "src": "+4930555", "dst": "+4930555", "userfield": ""}  # fmt: skip


def _agent(device: str, disposition: str, billsec: int) -> dict[str, object]:
    leg = _leg(f"{device}-0000001a", "Local/200@callback-outbound-00a1;1", "Stasis", disposition, billsec)
    return leg | {"dst": "s", "userfield": MARK}


def _contact(disposition: str, billsec: int) -> dict[str, object]:
    leg = _leg("Local/200@callback-outbound-00a1;2", "PJSIP/contacts-0000001b", "Dial", disposition, billsec)
    return leg | {"userfield": MARK}


def _acb(callback: str, attempt: int, leg: str, origin: str = "") -> dict[str, str]:
    return {"acb_id": callback, "acb_attempt": str(attempt), "acb_phase": "agent", "acb_leg": leg,
            "acb_origin_linkedid": origin}  # fmt: skip


CALLS = [
    _call(-120, "acb-z1-1-agent", _agent("PJSIP/1001", "ANSWERED", 5), _acb("z1", 1, "agent")),
    _call(0, ORIGIN, _leg("PJSIP/1001-00000001", "PJSIP/trunk-00000002", "Dial", "ANSWERED", 30), {}),
    _call(10, "acb-k3-1-agent", _agent("PJSIP/1001", "ANSWERED", 9), _acb("k3", 1, "agent", ORIGIN)),
    _call(10, "acb-k3-1-agent", _contact("NO ANSWER", 0), _acb("k3", 1, "contact", ORIGIN)),
    _call(20, "acb-k3-2-agent", _agent("PJSIP/1001", "ANSWERED", 20), _acb("k3", 2, "agent", ORIGIN)),
    _call(20, "acb-k3-2-agent", _contact("ANSWERED", 12), _acb("k3", 2, "contact", ORIGIN)),
    _call(30, "acb-m7-1-agent", _agent("PJSIP/1002", "BUSY", 0), _acb("m7", 1, "agent")),
    _call(40, "1796600100.5", _leg("PJSIP/1003-00000009", "", "Playback", "ANSWERED", 3), {}),
]
# The rows `calls` prints for 08:00-10:00 UTC: (callback, agent, contact, attempt, leg, outcome, billsec).
IN_SPAN = [
    ("k3", "1001", "+4930555", "1", "agent", "ANSWERED", 9),
    ("k3", "1001", "+4930555", "1", "contact", "NO ANSWER", 0),
    ("k3", "1001", "+4930555", "2", "agent", "ANSWERED", 20),
    ("k3", "1001", "+4930555", "2", "contact", "ANSWERED", 12),
    ("m7", "1002", "+4930555", "1", "agent", "BUSY", 0),
]


async def create_tables(database: Database, calls: Sequence[dict[str, object]] = CALLS) -> None:
    """``cdr`` (classic, acb_* columns) and ``cdr_alembic`` in the test database, filled with ``calls``
    (``_call``'s rows: ``at`` and the columns), the least-rights user allowed to read them."""
    assert database.admin.dsn is not None and database.site.dsn is not None
    mysql = database.admin.dsn.dialect is Dialect.MYSQL
    user = database.site.dsn.user + ("@'127.0.0.1'" if mysql else "")
    if mysql:
        for statement in (REPO / "scripts/lab/sql/cdr_cel_mysql.sql").read_text().split(";")[:1]:
            await database.query(statement)
        await database.query(_MARIADB_ACB)
    await database.query(
        _ALEMBIC.format(time="datetime" if mysql else "timestamp", end="`end`" if mysql else '"end"')
    )
    for row in calls:
        await _insert(database, "cdr", row, "calldate", mysql)
        plain = {key: value for key, value in row.items() if not key.startswith("acb_")}
        await _insert(database, "cdr_alembic", plain | {"end": row["at"]}, "start", mysql)
    for table in ("cdr", "cdr_alembic", "cel"):
        await database.query(f"GRANT SELECT ON {table} TO {user}")


async def _insert(database: Database, table: str, row: dict[str, object], time: str, mysql: bool) -> None:
    values = dict(row)
    at = values.pop("at")
    assert isinstance(at, datetime)
    naive = mysql or table == "cdr_alembic"  # PostgreSQL's classic calldate is timestamptz
    values[time] = event_time(at, usegmtime=False) if naive else at
    if "end" in values:
        values["end"] = values[time]
        values.setdefault("duration", values["billsec"])
    mark = "`" if mysql else '"'
    names = ", ".join(f"{mark}{name}{mark}" for name in values)
    places = ", ".join("%s" if mysql else f"${n}" for n in range(1, len(values) + 1))
    await database.query(f"INSERT INTO {table} ({names}) VALUES ({places})", list(values.values()))
