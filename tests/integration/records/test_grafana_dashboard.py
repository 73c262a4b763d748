"""docs/grafana/asterisk-cb-callbacks.json (PostgreSQL) and asterisk-cb-callbacks-mysql.json (MariaDB/MySQL)
without Grafana (neither a Debian nor a PyPI package): every panel's query, its Grafana macros expanded
as Grafana's data source of that dialect expands them, runs on a real database of that dialect holding
the cel rows the real CEL writer wrote for four callbacks driven through the real lifecycle (and the
``calls`` tests' cdr rows), and returns the numbers those callbacks make. The cel rows are UTC (the
writer's ``usegmtime = yes``), and so is the session zone: PostgreSQL's by the database's zone, MariaDB's
as a MySQL data source with the session time zone ``+00:00`` sets it."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from cdr_tables import create_tables
from cel_databases import REPO, Database

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle as lc
from asterisk_cb.core.model import Outcome
from asterisk_cb.core.settings import Settings
from asterisk_cb.records.cel_rows import event_time
from asterisk_cb.records.connect import open_database
from asterisk_cb.records.settings import Dialect
from asterisk_cb.records.writer import GROUP, CelWriter
from asterisk_cb.store import Store
from asterisk_cb.store.claims import Claim

pytestmark = pytest.mark.lab  # the lab's Redis holds the callbacks the writer reads

DASHBOARDS = {
    Dialect.POSTGRESQL: REPO / "docs/grafana/asterisk-cb-callbacks.json",
    Dialect.MYSQL: REPO / "docs/grafana/asterisk-cb-callbacks-mysql.json",
}
PLUGINS = {Dialect.POSTGRESQL: "grafana-postgresql-datasource", Dialect.MYSQL: "mysql"}
SETTINGS = Settings(failover_queue="overflow")
T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
FROM, TO = datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
HOUR_9, HOUR_10 = (datetime(2026, 11, 26, hour, tzinfo=UTC).timestamp() for hour in (9, 10))


def expand(sql: str, dialect: Dialect) -> str:
    """Grafana's macros as its data source of ``dialect`` expands them for the range FROM..TO (Grafana's
    pkg/tsdb/grafana-postgresql-datasource/macros.go and pkg/tsdb/mysql/macros.go); none may be left."""
    if dialect is Dialect.POSTGRESQL:
        bounds = f"'{FROM:%Y-%m-%dT%H:%M:%SZ}' AND '{TO:%Y-%m-%dT%H:%M:%SZ}'"
        group = r'floor(extract(epoch from \1)/3600)*3600 AS "time"'
    else:
        bounds = f"FROM_UNIXTIME({FROM.timestamp():.0f}) AND FROM_UNIXTIME({TO.timestamp():.0f})"
        group = r'UNIX_TIMESTAMP(\1) DIV 3600 * 3600 AS "time"'
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {bounds}", sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),\s*1h\)", group, sql)
    assert "$__" not in sql, sql
    return sql


def panels(dialect: Dialect) -> dict[str, str]:
    """Each panel's query by title; the import input, every panel and query on the dialect's data source."""
    board = json.loads(DASHBOARDS[dialect].read_text())
    sources = [board["__inputs"][0]["pluginId"]] + [
        part["datasource"]["type"] for panel in board["panels"] for part in (panel, *panel["targets"])
    ]
    assert set(sources) == {PLUGINS[dialect]}, sources
    return {panel["title"]: panel["targets"][0]["rawSql"] for panel in board["panels"]}


async def play(
    store: Store, callback_id: str, due: datetime, steps: Sequence[tuple[ev.Input, datetime | None]]
) -> None:
    """A callback created at T0, then each input at its time (None: at the callback's next_at), each
    transition committed by a scheduler's claim as the daemon commits it (its events into the
    stream). The due times are in the past: every claim finds the callback due at once."""
    request = lc.NewCallback("+4930123456", "1001", due, "agent:1001", contact_name="Ann")
    created = lc.create(request, callback_id, T0, SETTINGS)
    await store.create(created.callback, created.events)
    claim: Claim | None = None
    for happening, at in steps:
        if claim is None:
            [claim] = (await store.claim(1, "grafana-test")).claims
        when = at or claim.callback.next_at
        assert when is not None and claim.callback.id == callback_id
        result = lc.step(claim.callback, happening, when, SETTINGS)
        claim = await store.commit(claim, result.callback, result.events)
        claim = claim if result.callback.state.is_live else None


async def four_callbacks(store: Store) -> None:
    """a1: completed on its 2nd attempt, talk 16 min after due; b1: completed at once, 20 s; c1: agent
    away for max_agent_wait, the failover queue's member talks, 3611 s; d1: exhausted (unallocated)."""
    nine = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    failed = ev.ContactFailed(Outcome.NO_ANSWER)
    await play(store, "a1", nine, [
        (ev.Due(), None), (ev.AgentAnswered(), nine + 10 * S), (failed, nine + 40 * S),
        (ev.Due(), None), (ev.AgentAnswered(), nine + 15 * MIN + 45 * S),
        (ev.ContactAnswered(), nine + 16 * MIN), (ev.CallEnded(), nine + 20 * MIN),
    ])  # fmt: skip
    half = nine + 30 * MIN  # b1's due_at in extra carries +01:00: the queries read its offset
    await play(store, "b1", half.astimezone(timezone(timedelta(hours=1))), [
        (ev.Due(), None), (ev.AgentAnswered(), half + 5 * S), (ev.ContactAnswered(), half + 20 * S),
        (ev.CallEnded(), half + 5 * MIN),
    ])  # fmt: skip
    ten = nine + SETTINGS.max_agent_wait
    await play(store, "c1", nine, [
        (ev.Due(agent_available=False), ten), (ev.Due(), ten + S), (ev.ContactAnswered(), ten + 11 * S),
        (ev.MemberAnswered("PJSIP/1003"), ten + 30 * S), (ev.CallEnded(), ten + 5 * MIN),
    ])  # fmt: skip
    eleven = ten + 60 * MIN
    await play(store, "d1", eleven, [
        (ev.Due(), None), (ev.AgentAnswered(), eleven + 5 * S),
        (ev.ContactFailed(Outcome.UNALLOCATED), eleven + 7 * S),
    ])  # fmt: skip


