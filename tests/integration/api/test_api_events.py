"""The live events through the whole API (gate, tickets, routes) on the lab's Redis: a browser-style
client connects with a single-use ticket, sees its own callbacks' events only, and resumes with
Last-Event-ID after a disconnect, missing nothing and getting nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from api_harness import Api
from live_client import SseClient

from asterisk_cb.service import ADMIN

pytestmark = pytest.mark.lab


async def ticket(api: Api, who: str) -> str:
    status, body, _ = await api.call("POST", "/events/tickets", who)
    assert status == 201, body
    return str(body["ticket"])


@asynccontextmanager
async def stream(api: Api, query: str, headers: dict[str, str] | None = None) -> AsyncIterator[SseClient]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        response = await session.get(f"{api.base}/events?{query}", headers=headers or {})
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        client = SseClient(response)
        try:
            yield client
        finally:
            client.close()


async def create(api: Api, who: str, agent: str, minutes: int) -> str:
    due = (datetime.now(UTC) + timedelta(hours=1, minutes=minutes)).isoformat()
    body = {"contact_number": f"+4930555{minutes:04}", "due_at": due, "agent": agent}
    status, reply, _ = await api.call("POST", "/callbacks", who, json=body)
    assert status == 201, reply
    return str(reply["callback"]["id"])


async def test_a_ticket_opens_the_stream_once_and_shows_only_ones_own_callbacks(api: Api) -> None:
    granted = await ticket(api, "1001")
    async with stream(api, f"ticket={granted}") as client:
        theirs = await create(api, "anna", "1002", 1)
        mine = await create(api, "anna", "1001", 2)
        event = await client.event()
        assert (event.event, event.json["callback_id"], event.json["agent"]) == ("created", mine, "1001")
        assert theirs not in {event.json["callback_id"]}
    status, body, _ = await api.call("GET", f"/events?ticket={granted}")  # used once already
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_a_ticket_of_a_revoked_token_opens_nothing(api: Api) -> None:
    granted = await ticket(api, "1003")
    await api.service.revoke(ADMIN, api.tokens["1003"].split("_")[1])
    status, body, _ = await api.call("GET", f"/events?ticket={granted}")
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_a_resumed_stream_delivers_exactly_the_events_in_between(api: Api) -> None:
    bearer = {"Authorization": f"Bearer {api.tokens['anna']}"}
    async with stream(api, "", bearer) as client:
        first = await create(api, "anna", "1001", 3)
        assert (await client.event()).json["callback_id"] == first
        resume_from = client.last_id
    missed = [await create(api, "anna", agent, minute) for agent, minute in (("1002", 4), ("1001", 5))]
    status, _, _ = await api.call("POST", f"/callbacks/{first}/cancel", "anna")
    assert status == 200
    assert resume_from is not None
    async with stream(api, "", {**bearer, "Last-Event-ID": resume_from}) as client:
        seen = [(frame.event, frame.json["callback_id"]) for frame in await client.events(3)]
        assert seen == [("created", missed[0]), ("created", missed[1]), ("cancelled", first)]
        later = await create(api, "anna", "1001", 6)
        assert (await client.event()).json["callback_id"] == later  # nothing doubled in between


async def test_a_bad_last_event_id_is_the_json_error(api: Api) -> None:
    status, body, _ = await api.call("GET", "/events", "1001", headers={"Last-Event-ID": "yesterday"})
    assert (status, body["error"]["field"]) == (422, "Last-Event-ID")
