"""A callback's calls in the CDR Asterisk itself writes (README "CDR: finding callback calls"), read
back with the plain SQL a report uses from the lab's PostgreSQL ``cdr`` table (cdr_pgsql), whose
optional ``acb_*`` columns scripts/lab/sql/cdr_cel.sql adds, and from the lab's MariaDB one
(cdr_adaptive_odbc, the same columns in cdr_cel_mysql.sql).

Rows are written when each channel hangs up, a moment after the callback's record says it is over:
every read polls, with a time limit. The daemon here marks with the defaults (``[dialing]
cdr_mark_field = userfield``, ``cdr_mark_text = scheduled-callback``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomysql
import asyncpg
import pytest
from callback_lab import Lab, leg_channel, unique_number

from asterisk_cb.core.model import Callback, FinishReason, LegRole, Outcome, Phase, State

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
ORIGIN = "1796600000.77"  # the linkedid of the call the callback was requested on
# The report's filter, as the README gives it: the mark alone finds every callback call.
MARKED = (
    "SELECT * FROM cdr WHERE userfield = 'scheduled-callback' AND calldate >= $1 ORDER BY calldate, sequence"
)
SETTLE_S = 1.5  # after the expected rows are in: no further row may come


def this_second() -> datetime:
    """Now, to the whole second below: cdr_pgsql writes ``calldate`` in whole seconds, so a call started
    in this very second has a ``calldate`` a little before now."""
    return datetime.now(UTC).replace(microsecond=0)


async def marked_rows(lab: Lab, since: datetime, expected: int) -> list[dict[str, Any]]:
    """This test's marked rows since ``since`` once ``expected`` are written, checked again ``SETTLE_S``
    later. Rows of another test's callbacks are left out: a call an earlier test's daemon was placing
    as it stopped goes on (a stopped daemon leaves live calls up, by design) and may end in this test's
    second; the mark finding it is right, it is just not this test's."""
    connection = await asyncpg.connect(lab.info["postgres"]["dsn"])

    async def ours() -> list[dict[str, Any]]:
        rows = [dict(row) for row in await connection.fetch(MARKED, since)]
        return [row for row in rows if (row["acb_id"] or "").startswith(lab.prefix)]

    try:
        async with asyncio.timeout(20):
            while len(await ours()) < expected:  # noqa: ASYNC110 - Asterisk writes them at hangup
                await asyncio.sleep(0.2)
        await asyncio.sleep(SETTLE_S)
        return await ours()
    finally:
        await connection.close()


async def rows_of_calls(lab: Lab, linkedids: set[str]) -> list[dict[str, Any]]:
    """Every CDR row of the given calls, marked or not."""
    connection = await asyncpg.connect(lab.info["postgres"]["dsn"])
    try:
        rows = await connection.fetch("SELECT * FROM cdr WHERE linkedid = ANY($1::text[])", sorted(linkedids))
    finally:
        await connection.close()
    return [dict(row) for row in rows]


async def mariadb_rows(lab: Lab, callback_id: str) -> set[tuple[str, str, str, bool]]:
    """The marked rows of one callback in the lab's MariaDB, as (uniqueid, leg, attempt, talked)."""
    dsn = urlsplit(lab.info["mariadb"]["dsn"])
    connection = await aiomysql.connect(
        host=dsn.hostname, port=dsn.port, user=dsn.username, password=dsn.password,
        db=dsn.path.lstrip("/"), autocommit=True,
    )  # fmt: skip
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(
                "SELECT uniqueid, acb_leg, acb_attempt, billsec > 0 FROM cdr"
                " WHERE userfield = 'scheduled-callback' AND acb_id = %s",
                (callback_id,),
            )
            return {
                (uniqueid, leg, attempt, bool(talked))
                for uniqueid, leg, attempt, talked in await cursor.fetchall()
            }
    finally:
        connection.close()


def record_linkedids(callback: Callback) -> set[str]:
    """The linkedid of each attempt's call, as the daemon recorded it."""
    return {leg.linkedid for attempt in callback.attempts for leg in attempt.legs if leg.linkedid}


