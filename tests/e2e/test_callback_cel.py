"""The CEL writer in a real `asterisk-cb run` on the lab: callbacks placed through Asterisk leave their
CALLBACK_* rows in the lab's cel table (PostgreSQL, where cel_pgsql writes too, and MariaDB, where
cel_odbc does), once each, on the callback's linkedid, and each attempt's rows name the linkedid of the
calls Asterisk logged; a database cut mid-run delays no call and loses no row."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiomysql
import asyncpg
import pytest
from callback_lab import AGENTS, Lab, unique_number
from daemon_process import Fleet
from tcp_proxy import TcpProxy

from asterisk_cb.core.model import Callback, FinishReason, State
from asterisk_cb.records import migrate
from asterisk_cb.records.settings import Dialect, RecordsSite, parse_dsn

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
APP = "asterisk-cb-cel"
COMPLETED = [
    "CALLBACK_SCHEDULED", "CALLBACK_AGENT_RINGING", "CALLBACK_AGENT_ANSWERED", "CALLBACK_CONTACT_RINGING",
    "CALLBACK_CONTACT_ANSWERED", "CALLBACK_COMPLETED",
]  # fmt: skip
ONE_BUSY_ATTEMPT = ["CALLBACK_AGENT_RINGING", "CALLBACK_AGENT_ANSWERED", "CALLBACK_CONTACT_RINGING"]
ONE_BUSY_ATTEMPT += ["CALLBACK_ATTEMPT_FAILED"]


class CelReader:
    """Rows of the lab's cel table in PostgreSQL or MariaDB (``%s`` placeholders in both)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = parse_dsn(dsn)
        assert self.dsn is not None

    async def fetch(self, query: str, *args: object) -> list[dict[str, Any]]:
        assert self.dsn is not None
        if self.dsn.dialect is Dialect.POSTGRESQL:
            numbered = query.replace("%s", "{}").format(*(f"${n}" for n in range(1, len(args) + 1)))
            connection = await asyncpg.connect(self.dsn.url)
            try:
                return [dict(row) for row in await connection.fetch(numbered, *args)]
            finally:
                await connection.close()
        dsn = self.dsn
        connection = await aiomysql.connect(
            host=dsn.host,
            port=dsn.port,
            user=dsn.user,
            password=dsn.password,
            db=dsn.database,
            autocommit=True,
        )
        try:
            async with connection.cursor(aiomysql.DictCursor) as cursor:
                await cursor.execute(query.replace("%", "%%").replace("%%s", "%s"), args)
                return list(await cursor.fetchall())
        finally:
            connection.close()

    async def story(self, callback_id: str, count: int) -> list[dict[str, Any]]:
        """The callback's rows once ``count`` are there (the writer polls every second)."""
        query = "SELECT * FROM cel WHERE linkedid = %s AND eventtype LIKE 'CALLBACK%' ORDER BY eventtime, id"
        async with asyncio.timeout(30):
            while True:
                if len(await self.fetch(query, f"acb-{callback_id}")) >= count:
                    break
                await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # a row written twice would show now
        return await self.fetch(query, f"acb-{callback_id}")


