"""The live events' framing (pure) and the hub's waking, without Redis or HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import ConnectionError as RedisConnectionError

from asterisk_cb.api.live import EventHub, event_frame, keep_alive_frame, reset_frame, sse_frame
from asterisk_cb.core.model import Callback, Event, EventKind
from asterisk_cb.store import StreamEntry, UnreadableEntry

AT = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
BREAKERS = ["\n", "\r", "\r\n", "\n\ndata: forged", "\nid: 9-9\n", "\x00", "\u2028", "\u0085", "é"]


def parse(frame: bytes) -> list[tuple[str, str]]:
    """A frame as an EventSource splits it: lines on CR, LF or CRLF, up to the blank line ending it."""
    text = frame.decode()
    assert text.endswith("\n\n")
    lines = text[:-2].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    assert "" not in lines  # no early end of the event
    return [(name, value.removeprefix(" ")) for name, _, value in (line.partition(":") for line in lines)]


@pytest.mark.parametrize("breaker", BREAKERS)
def test_an_attribute_cannot_break_the_framing(breaker: str) -> None:
    event = Event("cb1", EventKind.EDITED, AT, 3, {"note": f"a{breaker}b", f"k{breaker}": "v"})
    fields = parse(event_frame("5-1", event, "1001"))
    assert [name for name, _ in fields] == ["id", "event", "data"]
    data = json.loads(fields[2][1])
    assert data["attributes"] == event.attributes


@given(
    attributes=st.dictionaries(st.text(), st.text()),
    agent=st.none() | st.text(),
    callback_id=st.text(min_size=1),
)
def test_any_event_is_one_data_line_of_json_that_reads_back(
    attributes: dict[str, str], agent: str | None, callback_id: str
) -> None:
    event = Event(callback_id, EventKind.CREATED, AT, 1, attributes)
    fields = parse(event_frame("1700000000000-0", event, agent))
    assert fields[:2] == [("id", "1700000000000-0"), ("event", "created")]
    assert json.loads(fields[2][1]) == {
        "id": "1700000000000-0",
        "callback_id": callback_id,
        "kind": "created",
        "at": "2026-12-07T14:00:00+00:00",
        "version": 1,
        "agent": agent,
        "attributes": attributes,
    }


@pytest.mark.parametrize("breaker", ["\n", "\r", "\x00"])
def test_a_field_with_a_line_break_is_refused(breaker: str) -> None:
    for event, data, entry_id in [
        (f"x{breaker}", "{}", "1-0"),
        ("x", f"{{{breaker}}}", "1-0"),
        ("x", "{}", f"1-0{breaker}"),
    ]:
        with pytest.raises(ValueError, match="one line"):
            sse_frame(event, data, entry_id)


def test_the_heartbeat_is_a_comment_and_may_carry_the_position() -> None:
    assert keep_alive_frame() == b": keep-alive\n\n"
    assert keep_alive_frame("12-3") == b": keep-alive\nid: 12-3\n\n"
    with pytest.raises(ValueError):
        keep_alive_frame("12-3\ndata: x")


def test_a_reset_names_where_following_goes_on() -> None:
    assert parse(reset_frame("7-0", "gone")) == [
        ("id", "7-0"),
        ("event", "reset"),
        ("data", '{"reason": "gone"}'),
    ]


class Feed:
    """An event feed whose newest id the test sets; ``failures`` make the waits fail first."""

    def __init__(self, failures: int = 0, swallow_cancel: bool = False) -> None:
        self.newest = "0-0"
        self.failures = failures
        self.swallow_cancel = swallow_cancel
        self.changed = asyncio.Event()

    async def wait_for_events_after(self, last_id: str, block_ms: int) -> str | None:
        if self.failures:
            self.failures -= 1
            raise RedisConnectionError("gone")
        try:
            await asyncio.wait_for(self.changed.wait(), block_ms / 1000)
        except TimeoutError:
            return None
        except asyncio.CancelledError:
            if not self.swallow_cancel:
                raise
            return None  # as the Redis client sometimes does
        self.changed.clear()
        return self.newest

    async def event_bounds(self) -> tuple[str | None, str | None]:
        return None, None

    async def read_events_after(self, last_id: str, count: int) -> list[StreamEntry]:
        return []

    async def events_lost_after(self, last_id: str) -> bool:
        return False

    async def get_many(self, callback_ids: Iterable[str]) -> list[Callback]:
        return []

    def add(self, entry_id: str) -> None:
        self.newest = entry_id
        self.changed.set()


async def test_the_hub_wakes_every_waiter_behind_a_new_id() -> None:
    feed = Feed()
    hub = EventHub(feed, block_ms=50)
    running = asyncio.create_task(hub.run())
    waiters = [asyncio.create_task(hub.wait_newer("0-0", 5)) for _ in range(10)]
    ahead = asyncio.create_task(hub.wait_newer("10-0", 0.3))
    await asyncio.sleep(0.1)
    assert not any(waiter.done() for waiter in waiters)
    feed.add("9-0")
    async with asyncio.timeout(1):
        await asyncio.gather(*waiters)
    assert hub.newest == "9-0"
    assert not ahead.done()  # waits for more than 9-0, then times out
    await ahead
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_the_hub_rides_out_redis_failures_and_stops_even_if_a_cancel_is_swallowed() -> None:
    feed = Feed(failures=2, swallow_cancel=True)
    hub = EventHub(feed, block_ms=50, retry_s=0.01)
    running = asyncio.create_task(hub.run())
    await asyncio.sleep(0.1)
    feed.add("3-1")
    await hub.wait_newer("0-0", 1)
    assert hub.newest == "3-1"
    running.cancel()
    done, _ = await asyncio.wait([running], timeout=1)
    assert done and running.cancelled()


async def test_closing_the_hub_releases_every_waiter_at_once() -> None:
    hub = EventHub(Feed())
    waiters = [asyncio.create_task(hub.wait_newer("0-0", 30)) for _ in range(3)]
    await asyncio.sleep(0.01)
    hub.close()
    async with asyncio.timeout(1):
        await asyncio.gather(*waiters)
    assert hub.closed
    await asyncio.wait_for(hub.wait_newer("0-0", 30), 1)  # a wait after closing returns at once


def test_an_unreadable_entry_is_logged_once_per_hub(caplog: pytest.LogCaptureFixture) -> None:
    hub = EventHub(Feed())
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            hub.note_unreadable(UnreadableEntry("5-0", {"cb": "x"}, "bad kind"))
        hub.note_unreadable(UnreadableEntry("6-0", {"cb": "y"}, "bad kind"))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "5-0" in messages[0]
    assert "6-0" in messages[1]