def by_attempt(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    ordered = sorted(rows, key=lambda row: row["acb_attempt"])
    grouped = itertools.groupby(ordered, lambda row: row["acb_attempt"])
    return {attempt: list(group) for attempt, group in grouped}


async def test_the_mark_finds_exactly_the_calls_of_a_callback_done_on_its_second_attempt(
    lab: Lab, tmp_path: Path
) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(agent_ring_timeout="5s", contact_ring_timeout="2s", retry_interval="3s", max_attempts="3")
    number = unique_number("2030403")  # rings 4 s, answers, hangs up 3 s later
    since = this_second()

    scheduled = await lab.schedule(number, AGENT, in_s=0.5, origin_linkedid=ORIGIN)
    await lab.wait_for(scheduled.id, lambda cb: cb.agent_attempts == 1, timeout_s=30)
    await lab.set(contact_ring_timeout="10s")  # the second attempt rings long enough
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=40)
    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    assert [attempt.outcome for attempt in done.attempts] == [Outcome.NO_ANSWER, Outcome.COMPLETED]

    rows = await marked_rows(lab, since, expected=4)
    # exactly the callback's calls: every row of its two calls, nothing else
    assert sorted(row["uniqueid"] for row in rows) == sorted(
        row["uniqueid"] for row in await rows_of_calls(lab, record_linkedids(done))
    )
    attempts = by_attempt(rows)
    assert sorted(attempts) == ["1", "2"]
    for attempt, legs in attempts.items():
        assert sorted(row["acb_leg"] for row in legs) == ["agent", "contact"], attempt
        assert len({row["linkedid"] for row in legs}) == 1, f"attempt {attempt}: one call, one linkedid"
    contact = {n: next(row for row in legs if row["acb_leg"] == "contact") for n, legs in attempts.items()}
    assert (contact["1"]["disposition"], contact["1"]["billsec"]) == ("NO ANSWER", 0)
    assert contact["2"]["disposition"] == "ANSWERED" and contact["2"]["billsec"] > 0
    assert {contact["2"]["dst"], contact["2"]["dstchannel"].split("-")[0]} == {number, "PJSIP/contacts"}
    assert {
        (row["acb_id"], row["acb_phase"], row["acb_agent"], row["acb_origin_linkedid"]) for row in rows
    } == {(scheduled.id, "agent", AGENT, ORIGIN)}
    # the same rows, marks and columns in MariaDB (written in the same moment: no wait needed)
    assert await mariadb_rows(lab, scheduled.id) == {
        (row["uniqueid"], row["acb_leg"], row["acb_attempt"], row["billsec"] > 0) for row in rows
    }
    await the_calls_command_shows_them(lab, tmp_path, since, scheduled.id, number)


async def the_calls_command_shows_them(
    lab: Lab, tmp_path: Path, since: datetime, callback_id: str, number: str
) -> None:
    """`asterisk-cb calls` on the lab's cdr table: the same four rows, by time and by the originating
    call, with the agent found from its phone's channel."""
    records = f"[records]\ndsn = {lab.info['postgres']['dsn']}\nusegmtime = yes\n"
    keys = ("callback", "agent", "contact", "attempt", "phase", "leg", "outcome")
    legs = [("1", "agent", "ANSWERED"), ("1", "contact", "NO ANSWER"), ("2", "agent", "ANSWERED")]
    legs += [("2", "contact", "ANSWERED")]  # the agent answered both times; the contact the second
    expected = [
        (callback_id, AGENT, number, attempt, "agent", leg, outcome) for attempt, leg, outcome in legs
    ]
    # ORIGIN is this test's constant: the lab's cdr keeps earlier runs' rows, hence --since with it too
    for found in (["--since", since.isoformat()], ["--linkedid", ORIGIN, "--since", since.isoformat()]):
        code, out, err = await lab.cli(tmp_path, "calls", *found, "--json", sections=records)
        assert (code, err) == (0, ""), found
        # an earlier test's leftover call started in this second may be listed too (see marked_rows)
        calls = [call for call in json.loads(out) if call["callback"].startswith(lab.prefix)]
        seen = sorted(tuple(call[key] for key in keys) for call in calls)
        assert seen == expected, found
        talk = [call for call in calls if call["attempt"] == "2" and call["leg"] == "contact"]
        assert talk[0]["billsec"] > 0, found


async def test_a_failover_queue_leg_carries_the_mark(lab: Lab, members_answer: None) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(
        failover_queue="failover",
        retry_interval="3s",
        max_attempts="1",
        queue_timeout="20s",
        agent_ring_timeout="5s",
        contact_ring_timeout="2s",
    )
    number = unique_number("20204")  # rings 4 s, then answers: never within the agent phase's 2 s
    since = this_second()

    scheduled = await lab.schedule(number, AGENT, in_s=0.5)
    await lab.wait_for(scheduled.id, lambda cb: cb.phase is Phase.QUEUE, timeout_s=30)
    await lab.set(contact_ring_timeout="10s")
    talking = await lab.wait_for(scheduled.id, lambda cb: cb.state is State.IN_PROGRESS, timeout_s=40)
    await asyncio.sleep(1)  # a second of talk
    await lab.ari.hangup(leg_channel(talking, LegRole.CONTACT))  # the contact ends the talk
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=15)
    assert (done.state, done.attempts[-1].phase) == (State.COMPLETED, Phase.QUEUE)
    member = done.attempts[-1].leg(LegRole.MEMBER)
    assert member is not None and member.endpoint is not None

    rows = await marked_rows(lab, since, expected=5)  # agent phase: 2; queue phase: 3
    assert sorted(row["uniqueid"] for row in rows) == sorted(
        row["uniqueid"] for row in await rows_of_calls(lab, record_linkedids(done))
    )
    queue_phase = [row for row in rows if row["acb_phase"] == "queue"]
    assert sorted(row["acb_leg"] for row in queue_phase) == ["contact", "contact", "member"]
    assert len({row["linkedid"] for row in queue_phase}) == 1
    [member_row] = [row for row in queue_phase if row["acb_leg"] == "member"]
    assert member_row["dstchannel"].startswith(member.endpoint + "-")
    assert member_row["lastapp"] == "Queue" and member_row["billsec"] > 0
    assert {(row["acb_id"], row["acb_agent"]) for row in rows} == {(scheduled.id, AGENT)}  # the owner
    assert {row["acb_origin_linkedid"] for row in rows} == {""}  # requested on no call