async def write_cel(database: Database, store: Store) -> int:
    """Every event of the store's stream through the real CEL writer into the database's cel table."""
    site = dataclasses.replace(database.admin, usegmtime=True)
    await store.ensure_group(GROUP, "0")
    entries = await store.read_group(GROUP, "grafana-test", count=1000)
    writer = CelWriter(open_database(site), store, store._keys.namespace, usegmtime=True)
    try:
        await writer.handle(entries)
    finally:
        await writer._database.close()
    return len(entries)


def talk_hour(dialect: Dialect) -> float:
    """The hour of callback k3's talk (cdr_tables: 2026-11-30 09:20 UTC) as the cdr panel groups it: in
    PostgreSQL calldate is a timestamptz; in MariaDB a datetime that cdr_tables writes in this host's
    zone, as cdr_adaptive_odbc does, and the UTC session reads as UTC."""
    talk = datetime(2026, 11, 30, 9, 20, tzinfo=UTC)
    if dialect is Dialect.MYSQL:
        talk = event_time(talk, usegmtime=False).replace(tzinfo=UTC)
    return talk.replace(minute=0).timestamp()


async def run(database: Database, sql: str, dialect: Dialect) -> list[tuple[object, ...]]:
    """``sql`` in a UTC session, as the data source's session time zone (MySQL) or the database's zone
    (PostgreSQL) makes it."""
    utc = "SET STATEMENT time_zone = '+00:00' FOR " if dialect is Dialect.MYSQL else ""
    return await database.query(utc + expand(sql, dialect))


async def test_every_panels_query_returns_what_the_callbacks_made(database: Database, store: Store) -> None:
    assert database.admin.dsn is not None
    dialect = database.admin.dsn.dialect
    await four_callbacks(store)
    events = await write_cel(database, store)
    assert await database.count("appname = 'asterisk-cb'") == events > 0
    await create_tables(database)  # the cdr rows: callback k3's talk, 12 s at 2026-11-30 09:20 UTC
    results = {title: await run(database, sql, dialect) for title, sql in panels(dialect).items()}

    assert results == {
        "Callbacks completed per hour": [(HOUR_9, 2), (HOUR_10, 1)],
        "Attempts per completion": [(Decimal("1.33"), 3)],  # (2 + 1 + 1) / 3
        "Failover share": [(Decimal("25.0"), 1, 4)],  # c1 of a1, b1, c1, d1
        "Time from due to talk": [(Decimal(1530), Decimal(3611), 3)],  # (960 + 20 + 3611) / 3
        "Talk time of callback calls per hour (CDR)": [(talk_hour(dialect), 12)],
    }
