"""The call history over the API, on the CDR rows the lab's own Asterisk writes to its PostgreSQL: an
agent lists its calls and schedules a callback from one (the call's linkedid and number kept); the same
create again is the same callback; nobody schedules from, or reads, another agent's calls."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from api_harness import CONFIG, Api, served_api

from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


@pytest.fixture
async def api_with_cdr(store: Store, redis: RedisClient, lab_pg_dsn: str) -> AsyncIterator[Api]:
    async with served_api(store, redis, CONFIG + f"[records]\ndsn = {lab_pg_dsn}\n") as api:
        yield api


async def newest_call(api: Api, agent: str, number: str) -> dict[str, Any]:
    """The agent's newest call once it is the one with ``number`` (a CDR row is written at hangup)."""
    deadline = time.monotonic() + 20
    while True:
        status, body, _ = await api.call("GET", f"/agents/{agent}/history?limit=1", agent)
        assert status == 200, body
        if body["calls"] and body["calls"][0]["contact_number"] == number:
            return body["calls"][0]
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.3)


async def test_an_agent_schedules_a_callback_from_its_history_once(
    api_with_cdr: Api, pbx_lab_run: Callable[..., str]
) -> None:
    api = api_with_cdr
    caller = f"49{str(uuid.uuid4().int)[:9]}"
    pbx_lab_run("call", "1001", "--caller", caller, "--hold-s", "1")
    call = await newest_call(api, "1001", caller)
    assert (call["direction"], call["disposition"], call["callback_ids"]) == ("inbound", "ANSWERED", [])

    order = {"from_call": call["linkedid"], "due_at": "+2h", "note": "wants a quote"}
    status, first, _ = await api.call("POST", "/callbacks", "1001", json=order)
    assert status == 201, first
    made = first["callback"]
    assert (made["contact_number"], made["origin_linkedid"], made["source"]) == (
        caller,
        call["linkedid"],
        "history",
    )
    assert made["origin_uniqueid"] == call["uniqueid"]
    status, again, _ = await api.call("POST", "/callbacks", "1001", json=order)
    assert (status, again["created"], again["callback"]["id"]) == (200, False, made["id"])

    listed = await newest_call(api, "1001", caller)
    assert listed["callback_ids"] == [made["id"]]
    status, page, _ = await api.call("GET", "/callbacks", "1001", params={"origin_call": call["linkedid"]})
    assert [c["id"] for c in page["callbacks"]] == [made["id"]]
    status, cdr, _ = await api.call("GET", f"/callbacks/{made['id']}/cdr", "1001")
    assert (status, cdr["rows"]) == (200, [])  # no callback call placed yet

    status, body, _ = await api.call("POST", "/callbacks", "1002", json=order)  # not 1002's call
    assert (status, body["error"]["code"], body["error"]["field"]) == (404, "not_found", "from_call")
    status, body, _ = await api.call("GET", "/agents/1001/history", "1002")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body, _ = await api.call("GET", "/agents/1001/history?limit=1", "anna")  # a supervisor may
    assert (status, body["calls"][0]["linkedid"]) == (200, call["linkedid"])


async def test_without_a_cdr_database_the_history_says_what_it_needs(api: Api) -> None:
    status, body, _ = await api.call("GET", "/agents/1001/history", "1001")
    assert (status, body["error"]["code"]) == (503, "unavailable")
    assert "[records] dsn" in body["error"]["message"]
