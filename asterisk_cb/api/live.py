"""Live callback events as server-sent events: a panel or wallboard follows the event stream without
polling and, resuming with ``Last-Event-ID`` (the stream id), misses nothing across a reconnect.

Each client reads the one event stream from its own last id (XREAD, no consumer group: a group nobody
reads any more would hold back trimming). Waiting for news is shared: ONE ``EventHub`` per daemon blocks
on Redis and wakes every client, so a hundred clients cost one blocking connection, and their reads
(non-blocking) go a few at a time (``CONCURRENT_READS``), leaving the pool to the scheduler.

A client resuming from an id trimming has passed gets an ``event: reset`` (reload, then follow): silently
going on would hide the events it missed. Each event's data is one JSON line, so no value can break the
framing. On the wire::

    id: 1733580000000-0
    event: created
    data: {"id":"1733580000000-0","callback_id":"…","kind":"created","at":"2026-12-07T14:00:00+00:00",
           "version":1,"agent":"1001","attributes":{…}}            (one line)

    event: reset / data: {"reason": "…"} / id: <where following goes on>
    : keep-alive   (every heartbeat of silence; with an ``id:`` line when the client was moved past
                    events it was not shown)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from aiohttp import web
from redis.exceptions import RedisError

from asterisk_cb.api.auth import Recheck
from asterisk_cb.core.model import Callback, Event, EventKind
from asterisk_cb.redis_conn import LONGEST_BLOCK_S
from asterisk_cb.service_access import Actor, ErrorCode, Permission
from asterisk_cb.store.events import (
    STREAM_START,
    StreamEntry,
    StreamEvent,
    UnreadableEntry,
    stream_id_key,
)

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
BATCH = 200  # entries per read while a client catches up
CONCURRENT_READS = 8  # clients' reads in flight at once, all clients of a daemon together
AGENTS_KEPT = 10_000  # callbacks whose agent a connection remembers (least recently used go first)
UNREADABLE_KEPT = 1_000  # unreadable entries remembered as already logged
RETRY_S = 1.0  # the hub's pause after losing Redis

KEEP_ALIVE = ": keep-alive"
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once, do not buffer the response
}
RESET = "reset"

MaySee = Callable[[Actor, Event], Awaitable[bool]]

K = TypeVar("K")
V = TypeVar("V")


class EventFeed(Protocol):
    """What the live events read of the store (``Store`` has all of it)."""

    async def read_events_after(self, last_id: str, count: int) -> list[StreamEntry]: ...

    async def wait_for_events_after(self, last_id: str, block_ms: int) -> str | None: ...

    async def event_bounds(self) -> tuple[str | None, str | None]: ...

    async def events_lost_after(self, last_id: str) -> bool: ...

    async def get_many(self, callback_ids: Iterable[str]) -> list[Callback]: ...


class _Recent(Generic[K, V]):
    """A mapping that forgets its least recently used keys beyond ``size``: a long-lived connection
    (a wallboard left on for weeks) must not grow without bound."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def __contains__(self, key: K) -> bool:
        return key in self._items

    def get(self, key: K, default: V) -> V:
        if key not in self._items:
            return default
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class EventHub:
    """The daemon's one blocking follower of the event stream (a component: auxiliary, since clients
    still poll at each heartbeat without it): it knows the newest id and wakes the clients waiting
    for something newer than theirs."""

    name = "live-events"
    essential = False

    def __init__(
        self,
        store: EventFeed,
        *,
        block_ms: int = round(LONGEST_BLOCK_S * 1000),
        retry_s: float = RETRY_S,
        concurrent_reads: int = CONCURRENT_READS,
    ) -> None:
        self._store = store
        self._block_ms = block_ms
        self._retry_s = retry_s
        self._newest: str | None = None
        self._changed = asyncio.Event()
        self._unreadable: _Recent[str, None] = _Recent(UNREADABLE_KEPT)
        self._closed = False
        self.reads = asyncio.Semaphore(concurrent_reads)  # every client read of the store holds it

    @property
    def newest(self) -> str | None:
        """The newest stream id seen (None until the hub first looked)."""
        return self._newest

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every stream now and any opened later (the API's ``on_shutdown``): an aiohttp shutdown
        waits for running handlers, and a stream would otherwise run on until its next heartbeat at
        least. Its client reconnects with its Last-Event-ID and misses nothing."""
        self._closed = True
        self._wake()

    async def run(self) -> None:
        """Follow the stream until cancelled, riding out Redis being away."""
        while True:
            try:
                await self._follow()
            except (RedisError, OSError) as error:
                _raise_if_cancelled()
                log.warning("live events: Redis lost, retrying: %s: %s", type(error).__name__, error)
                await asyncio.sleep(self._retry_s)

    async def _follow(self) -> None:
        if self._newest is None:
            _, last = await self._store.event_bounds()
            self._advance(last or STREAM_START)
        while True:
            _raise_if_cancelled()
            assert self._newest is not None
            newest = await self._store.wait_for_events_after(self._newest, self._block_ms)
            if newest is not None:
                self._advance(newest)

    def _advance(self, newest: str) -> None:
        """Take ``newest`` and wake every waiter (each waits on the event of its moment)."""
        if self._newest is not None and stream_id_key(newest) <= stream_id_key(self._newest):
            return
        self._newest = newest
        self._wake()

    def _wake(self) -> None:
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    async def wait_newer(self, last_id: str, timeout_s: float) -> None:
        """Return once the hub has seen an id after ``last_id``, or after ``timeout_s``, or closed."""
        position = stream_id_key(_full_id(last_id))
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._closed and (self._newest is None or stream_id_key(self._newest) <= position):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return

    def note_unreadable(self, entry: UnreadableEntry) -> None:
        """Log an entry that does not decode once per daemon, not once per client."""
        if entry.entry_id not in self._unreadable:
            self._unreadable.put(entry.entry_id, None)
            log.warning("live events: skipping an unreadable entry %s: %s", entry.entry_id, entry.error)


def _raise_if_cancelled() -> None:
    """The Redis client can swallow a cancellation landing inside a command (it returns or fails
    instead): a loop around one looks whether its task is being cancelled, or it would run on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


# --- framing (pure) -------------------------------------------------------------------------------


def sse_frame(event: str, data: str, entry_id: str | None = None) -> bytes:
    """One server-sent event. A line break (or NUL) in a field would end it early or forge another
    field: refused, the callers' values never hold one (ids are checked, data is one JSON line)."""
    fields = ([("id", entry_id)] if entry_id is not None else []) + [("event", event), ("data", data)]
    for name, value in fields:
        if any(char in value for char in "\r\n\0"):
            raise ValueError(f"an SSE {name} must be one line: {value!r}")
    return ("".join(f"{name}: {value}\n" for name, value in fields) + "\n").encode()


def event_data(entry_id: str, event: Event, agent: str | None) -> str:
    """The event as one line of JSON (``json.dumps`` escapes every control character, and non-ASCII)."""
    return json.dumps(
        {
            "id": entry_id,
            "callback_id": event.callback_id,
            "kind": event.kind.value,
            "at": event.at.isoformat(),
            "version": event.version,
            "agent": agent,
            "attributes": event.attributes,
        },
        separators=(",", ":"),
    )


def event_frame(entry_id: str, event: Event, agent: str | None) -> bytes:
    return sse_frame(event.kind.value, event_data(entry_id, event, agent), entry_id)


def keep_alive_frame(entry_id: str | None = None) -> bytes:
    """A comment line (proxies drop silent connections); with ``entry_id``, also moves the client's
    last event id on past entries it was not shown (an id field without data fires no event), so a
    client that sees little does not resume from far back, or from an id trimming has passed."""
    if entry_id is None:
        return f"{KEEP_ALIVE}\n\n".encode()
    stream_id_key(entry_id)  # only a stream id goes out as one
    return f"{KEEP_ALIVE}\nid: {entry_id}\n\n".encode()


def reset_frame(entry_id: str, reason: str) -> bytes:
    """Tells the client to reload; its id is where following goes on, so the browser resumes there."""
    return sse_frame(RESET, json.dumps({"reason": reason}), entry_id)


# --- who sees what --------------------------------------------------------------------------------


def _reassigns(event: Event) -> bool:
    """An edit that changed the owning agent (there is no event kind of its own for it)."""
    return event.kind is EventKind.EDITED and "agent" in event.attributes.get("fields", "").split(",")


class _Audience:
    """One connection's view: which events its actor may see, and each callback's current agent,
    looked up once per batch for the callbacks it has not met (again after a reassignment)."""

    def __init__(
        self, store: EventFeed, reads: asyncio.Semaphore, actor: Actor, may_see: MaySee | None
    ) -> None:
        self._store = store
        self._reads = reads
        self._actor = actor
        self._may_see = may_see
        self._agents: _Recent[str, str | None] = _Recent(AGENTS_KEPT)
        self.last_shown = ""  # the id of the last event ``frames`` let through

    def regard(self, actor: Actor) -> None:
        """The actor as its role is now (a role changed while the stream runs applies from here)."""
        self._actor = actor

    async def frames(self, entries: Sequence[StreamEvent]) -> bytes:
        previous = await self._learn_agents(entries)
        frames = []
        for entry in entries:
            event = entry.event
            agent = self._agents.get(event.callback_id, None)
            # A reassignment shows to the agent who had it too: its panel drops the callback.
            owners = {agent, previous.get(event.callback_id)} if _reassigns(event) else {agent}
            if await self._visible(event, owners):
                frames.append(event_frame(entry.entry_id, event, agent))
                self.last_shown = entry.entry_id
        return b"".join(frames)

    async def _visible(self, event: Event, owners: set[str | None]) -> bool:
        if self._may_see is not None:
            return await self._may_see(self._actor, event)
        return self._actor.may(Permission.VIEW_ALL) or self._actor.name in owners

    async def _learn_agents(self, entries: Sequence[StreamEvent]) -> dict[str, str | None]:
        """Look up the agents of callbacks not met yet or reassigned; their former agents."""
        stale = {
            entry.event.callback_id
            for entry in entries
            if entry.event.callback_id not in self._agents or _reassigns(entry.event)
        }
        if not stale:
            return {}
        previous = {callback_id: self._agents.get(callback_id, None) for callback_id in stale}
        async with self._reads:
            callbacks = await self._store.get_many(sorted(stale))
        found = {callback.id: callback.agent for callback in callbacks}
        for callback_id in stale:
            self._agents.put(callback_id, found.get(callback_id))  # None: purged, seen by VIEW_ALL only
        return previous


# --- the handler ----------------------------------------------------------------------------------


class _BadPosition(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _later(entry_id: str, other: str | None) -> str:
    if other is None or stream_id_key(_full_id(entry_id)) >= stream_id_key(other):
        return entry_id
    return other


def _full_id(entry_id: str) -> str:
    return STREAM_START if entry_id == "0" else entry_id


def _requested_position(request: web.Request) -> str | None:
    """Where the client asks to go on from: ``Last-Event-ID`` (a reconnect), else ``?since=`` (a first
    connect that wants history; ``0``: all there is); None: only new events. An empty header counts
    as none (an EventSource sends none until it has an id)."""
    header = request.headers.get("Last-Event-ID", "").strip()
    field, text = ("Last-Event-ID", header) if header else ("since", request.query.get("since"))
    if text is None:
        return None
    try:
        stream_id_key(_full_id(text) if field == "since" else text)
    except ValueError:
        raise _BadPosition(field, f"{field} must be an event id <ms>-<seq>, as sent in id:") from None
    return _full_id(text)


async def _start(store: EventFeed, requested: str | None) -> tuple[str, bool]:
    """The id to read after, and whether the client must reload (what it asks for is gone)."""
    if requested is not None and not await store.events_lost_after(requested):
        return requested, False
    _, last = await store.event_bounds()
    return last or STREAM_START, requested is not None


async def stream_events(
    request: web.Request,
    *,
    store: EventFeed,
    hub: EventHub,
    actor: Actor,
    may_see: MaySee | None = None,
    heartbeat_s: float = HEARTBEAT_S,
    recheck: Recheck | None = None,
) -> web.StreamResponse:
    """The live events ``actor`` may see, as ``text/event-stream``, until the client goes.

    Visible: every event with VIEW_ALL, else those of callbacks the actor is the current agent of (and
    the reassignment taking one away); ``may_see``, when given, decides instead. A bad
    ``Last-Event-ID``/``since`` is a 422 JSON error; a comment line goes out every ``heartbeat_s``
    of silence (proxies drop idle connections). Entries that do not decode are skipped, not sent.
    ``recheck``, every ``heartbeat_s``: the stream ends once the credential it opened with is no more
    (a revoked token), and follows the actor's role as it is now."""
    try:
        requested = _requested_position(request)
    except _BadPosition as bad:
        error = {"code": ErrorCode.INVALID.value, "field": bad.field, "message": bad.message}
        return web.json_response({"error": error}, status=422)
    async with hub.reads:
        position, reset = await _start(store, requested)
    response = web.StreamResponse(headers=SSE_HEADERS)
    try:
        await response.prepare(request)
        if reset:
            await response.write(reset_frame(position, "the events after your last id are gone: reload"))
        audience = _Audience(store, hub.reads, actor, may_see)
        await _Connection(request, response, store, hub, audience, heartbeat_s, recheck).follow(position)
    except ConnectionResetError:
        pass  # the client went: nothing to report
    except RedisError as error:  # the client reconnects with its Last-Event-ID and misses nothing
        log.warning("live events: Redis lost, ending a stream: %s: %s", type(error).__name__, error)
    return response


@dataclass
class _Connection:
    """One client's stream: read after its position, send what it may see, wait for news."""

    request: web.Request
    response: web.StreamResponse
    store: EventFeed
    hub: EventHub
    audience: _Audience
    heartbeat_s: float
    recheck: Recheck | None = None

    async def follow(self, position: str) -> None:
        clock = asyncio.get_running_loop().time
        last_write = last_check = clock()
        client_position = position  # the last id the client holds
        while self._connected():
            if clock() - last_check >= self.heartbeat_s:
                if not await self._still_allowed():
                    return
                last_check = clock()
            known = self.hub.newest  # before the read: all up to it is in the stream by then
            async with self.hub.reads:
                entries = await self.store.read_events_after(position, BATCH)
            for entry in entries:
                if isinstance(entry, UnreadableEntry):
                    self.hub.note_unreadable(entry)
            events = [entry for entry in entries if isinstance(entry, StreamEvent)]
            frames = await self.audience.frames(events)
            if frames:
                await self.response.write(frames)
                last_write, client_position = clock(), self.audience.last_shown
            if entries:
                position = entries[-1].entry_id  # unreadable or unseen entries move the client on too
            if clock() - last_write >= self.heartbeat_s:
                await self.response.write(keep_alive_frame(None if position == client_position else position))
                last_write, client_position = clock(), position
            if len(entries) < BATCH:  # caught up to ``known``: wait for more (an id the hub saw may be gone)
                await self.hub.wait_newer(_later(position, known), last_write + self.heartbeat_s - clock())

    async def _still_allowed(self) -> bool:
        if self.recheck is None:
            return True
        actor = await self.recheck()
        if actor is None:
            log.info("live events: ending a stream whose credential is no more")
            return False
        self.audience.regard(actor)
        return True

    def _connected(self) -> bool:
        transport = self.request.transport
        return not self.hub.closed and transport is not None and not transport.is_closing()