@pytest.mark.parametrize("database", ["postgres", "mariadb"])
async def test_callbacks_leave_their_rows_once_joined_to_asterisks_own(
    fleet_lab: tuple[Fleet, Lab], lab_info: dict[str, Any], database: str
) -> None:
    """On each of the lab's databases, where Asterisk writes its own CEL (cel_pgsql; cel_odbc)."""
    fleet, lab = fleet_lab
    cel = CelReader(lab_info[database]["dsn"])
    assert cel.dsn is not None
    await migrate.migrate(RecordsSite(cel.dsn))  # the lab's own database; idempotent
    fleet.records = {"dsn": cel.dsn.url, "usegmtime": "yes"}  # as the lab's cel_pgsql.conf and cel_odbc.conf
    lab.phone(AGENT, "answer")
    await lab.set(max_attempts="2")
    await fleet.start(APP)
    talked = await lab.schedule(unique_number("20103"), AGENT)  # answers, hangs up 3 s later
    busy = await lab.schedule(unique_number("486"), AGENT, in_s=2.0)  # 486 Busy Here: cause 17
    # (due while the agent talks on the first: CALLBACK_AGENT_UNAVAILABLE rows until it is free)
    done = await lab.wait_for(talked.id, lambda cb: cb.state.is_finished, timeout_s=60)
    failed = await lab.wait_for(busy.id, lambda cb: cb.state.is_finished, timeout_s=90)
    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert (failed.state, failed.finish_reason) == (State.EXHAUSTED, FinishReason.AGENT_ATTEMPTS)

    rows = await cel.story(talked.id, len(COMPLETED))
    assert [row["eventtype"] for row in rows] == COMPLETED
    assert {row["cid_num"] for row in rows} == {done.contact_number}
    call = rows[1]["uniqueid"]  # the attempt's agent channel: the linkedid of the call's own rows
    assert call == f"acb-{done.attempts[0].id}-agent"
    own = await cel.fetch(
        "SELECT eventtype, eventtime FROM cel WHERE linkedid = %s ORDER BY eventtime, id", call
    )
    assert [row["eventtype"] for row in own].count("CHAN_START") == 4  # agent, Local pair, contact
    # One clock, one zone rule (usegmtime): the ring is stamped before Asterisk starts the channel, the
    # completion after the contact hung up (the agent's leg is hung up after it).
    hangups = [row["eventtime"] for row in own if row["eventtype"] == "HANGUP"]
    assert rows[1]["eventtime"] <= own[0]["eventtime"] and hangups[0] <= rows[-1]["eventtime"]

    rows = await cel.story(busy.id, 1 + 2 * len(ONE_BUSY_ATTEMPT) + 1)
    kinds = [row["eventtype"] for row in rows if row["eventtype"] != "CALLBACK_AGENT_UNAVAILABLE"]
    assert kinds == ["CALLBACK_SCHEDULED", *ONE_BUSY_ATTEMPT, *ONE_BUSY_ATTEMPT, "CALLBACK_EXHAUSTED"]
    failures = [json.loads(row["extra"]) for row in rows if row["eventtype"] == "CALLBACK_ATTEMPT_FAILED"]
    assert [(extra["attempt"], extra["cause"], extra["outcome"]) for extra in failures] == [
        (1, 17, "busy"), (2, 17, "busy"),
    ]  # fmt: skip


async def test_an_expired_callback_leaves_its_rows(
    fleet_lab: tuple[Fleet, Lab], lab_info: dict[str, Any]
) -> None:
    """A callback that never reached a phone (its agent missed every ring) leaves its story in the cel
    table all the same: the trace a report has of a promise that was not kept."""
    fleet, lab = fleet_lab
    cel = CelReader(lab_info["postgres"]["dsn"])
    assert cel.dsn is not None
    await migrate.migrate(RecordsSite(cel.dsn))
    fleet.records = {"dsn": cel.dsn.url, "usegmtime": "yes"}
    lab.phone(AGENT, "noanswer")
    await lab.set(agent_ring_timeout="2s", reschedule_delay="1s", max_missed_agent_rings="2")
    await fleet.start(APP)
    try:
        scheduled = await lab.schedule(unique_number("200"), AGENT)
        done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)
    finally:
        lab.phone(AGENT, "answer")
    assert (done.state, done.finish_reason) == (State.EXPIRED, FinishReason.AGENT_MISSED)

    missed = ["CALLBACK_AGENT_RINGING", "CALLBACK_AGENT_MISSED"]
    rows = await cel.story(scheduled.id, 2 + 2 * len(missed))
    assert [row["eventtype"] for row in rows] == ["CALLBACK_SCHEDULED", *missed, *missed, "CALLBACK_EXPIRED"]
    assert json.loads(rows[-1]["extra"])["reason"] == FinishReason.AGENT_MISSED.value


RUN = 20  # callbacks per run, five per agent, one due every DUE_EVERY_S
DUE_EVERY_S = 1.0
CUT_S = 20.0


