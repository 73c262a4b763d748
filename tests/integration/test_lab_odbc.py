"""The lab's Asterisk writes every CDR and CEL row to PostgreSQL (cdr_pgsql, cel_pgsql) and to its
MariaDB database (res_odbc, cdr_adaptive_odbc, cel_odbc) alike: the same rows, ids and UTC times."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from lab.ari_client import LabAri

pytestmark = pytest.mark.lab

# The same columns from both databases as text: times in UTC, the CEL's to the microsecond. CEL rows
# in insertion order (id): each event reaches both backends in turn, so the orders agree, though
# events of different channels may be written a few microseconds out of eventtime order.
PG_CDR = """SELECT uniqueid, linkedid, channel, dstchannel, dcontext, dst, lastapp, disposition,
    amaflags::text, duration::text, billsec::text,
    to_char(calldate AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
    FROM cdr WHERE linkedid = $1 ORDER BY uniqueid, sequence"""
MARIADB_CDR = """SELECT uniqueid, linkedid, channel, dstchannel, dcontext, dst, lastapp, disposition,
    amaflags, duration, billsec, DATE_FORMAT(calldate, '%Y-%m-%d %H:%i:%s')
    FROM cdr WHERE linkedid = '{linkedid}' ORDER BY uniqueid, sequence"""
PG_CEL = """SELECT eventtype, uniqueid, linkedid, channame, context, exten, appname, peer, extra,
    to_char(eventtime AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')
    FROM cel WHERE linkedid = $1 ORDER BY id"""
MARIADB_CEL = """SELECT eventtype, uniqueid, linkedid, channame, context, exten, appname, peer, extra,
    DATE_FORMAT(eventtime, '%Y-%m-%d %H:%i:%s.%f')
    FROM cel WHERE linkedid = '{linkedid}' ORDER BY id"""

Rows = list[tuple[str, ...]]


def _mariadb_rows(client_cnf: str, sql: str) -> Rows:
    """Rows through the mariadb client as the lab user (its option file holds the password)."""
    result = subprocess.run(
        ["mariadb", f"--defaults-file={client_cnf}", "--batch", "--skip-column-names", "--raw", "-e", sql],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [tuple(line.split("\t")) for line in result.stdout.splitlines()]


async def _pg_rows(dsn: str, sql: str, linkedid: str) -> Rows:
    connection = await asyncpg.connect(dsn)
    try:
        return [tuple(record) for record in await connection.fetch(sql, linkedid)]
    finally:
        await connection.close()


async def _both(lab_pg_dsn: str, client_cnf: str, linkedid: str) -> tuple[Rows, Rows, Rows, Rows]:
    """(PostgreSQL cdr, MariaDB cdr, PostgreSQL cel, MariaDB cel) rows of one call."""
    return (
        await _pg_rows(lab_pg_dsn, PG_CDR, linkedid),
        _mariadb_rows(client_cnf, MARIADB_CDR.format(linkedid=linkedid)),
        await _pg_rows(lab_pg_dsn, PG_CEL, linkedid),
        _mariadb_rows(client_cnf, MARIADB_CEL.format(linkedid=linkedid)),
    )


def _complete(rows: tuple[Rows, Rows, Rows, Rows]) -> bool:
    """Both backends have written the whole call: its LINKEDID_END and as many CDRs as each other."""
    pg_cdr, mariadb_cdr, pg_cel, mariadb_cel = rows
    ended = all(any(row[0] == "LINKEDID_END" for row in cel) for cel in (pg_cel, mariadb_cel))
    return ended and len(pg_cdr) == len(mariadb_cdr) > 0 and len(pg_cel) == len(mariadb_cel)


async def test_a_call_lands_the_same_cdr_and_cel_rows_in_postgresql_and_mariadb(
    ari: LabAri, lab: dict[str, Any], lab_pg_dsn: str, lab_mariadb: dict[str, Any]
) -> None:
    """A contact answers and hangs up after 1 s (Local channels, a Dial, a bridge): several CDRs and
    dozens of CEL events, all on one linkedid, the same in both databases down to the microsecond."""
    number = "20101" + str(uuid.uuid4().int)[:8]
    channel_id = f"test-odbc-{uuid.uuid4().hex[:8]}"
    await ari.originate(f"Local/{number}@callback-outbound", channel_id)
    await ari.wait_for(
        lambda event: event.get("type") == "ChannelDestroyed" and event["channel"]["id"] == channel_id,
        timeout_s=15,
    )
    client_cnf = lab_mariadb["client_cnf"]
    rows = await _both(lab_pg_dsn, client_cnf, channel_id)
    deadline = time.monotonic() + 10
    while not _complete(rows) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        rows = await _both(lab_pg_dsn, client_cnf, channel_id)
    pg_cdr, mariadb_cdr, pg_cel, mariadb_cel = rows

    assert mariadb_cdr == pg_cdr
    assert mariadb_cel == pg_cel
    uniqueids = {row[0] for row in pg_cdr}
    assert channel_id in uniqueids and len(uniqueids) >= 2, pg_cdr
    assert any(row[5] == number and row[7] == "ANSWERED" and int(row[10]) >= 1 for row in pg_cdr), pg_cdr
    assert {row[2] for row in pg_cel} == {channel_id}
    assert uniqueids <= {row[1] for row in pg_cel}
    assert [row[0] for row in pg_cel][-1] == "LINKEDID_END"


def test_env_dsn_logs_in_as_the_lab_user_who_sees_only_its_database(lab_mariadb: dict[str, Any]) -> None:
    """`pbx-lab env`'s DSN is a working login (the daemon's writer is pointed at it), with the password
    from the lab's file, and the user it names was granted the lab database and nothing else."""
    dsn = urlsplit(lab_mariadb["dsn"])
    assert dsn.password == Path(lab_mariadb["password_file"]).read_text().strip()
    result = subprocess.run(
        ["mariadb", "--no-defaults", "--protocol=tcp", "-h", dsn.hostname or "", "-P", str(dsn.port),
         "-u", dsn.username or "", "--batch", "--skip-column-names",
         "-e", "SHOW DATABASES"],
        capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "MYSQL_PWD": dsn.password or ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"information_schema", dsn.path.lstrip("/")}
