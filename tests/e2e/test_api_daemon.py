"""The REST API of a real `asterisk-cb run` on the lab: tokens made with the CLI, a callback scheduled
over HTTP and placed through Asterisk while a supervisor's browser-style client follows its events
live, then read back with its attempt and its rows in Asterisk's own CDR."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from api_client import call, free_port, readiness
from callback_lab import Lab, unique_number
from daemon_process import Fleet

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
APP = "asterisk-cb-api"
USERS = "[users]\nanna = supervisor\n"
PLACED = ["created", "agent_ringing", "agent_answered", "contact_ringing", "contact_answered", "completed"]


async def token(lab: Lab, tmp_path: Path, *identity: str) -> str:
    code, out, err = await lab.cli(tmp_path, "token", "create", *identity, sections=USERS)
    assert code == 0, err
    return out.strip()


async def follow(base: str, ticket: str, seen: list[dict[str, Any]], until: str) -> None:
    """Read the live events as an EventSource does until the event ``until`` arrives."""
    timeout = aiohttp.ClientTimeout(total=None)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{base}/events?ticket={ticket}") as response,
    ):
        assert response.status == 200
        async for line in response.content:
            text = line.decode().rstrip("\n")
            if text.startswith("data: "):
                seen.append(json.loads(text[len("data: ") :]))
                if seen[-1]["kind"] == until:
                    return


async def cdr_rows(base: str, token_text: str, callback_id: str, count: int) -> list[dict[str, Any]]:
    """The callback's CDR rows once ``count`` are there (Asterisk writes each at its channel's hangup)."""
    async with asyncio.timeout(20):
        while True:
            status, body = await call(base, token_text, "GET", f"/callbacks/{callback_id}/cdr")
            assert status == 200, body
            if len(body["rows"]) >= count:
                return list(body["rows"])
            await asyncio.sleep(0.3)


async def test_a_callback_scheduled_over_http_is_placed_and_followed_live(
    fleet_lab: tuple[Fleet, Lab], tmp_path: Path
) -> None:
    fleet, lab = fleet_lab
    port = free_port()
    fleet.records = {"dsn": lab.info["postgres"]["dsn"], "usegmtime": "yes"}
    fleet.extra = USERS + f"[api]\nlisten = 127.0.0.1:{port}\n"
    base = f"http://127.0.0.1:{port}/api/v1"
    lab.phone(AGENT, "answer")
    agent_token = await token(lab, tmp_path, "--agent", AGENT)
    supervisor_token = await token(lab, tmp_path, "--user", "anna")
    await fleet.start(APP)
    ready = await readiness(base)
    assert ready["components"]["api"] is True and ready["redis"] is True

    status, issued = await call(base, supervisor_token, "POST", "/events/tickets")
    assert status == 201
    seen: list[dict[str, Any]] = []
    following = asyncio.create_task(follow(base, issued["ticket"], seen, until="completed"))
    await asyncio.sleep(0.5)  # the stream is open: it follows from the stream's end
    due = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    order = {"contact_number": unique_number("20103"), "contact_name": "Ada", "due_at": due}
    status, created = await call(base, agent_token, "POST", "/callbacks", json=order)
    assert status == 201, created
    callback_id = created["callback"]["id"]

    await asyncio.wait_for(following, 60)
    assert [event["kind"] for event in seen if event["callback_id"] == callback_id] == PLACED
    status, done = await call(base, agent_token, "GET", f"/callbacks/{callback_id}")
    assert (status, done["state"], done["finish_reason"]) == (200, "completed", "talked")
    assert [attempt["outcome"] for attempt in done["attempts"]] == ["completed"]
    rows = await cdr_rows(base, agent_token, callback_id, 2)
    assert {row["callback"] for row in rows} == {callback_id}
    assert {row["leg"] for row in rows} >= {"agent", "contact"}


async def test_a_cancel_over_http_while_the_agent_rings_is_applied_by_the_holder(
    fleet_lab: tuple[Fleet, Lab], tmp_path: Path
) -> None:
    """The same change as the CLI's: the ring is hung up, the reply says so; and Asterisk's queues list."""
    fleet, lab = fleet_lab
    port = free_port()
    fleet.extra = USERS + f"[api]\nlisten = 127.0.0.1:{port}\n"
    base = f"http://127.0.0.1:{port}/api/v1"
    lab.phone(AGENT, "noanswer")
    await lab.set(agent_ring_timeout="30s")
    agent_token = await token(lab, tmp_path, "--agent", AGENT)
    await fleet.start(APP)
    await readiness(base)
    status, queues = await call(base, agent_token, "GET", "/queues")
    assert status == 200 and {"support", "failover"} <= set(queues["queues"])

    due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    order = {"contact_number": unique_number("20102"), "due_at": due}
    status, created = await call(base, agent_token, "POST", "/callbacks", json=order)
    assert status == 201, created
    callback_id = created["callback"]["id"]
    await lab.wait_for(callback_id, lambda cb: cb.state.value == "agent_ringing")
    status, changed = await call(base, agent_token, "POST", f"/callbacks/{callback_id}/cancel?wait=10")
    assert (status, changed["outcome"]) == (200, "applied_by_holder"), changed
    assert (changed["callback"]["state"], changed["callback"]["cancelled_by"]) == ("cancelled", AGENT)
    assert [attempt["outcome"] for attempt in changed["callback"]["attempts"]] == ["cancelled"]
    await lab.wait_for(callback_id, lambda cb: cb.state.is_finished)
    assert lab.contact_invites().times(order["contact_number"]) == []