async def _run(lab: Lab, started: float) -> tuple[list[Callback], list[float]]:
    """``RUN`` callbacks (answer, talk 1 s), one due every second over the four agents, until all are
    finished; returns them and each one's lateness: its agent's INVITE minus its due time."""
    scheduled = [
        await lab.schedule(unique_number("20101"), AGENTS[n % 4], in_s=2.0 + n * DUE_EVERY_S)
        for n in range(RUN)
    ]
    done = await asyncio.gather(
        *(lab.wait_for(cb.id, lambda cb: cb.state.is_finished, timeout_s=120) for cb in scheduled)
    )
    assert [cb.state for cb in done] == [State.COMPLETED] * RUN
    lateness = {}
    for agent in AGENTS:
        mine = sorted((cb for cb in done if cb.agent == agent), key=lambda cb: cb.attempts[0].started_at)
        invites = [at for at in lab.agent_invites(agent).times(agent) if at > started]
        assert len(invites) == len(mine)  # one ring each: every agent answers
        lateness |= {cb.id: at - cb.due_at.timestamp() for cb, at in zip(mine, invites, strict=True)}
    return list(done), [lateness[cb.id] for cb in done]


async def _rows_once(pg: asyncpg.Connection, lab: Lab, done: list[Callback]) -> None:
    """Every event of every callback is one row (waiting up to 30 s for the writer to catch up)."""
    wanted = {cb.id: len(await lab.events(cb.id)) for cb in done}

    async def rows() -> dict[str, int]:
        query = "SELECT linkedid, count(*) FROM cel WHERE linkedid = ANY($1) AND eventtype LIKE 'CALLBACK%'"
        found = await pg.fetch(query + " GROUP BY 1", [f"acb-{callback_id}" for callback_id in wanted])
        return {row[0].removeprefix("acb-"): row[1] for row in found}

    async with asyncio.timeout(30):
        while True:
            if await rows() == wanted:
                break
            await asyncio.sleep(0.5)
    await asyncio.sleep(2.0)  # a row written twice would show now
    assert await rows() == wanted


async def test_a_database_cut_for_20_s_delays_no_call_and_loses_no_row(
    fleet_lab: tuple[Fleet, Lab], lab_info: dict[str, Any]
) -> None:
    """The writer's database (the lab's, through a proxy the test cuts) unreachable for 20 s in the middle
    of 20 callbacks: every agent's INVITE within 1 s of its lateness in a control run with the database
    up, and afterwards every event of both runs is one row."""
    fleet, lab = fleet_lab
    dsn = parse_dsn(lab_info["postgres"]["dsn"])
    assert dsn is not None
    await migrate.migrate(RecordsSite(dsn))
    for agent in AGENTS:
        lab.phone(agent, "answer")
    await lab.set(reschedule_delay="1s")
    async with TcpProxy(dsn.host, dsn.port) as proxy:
        proxied = dsn.url.replace(f"@{dsn.host}:{dsn.port}/", f"@127.0.0.1:{proxy.port}/")
        fleet.records = {"dsn": proxied, "usegmtime": "yes", "connect_timeout": "1s", "write_timeout": "2s"}
        daemon = await fleet.start(APP)
        pg = await asyncpg.connect(dsn.url)
        try:
            control, control_late = await _run(lab, time.time())
            await _rows_once(pg, lab, control)
            cut_at = time.time()
            cut = asyncio.create_task(_cut(proxy, 2.0, CUT_S))
            run, late = await _run(lab, cut_at)
            await cut
            await _rows_once(pg, lab, run)
        finally:
            await pg.close()
    log = daemon.log.read_text()
    assert log.index('"cel database down"') < log.rindex('"cel database up"')  # the writer saw the cut
    print(f"lateness: control max {max(control_late):.3f} s, database cut max {max(late):.3f} s")
    assert all(cut <= control + 1.0 for cut, control in zip(late, control_late, strict=True)), (
        late,
        control_late,
    )


async def _cut(proxy: TcpProxy, after_s: float, for_s: float) -> None:
    await asyncio.sleep(after_s)
    await proxy.stop()
    await asyncio.sleep(for_s)
    await proxy.start()
