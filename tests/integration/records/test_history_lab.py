"""The call history on the rows the lab's own Asterisk writes: a call to agent 1001 from outside, then
1001 calling out, read back from the lab's PostgreSQL (cdr_pgsql, ``calldate`` timestamptz) and its
MariaDB (cdr_adaptive_odbc, ``calldate`` datetime in UTC: ``usegmtime = yes``) alike."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from asterisk_cb.core.cdr_marks import CdrMark
from asterisk_cb.records.history import CdrHistory, Direction, HistoryCall
from asterisk_cb.records.settings import RecordsSite, parse_dsn

pytestmark = pytest.mark.lab


async def _newest(readers: list[CdrHistory], number: str) -> list[HistoryCall]:
    """Agent 1001's newest call in each database once both show the call with ``number`` (CDRs are
    written at hangup)."""
    deadline = time.monotonic() + 20
    while True:
        newest = [(await reader.calls(["PJSIP/1001"], limit=1) or [None])[0] for reader in readers]
        if all(call is not None and call.contact_number == number for call in newest):
            return [call for call in newest if call is not None]
        assert time.monotonic() < deadline, newest
        await asyncio.sleep(0.3)


async def test_the_labs_own_rows_read_as_the_agents_calls(
    lab: dict[str, Any], lab_pg_dsn: str, lab_mariadb: dict[str, Any], pbx_lab_run: Callable[..., str]
) -> None:
    sites = [RecordsSite(parse_dsn(lab_pg_dsn)), RecordsSite(parse_dsn(lab_mariadb["dsn"]), usegmtime=True)]
    agents = {"1001": ["PJSIP/1001"], "1002": ["PJSIP/1002"]}
    readers = [CdrHistory(site, CdrMark(), agents) for site in sites]
    caller, dialled = (f"49{str(uuid.uuid4().int)[:9]}" for _ in range(2))

    pbx_lab_run("call", "1001", "--caller", caller, "--hold-s", "1")
    inbound = await _newest(readers, caller)
    pbx_lab_run("dial", "1001", dialled, "--hold-s", "1")
    outbound = await _newest(readers, dialled)

    assert inbound[0] == inbound[1] and outbound[0] == outbound[1]  # the same call in both databases
    came, went = inbound[0], outbound[0]
    assert (came.direction, came.contact_name, came.disposition) == (Direction.INBOUND, None, "ANSWERED")
    assert (went.direction, went.disposition, went.queue) == (Direction.OUTBOUND, "ANSWERED", None)
    assert went.talk_s >= 1 and not went.is_callback
    assert abs(time.time() - went.started_at.timestamp()) < 30  # aware, and in the right zone
    for reader in readers:
        page = await reader.calls(["PJSIP/1001"], limit=1, before=went.started_at)
        assert page == [came]
