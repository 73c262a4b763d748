"""The CEL writer in a real `asterisk-cb run` on the lab: callbacks placed through Asterisk leave their
CALLBACK_* rows in the lab's cel table (PostgreSQL, written by Asterisk's cel_pgsql too), once each, on
the callback's linkedid, and each attempt's rows name the linkedid of the calls Asterisk logged."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from callback_lab import Lab, unique_number
from daemon_process import Fleet

from asterisk_cb.core.model import FinishReason, State
from asterisk_cb.records import migrate
from asterisk_cb.records.settings import RecordsSite, parse_dsn

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
APP = "asterisk-cb-cel"
COMPLETED = [
    "CALLBACK_SCHEDULED", "CALLBACK_AGENT_RINGING", "CALLBACK_AGENT_ANSWERED", "CALLBACK_CONTACT_RINGING",
    "CALLBACK_CONTACT_ANSWERED", "CALLBACK_COMPLETED",
]  # fmt: skip
ONE_BUSY_ATTEMPT = ["CALLBACK_AGENT_RINGING", "CALLBACK_AGENT_ANSWERED", "CALLBACK_CONTACT_RINGING"]
ONE_BUSY_ATTEMPT += ["CALLBACK_ATTEMPT_FAILED"]


async def story(pg: asyncpg.Connection, callback_id: str, count: int) -> list[asyncpg.Record]:
    """The callback's rows once ``count`` are there (the writer polls every second)."""
    query = "SELECT * FROM cel WHERE linkedid = $1 AND eventtype LIKE 'CALLBACK%' ORDER BY eventtime, id"
    async with asyncio.timeout(30):
        while True:
            if len(await pg.fetch(query, f"acb-{callback_id}")) >= count:
                break
            await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # a row written twice would show now
    return await pg.fetch(query, f"acb-{callback_id}")


async def test_callbacks_leave_their_rows_once_joined_to_asterisks_own(
    fleet_lab: tuple[Fleet, Lab], lab_info: dict[str, Any]
) -> None:
    fleet, lab = fleet_lab
    dsn = lab_info["postgres"]["dsn"]
    await migrate.migrate(RecordsSite(parse_dsn(dsn)))  # the lab's own database; idempotent
    fleet.records = {"dsn": dsn, "usegmtime": "yes"}  # as the lab's cel_pgsql.conf
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

    pg = await asyncpg.connect(dsn)
    try:
        rows = await story(pg, talked.id, len(COMPLETED))
        assert [row["eventtype"] for row in rows] == COMPLETED
        assert {row["cid_num"] for row in rows} == {done.contact_number}
        call = rows[1]["uniqueid"]  # the attempt's agent channel: the linkedid of the call's own rows
        assert call == f"acb-{done.attempts[0].id}-agent"
        own = await pg.fetch(
            "SELECT eventtype, eventtime FROM cel WHERE linkedid = $1 ORDER BY eventtime, id", call
        )
        assert [row["eventtype"] for row in own].count("CHAN_START") == 4  # agent, Local pair, contact
        # One clock, one zone rule (usegmtime): the ring is stamped before Asterisk starts the channel,
        # the completion after the contact hung up (the agent's leg is hung up after it).
        hangups = [row["eventtime"] for row in own if row["eventtype"] == "HANGUP"]
        assert rows[1]["eventtime"] <= own[0]["eventtime"] and hangups[0] <= rows[-1]["eventtime"]

        rows = await story(pg, busy.id, 1 + 2 * len(ONE_BUSY_ATTEMPT) + 1)
        kinds = [row["eventtype"] for row in rows if row["eventtype"] != "CALLBACK_AGENT_UNAVAILABLE"]
        assert kinds == ["CALLBACK_SCHEDULED", *ONE_BUSY_ATTEMPT, *ONE_BUSY_ATTEMPT, "CALLBACK_EXHAUSTED"]
        failures = [row["extra"] for row in rows if row["eventtype"] == "CALLBACK_ATTEMPT_FAILED"]
        assert [await pg.fetchval("SELECT ($1::json->>'cause')::int", extra) for extra in failures] == [
            17,
            17,
        ]
        assert '"attempt":2' in failures[1] and '"outcome":"busy"' in failures[1]
    finally:
        await pg.close()
