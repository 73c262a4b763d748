"""The live events (server-sent events) over a real HTTP connection, against the lab's Redis."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import pytest
from live_client import Lab

from asterisk_cb.api.live import CONCURRENT_READS
from asterisk_cb.core.model import Event, EventKind
from asterisk_cb.service_access import Actor, Permission
from asterisk_cb.store import StreamEntry

GOOD = {"kind": "created", "at": "1", "v": "1"}

pytestmark = pytest.mark.lab


async def test_events_arrive_live_as_one_json_line_each(live_lab: Lab) -> None:
    client = await live_lab.connect()
    response = client.response
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    callback_id = await live_lab.schedule("1001")
    await live_lab.reschedule(callback_id)
    created, rescheduled = await client.events(2)
    assert (created.event, rescheduled.event) == ("created", "rescheduled")
    data = created.json
    assert data == {
        "id": created.id,
        "callback_id": callback_id,
        "kind": "created",
        "at": data["at"],
        "version": 1,
        "agent": "1001",
        "attributes": data["attributes"],
    }
    assert datetime.fromisoformat(data["at"]).utcoffset() == timedelta(0)
    assert rescheduled.json["version"] == 2
    assert "due_at" in rescheduled.json["attributes"]


async def test_a_first_connect_gets_only_new_events_unless_it_asks_for_history(live_lab: Lab) -> None:
    before = await live_lab.schedule()
    new_only = await live_lab.connect()
    history = await live_lab.connect(since="0")
    after = await live_lab.schedule()
    assert (await new_only.event()).json["callback_id"] == after
    assert [frame.json["callback_id"] for frame in await history.events(2)] == [before, after]


async def test_an_agent_sees_only_its_own_callbacks_and_losing_one(live_lab: Lab) -> None:
    agent_1001, agent_1002, viewer = [await live_lab.connect(name) for name in ("1001", "1002", "viewer")]
    mine = await live_lab.schedule("1001")
    theirs = await live_lab.schedule("1002")
    assert [(f.event, f.json["callback_id"]) for f in await agent_1001.events(1)] == [("created", mine)]
    assert [(f.event, f.json["callback_id"]) for f in await agent_1002.events(1)] == [("created", theirs)]
    await live_lab.reassign(mine, "1002")  # the reassignment shows to both agents
    assert [(f.event, f.json["agent"]) for f in await agent_1001.events(1)] == [("edited", "1002")]
    assert [(f.event, f.json["callback_id"]) for f in await agent_1002.events(1)] == [("edited", mine)]
    await live_lab.reschedule(mine)  # now 1002's only
    marker = await live_lab.schedule("1001")
    assert [(f.event, f.json["callback_id"]) for f in await agent_1001.events(1)] == [("created", marker)]
    assert [(f.event, f.json["callback_id"]) for f in await agent_1002.events(1)] == [("rescheduled", mine)]
    seen = [(f.event, f.json["callback_id"]) for f in await viewer.events(5)]
    assert seen == [
        ("created", mine),
        ("created", theirs),
        ("edited", mine),
        ("rescheduled", mine),
        ("created", marker),
    ]


async def test_a_may_see_hook_decides_instead(live_lab: Lab) -> None:
    async def only_reschedules_for_viewers(actor: Actor, event: Event) -> bool:
        return actor.may(Permission.VIEW_ALL) and event.kind is EventKind.RESCHEDULED

    live_lab.may_see = only_reschedules_for_viewers
    live_lab.heartbeat_s = 0.2
    viewer, agent = await live_lab.connect("viewer"), await live_lab.connect("1001")
    callback_id = await live_lab.schedule("1001")
    await live_lab.reschedule(callback_id)
    (rescheduled,) = await viewer.events(1)
    assert (rescheduled.event, rescheduled.json["agent"]) == ("rescheduled", "1001")
    frames = [await agent.frame()]
    while frames[-1].id != rescheduled.id:  # the agent's stream passes both events, showing none
        frames.append(await agent.frame())
    assert [frame.event for frame in frames] == [None] * len(frames)


async def test_a_resume_with_last_event_id_delivers_exactly_what_came_between(live_lab: Lab) -> None:
    client = await live_lab.connect()
    seen = [await live_lab.schedule() for _ in range(2)]
    assert [frame.json["callback_id"] for frame in await client.events(2)] == seen
    client.close()
    missed = [await live_lab.schedule() for _ in range(3)]
    again = await live_lab.connect(headers={"Last-Event-ID": str(client.last_id)})
    later = await live_lab.schedule()
    frames = await again.events(4)
    assert [frame.json["callback_id"] for frame in frames] == [*missed, later]
    assert [frame.id for frame in frames] == [frame.json["id"] for frame in frames]


async def test_a_resume_from_a_trimmed_past_id_gets_reset_then_follows(live_lab: Lab) -> None:
    client = await live_lab.connect()
    await live_lab.schedule()
    gone = (await client.event()).id
    client.close()
    await asyncio.sleep(0.01)
    await live_lab.store.trim_events(timedelta(0))
    kept = await live_lab.schedule()
    _, end = await live_lab.store.event_bounds()
    again = await live_lab.connect(headers={"Last-Event-ID": str(gone)})
    reset = await again.event()
    assert (reset.event, reset.id) == ("reset", end)
    assert "reload" in reset.json["reason"]
    later = await live_lab.schedule()
    assert (await again.event()).json["callback_id"] == later  # not ``kept``: the reload shows it
    assert kept != later


@pytest.mark.parametrize("bad", ["abc", "1-", "-1", "1-2-3", "1.5-0", "18446744073709551616-0", "0", "1 -0"])
async def test_an_invalid_last_event_id_is_a_422_before_streaming(live_lab: Lab, bad: str) -> None:
    response = await live_lab.session.get(f"{live_lab.url}/events/admin", headers={"Last-Event-ID": bad})
    assert response.status == 422
    error = (await response.json())["error"]
    assert (error["code"], error["field"]) == ("invalid", "Last-Event-ID")
    assert "<ms>-<seq>" in error["message"]


async def test_an_invalid_since_is_a_422(live_lab: Lab) -> None:
    response = await live_lab.session.get(f"{live_lab.url}/events/admin", params={"since": "yesterday"})
    assert response.status == 422
    assert (await response.json())["error"]["field"] == "since"


async def test_heartbeats_come_and_move_a_filtered_client_past_what_it_was_not_shown(live_lab: Lab) -> None:
    live_lab.heartbeat_s = 0.3
    client = await live_lab.connect("1002")
    assert (await client.frame(timeout_s=2)).comments == ["keep-alive"]
    assert client.last_id is None
    await live_lab.schedule("1001")
    _, newest = await live_lab.store.event_bounds()
    beat = await client.frame(timeout_s=2)
    assert (beat.comments, beat.event, beat.id) == (["keep-alive"], None, newest)
    assert (await client.frame(timeout_s=2)).id is None  # said once


async def test_unreadable_entries_are_skipped_and_logged_once(
    live_lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    clients = [await live_lab.connect() for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="asterisk_cb.api.live"):
        await live_lab.redis.xadd(live_lab.store.keys.events, {"cb": "x", "kind": "no-such-kind"})
        after = await live_lab.schedule()
        for client in clients:
            assert (await client.event()).json["callback_id"] == after
    assert sum("unreadable" in record.getMessage() for record in caplog.records) == 1


async def test_a_client_leaving_ends_its_handler_without_a_traceback(
    live_lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    live_lab.heartbeat_s = 0.1
    with caplog.at_level(logging.DEBUG):
        clients = [await live_lab.connect() for _ in range(5)]
        await live_lab.schedule()
        for client in clients:
            await client.event()
        assert live_lab.open_connections() == 5
        for client in clients:
            client.close()
        await live_lab.schedule()  # written to closed connections
        async with asyncio.timeout(2):  # within a few heartbeats each handler finds its client gone
            while live_lab.open_connections():  # noqa: ASYNC110 - aiohttp holds the count
                await asyncio.sleep(0.05)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []


async def test_fifty_clients_share_one_hub(live_lab: Lab) -> None:
    """Every client gets the event; Redis connections stay near one blocking wait plus the reads
    allowed at once, not one per client."""
    clients = await asyncio.gather(*(live_lab.connect() for _ in range(50)))
    await asyncio.sleep(0.2)  # every handler now waits on the hub
    callback_id = await live_lab.schedule()
    frames = await asyncio.gather(*(client.event() for client in clients))
    assert {frame.json["callback_id"] for frame in frames} == {callback_id}
    connections = await _connections_of(live_lab)
    print(f"50 SSE clients: {connections} Redis connections of the store's client")
    assert connections <= CONCURRENT_READS + 2  # the hub's wait, the reads, the service's writes


async def _connections_of(lab: Lab) -> int:
    name = await lab.redis.client_getname()
    clients = await lab.redis.client_list()
    return sum(1 for client in clients if client["name"] == name)


async def test_a_client_caught_up_waits_even_when_the_hubs_newest_entry_is_gone(live_lab: Lab) -> None:
    """The hub saw an id no read returns (deleted): the client must not read again and again."""
    reads = 0
    read_events_after = live_lab.store.read_events_after

    async def counted(last_id: str, count: int) -> list[StreamEntry]:
        nonlocal reads
        reads += 1
        return await read_events_after(last_id, count)

    live_lab.store.read_events_after = counted  # type: ignore[method-assign]
    client = await live_lab.connect()
    await live_lab.schedule()
    await client.event()
    gone = await live_lab.redis.xadd(live_lab.store.keys.events, {"cb": "x", **GOOD})
    await live_lab.redis.xdel(live_lab.store.keys.events, gone)
    async with asyncio.timeout(2):
        while live_lab.hub.newest != gone:  # noqa: ASYNC110 - the hub's own task sets it
            await asyncio.sleep(0.01)
    reads_then = reads
    await asyncio.sleep(0.5)
    assert reads - reads_then <= 1
    later = await live_lab.schedule()
    assert (await client.event()).json["callback_id"] == later


async def test_a_stream_ends_once_its_credential_is_no_more_and_follows_a_changed_role(live_lab: Lab) -> None:
    """Checked again at each heartbeat: a role given meanwhile applies, a revoked token ends the stream."""
    current: list[Actor | None] = [Actor("1002", frozenset({Permission.SCHEDULE}))]

    async def recheck() -> Actor | None:
        return current[0]

    live_lab.heartbeat_s, live_lab.recheck = 0.3, recheck
    client = await live_lab.connect("1002")
    current[0] = Actor("1002", frozenset({Permission.VIEW_ALL}))  # made a supervisor meanwhile
    await asyncio.sleep(0.5)  # a heartbeat passes: the stream takes the role it holds now
    others = await live_lab.schedule("1001")
    assert (await client.event(timeout_s=3)).json["callback_id"] == others
    current[0] = None  # the token is revoked
    async with asyncio.timeout(3):
        while (line := await client.response.content.readline()) != b"":
            assert b"created" not in line or b"data" not in line
    assert client.response.content.at_eof()
