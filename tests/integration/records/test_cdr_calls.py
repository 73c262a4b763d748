"""``asterisk-cb calls`` on real databases: PostgreSQL and MariaDB, each with the classic cdr schema
(``calldate``, acb_* columns) and the alembic one (``start``, no acb_* columns), read as the
least-rights user through a proxy the test can cut: the callback calls of a span, one agent's, one
originating call's (by acb_origin_linkedid, or by the CEL writer's rows without it), and clear errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cdr_tables import BASE, IN_SPAN, ORIGIN, create_tables
from cel_databases import Database

from asterisk_cb.cli import main
from asterisk_cb.records.cel_rows import CelRow, event_time
from asterisk_cb.records.connect import open_database
from asterisk_cb.secrecy import write_private

HEADERS = ["time", "callback", "agent", "contact", "attempt", "phase", "leg", "outcome", "billsec"]
SPAN = ["--since", "2026-11-30T08:00Z", "--until", "2026-11-30T10:00Z"]
AGENTS = "[agents]\n1001 = PJSIP/1001\n1002 = PJSIP/1002\n"
CONFIG = "[ari]\nuser=a\npassword=b\n[ami]\nuser=a\nsecret=b\n[dialing]\noutbound_context=x\n" + AGENTS


@pytest.fixture
async def filled(database: Database) -> AsyncIterator[Database]:
    await create_tables(database)
    yield database


@pytest.fixture(params=["cdr", "cdr_alembic"])
def table(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def calls(database: Database, tmp_path: Path, table: str, *arguments: str) -> tuple[int, str, str]:
    """``asterisk-cb calls`` as a user runs it (in a thread: the proxy lives on this test's loop)."""
    assert database.site.dsn is not None
    path = tmp_path / "asterisk-cb.conf"
    records = f"[records]\ndsn = {database.site.dsn.url}\ncdr_table = {table}\nconnect_timeout = 2s\n"
    write_private(path, CONFIG + records)
    out, err = tmp_path / "out", tmp_path / "err"

    def run() -> int:
        with (
            out.open("w") as stdout,
            err.open("w") as stderr,
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            return main(["--config", str(path), "calls", "--type", "scheduled-callbacks", *arguments])

    code = await asyncio.to_thread(run)
    return code, out.read_text(), err.read_text()


def seen(output: str) -> list[tuple[object, ...]]:
    keys = ("callback", "agent", "contact", "attempt", "leg", "outcome", "billsec")
    return [tuple(row[key] for key in keys) for row in json.loads(output)]


async def test_the_callback_calls_of_a_span(filled: Database, table: str, tmp_path: Path) -> None:
    code, out, err = await calls(filled, tmp_path, table, *SPAN, "--json")
    assert (code, err) == (0, "")
    assert seen(out) == IN_SPAN  # not the older callback, not the unmarked calls
    code, out, _ = await calls(filled, tmp_path, table, *SPAN)
    lines = out.splitlines()
    assert lines[0].split() == [*HEADERS, "linkedid"]
    assert lines[2].split()[2:] == [
        "k3",
        "1001",
        "+4930555",
        "1",
        "agent",
        "agent",
        "ANSWERED",
        "9",
        "acb-k3-1-agent",
    ]
    assert lines[-1] == "5 row(s)"


async def test_one_agents_calls(filled: Database, table: str, tmp_path: Path) -> None:
    code, out, _ = await calls(filled, tmp_path, table, *SPAN, "--agent", "1002", "--json")
    assert (code, seen(out)) == (0, [("m7", "1002", "+4930555", "1", "agent", "BUSY", 0)])


async def test_one_originating_call_and_its_callback_calls(
    filled: Database, table: str, tmp_path: Path
) -> None:
    """With acb_origin_linkedid (classic table here) or, without it, through the CEL writer's rows on
    the originating linkedid: their uniqueid is each attempt's call."""
    await write_cel_rows(filled)
    code, out, _ = await calls(filled, tmp_path, table, "--linkedid", ORIGIN, "--json")
    assert code == 0
    assert seen(out) == [("-", "-", "-", "-", "origin", "ANSWERED", 30), *IN_SPAN[:4]]


async def write_cel_rows(database: Database) -> None:
    cel = open_database(database.admin)
    try:
        rows = [
            CelRow("CALLBACK_AGENT_RINGING", event_time(at, False), "", "+4930555", uniqueid, ORIGIN, "{}")
            for at, uniqueid in ((_at(10), "acb-k3-1-agent"), (_at(20), "acb-k3-2-agent"))
        ]
        await cel.write("test", [(f"1-{n}", row) for n, row in enumerate(rows)])
    finally:
        await cel.close()


def _at(minute: int) -> datetime:
    return BASE + timedelta(minutes=minute)


async def test_a_missing_table_or_one_that_is_no_cdr_table_exits_3(filled: Database, tmp_path: Path) -> None:
    code, _, err = await calls(filled, tmp_path, "nope", *SPAN)
    assert code == 3 and "no table nope in" in err and "(set)@" in err
    code, _, err = await calls(filled, tmp_path, "cel", *SPAN)
    assert code == 3 and "cel in" in err and "not a cdr table (no calldate or start" in err


async def test_a_database_down_exits_4_without_the_password(filled: Database, tmp_path: Path) -> None:
    assert filled.site.dsn is not None
    await filled.proxy.stop()
    code, out, err = await calls(filled, tmp_path, "cdr", *SPAN)
    assert (code, out) == (4, "")
    assert err.startswith("asterisk-cb: cannot read the cdr table: ") and "(set)@" in err
    assert filled.site.dsn.password not in err and "Traceback" not in err
