"""The schedule in Redis: callbacks, their indexes, leased claims with fencing, and the event stream.

Layout (names in ``asterisk_cb.keys``): one hash per callback (the codec's fields less the id, plus
store bookkeeping fields starting with ``_``: ``_live`` while a call exists, ``_tok``/``_own`` while
claimed, ``_lk`` while its call's locks are taken), its attempt history in a separate string (inside
the hash, a value over 64 bytes would make Redis drop the compact listpack encoding and multiply the
hash's size), a sorted set of scheduled callbacks by ``next_at``, a sorted set of claimed callbacks by
lease expiry, secondary indexes (sets per state and per agent; hashes value -> ids for contact numbers
and originating calls), the call locks (per agent, per contact number, line pools), and ONE event
stream for all callbacks (a stream per callback would cost ~5 KB each: stream nodes are preallocated).
Measured on Redis 7.0 with 100,000 scheduled callbacks: about 970 bytes each, event stream included.

Every change is one Lua script (``asterisk_cb/lua``), so a callback, its place in the schedule, its
indexes and its events never disagree, and lease expiry is judged on the Redis server's clock only.

Who may write:

* A scheduler *claims* due callbacks (``claim``): each claim carries a fencing token (a global counter,
  so tokens only grow) and a lease. Every write of the holder (``commit``, ``renew``, ``release``)
  presents the token and is refused with ``StaleToken`` once someone else holds the callback, or with
  ``LeaseExpired`` once its lease ran out on the server clock, even if nobody took it over yet. A holder
  paused past its lease (SIGSTOP, GC, network stall) therefore cannot write, and because it must commit
  the attempt (with its ARI channel ids) before it originates, it cannot dial either.
* A person (API, CLI, feature code through the service) changes a callback with ``edit``: an optimistic
  write checked against the version the person read (``VersionConflict`` otherwise). It is refused while
  the callback is live (``CallbackLive``: a call exists). On a callback that is claimed but not live yet
  the person wins: the claim is revoked, the holder's next fenced write fails, and it drops the work.
* Before the holder commits a ring it takes its call's locks (``take_call_locks``): the agent's (agent
  phase) and the contact number's, both or neither, and a line of a pool shared by every daemon when
  calls are capped. They name the callback and the claim's token and hold while that lease runs or the
  call lives, so no other callback (of any daemon) rings the same agent or number meanwhile, a holder
  that vanished before ringing lets them lapse with its lease, and the resumer of a live call re-takes
  them. ``release_call_locks`` gives them back when the run ends; the write that ends a call ends them
  too, so even a holder killed right after that write leaves nothing held.
* A person's change of a live callback is a *request* (``request_change``): stored on the callback
  (field ``_req``, so a crash loses nothing) and announced on the requests channel. Only the holder can
  hang the call up, so the holder applies it as a lifecycle input through its fenced ``commit``
  (``applying=``), or refuses it with ``settle``; either way the outcome is pushed to a list the
  requester waits on (``await_outcome``). Every holder commit returns the pending request (the claim's
  ``request``), and while one is pending the holder keeps the callback even if its call ended, so a
  request is never left behind; a claim taken over carries it too. One request at a time: a second one
  (or a direct edit) is refused with ``ChangePending`` until the first is dealt with.
* An expired lease makes the callback claimable again by any scheduler. If the callback was live, the
  new claim is a *resume* claim: the executor must look up the channels of ``current_attempt`` and follow
  the call, never dial again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from asterisk_cb.core.codec import (
    FIELDS,
    CodecError,
    callback_from_fields,
    callback_to_fields,
    event_from_fields,
    event_to_fields,
    request_from_text,
    request_to_text,
)
from asterisk_cb.core.codec import time_to_ms as _time_to_ms
from asterisk_cb.core.inputs import ChangeRequest, Waiting
from asterisk_cb.core.model import Callback, Event, State
from asterisk_cb.core.settings import Layers, is_settings_scope, runtime_layers
from asterisk_cb.keys import Keys, check_callback_id
from asterisk_cb.redis_conn import RedisClient

log = logging.getLogger(__name__)

DEFAULT_LEASE_MS = 30_000
# A retried creation is recognised for at least this long (and at most twice as long).
IDEMPOTENCY_WINDOW = timedelta(days=1)
_VERSION_FIELD = FIELDS["version"]
_ID_FIELD = FIELDS["id"]  # not stored: the key already holds the id (saves memory on every callback)
# Kept in its own string key: a hash field over 64 bytes makes Redis drop the compact hash encoding.
_HISTORY_FIELD = FIELDS["attempts"]
# The fields the scripts read a due-set score from (next_at, else due_at), see common.lua.
_DUE_FIELDS = f"{FIELDS['next_at']} {FIELDS['due_at']}"
# Store bookkeeping field in the callback hash (the codec's short names never start with "_").
_LIVE_FIELD = "_live"  # "1" while a call exists
_REQUEST_FIELD = "_req"  # a person's change request waiting for the holder (codec JSON)
# How long a change request's outcome waits for its requester (who normally takes it within seconds).
OUTCOME_TTL = timedelta(hours=1)


class StoreError(Exception):
    """Base of every refusal of the store."""


class CallbackNotFound(StoreError):
    """No callback with that id."""


class DuplicateCallback(StoreError):
    """A callback with that id already exists (ids must be unique; idempotency keys are the retry path)."""


class VersionConflict(StoreError):
    """Someone changed the callback since it was read: read it again and decide again."""


class CallbackLive(StoreError):
    """A person may not change a callback while its call lives."""


class CallbackNotLive(StoreError):
    """A change request needs a live call; without one the person changes the callback directly."""


class ChangePending(StoreError):
    """Another change request of this callback has not been applied or refused yet."""

    def __init__(self, pending: str) -> None:
        try:
            self.pending: ChangeRequest | None = request_from_text(pending)
        except CodecError:
            self.pending = None
        super().__init__(f"change request pending: {pending}")


class LeaseLost(StoreError):
    """The writer no longer holds the callback: it must stop acting on it (and must not dial)."""


class StaleToken(LeaseLost):
    """Another claim (or a person's edit) replaced the writer's claim."""


class LeaseExpired(LeaseLost):
    """The writer's lease ran out on the Redis server clock."""


_ERRORS: dict[str, type[StoreError]] = {
    "ACB_NOTFOUND": CallbackNotFound,
    "ACB_EXISTS": DuplicateCallback,
    "ACB_VERSION": VersionConflict,
    "ACB_LIVE": CallbackLive,
    "ACB_NOTLIVE": CallbackNotLive,
    "ACB_PENDING": ChangePending,
    "ACB_STALE": StaleToken,
    "ACB_EXPIRED": LeaseExpired,
}


@dataclass(frozen=True)
class Claim:
    """A callback held by one scheduler: the token to present on every write, until ``lease_until_ms``.

    ``resume`` is true when the callback was live when claimed: its previous holder vanished mid-call,
    so the executor looks up the channels of ``callback.current_attempt`` instead of dialling.
    ``request`` is a person's change waiting for the holder (as claimed, or after the last commit): the
    holder applies it (``commit(..., applying=request)``) or refuses it (``settle``) next.
    """

    callback: Callback
    token: int
    resume: bool
    owner: str
    lease_until_ms: int
    request: ChangeRequest | None = None


@dataclass(frozen=True)
class RequestOutcome:
    """What the holder did with a change request: applied (the callback is now at ``version``) or
    refused (``detail`` says why; the callback is unchanged)."""

    applied: bool
    detail: str
    version: int

    def to_text(self) -> str:
        return json.dumps({"applied": self.applied, "detail": self.detail, "version": self.version})

    @classmethod
    def from_text(cls, text: str) -> RequestOutcome:
        values = json.loads(text)
        return cls(bool(values["applied"]), str(values["detail"]), int(values["version"]))


@dataclass(frozen=True)
class ClaimBatch:
    """What one claim round returned, with the server's clock so callers can sleep without skew."""

    claims: tuple[Claim, ...]
    server_now_ms: int
    next_wake_ms: int | None  # earliest due time or lease expiry still pending; None when nothing is


@dataclass(frozen=True)
class LinePool:
    """A cap on simultaneous callback calls shared by every daemon on the Redis (e.g. the outbound
    context's channels): at most ``cap`` calls hold a line of pool ``name`` at once."""

    name: str
    cap: int


@dataclass(frozen=True)
class CallLocks:
    """What a callback's call holds while it lives: its agent (None in the queue phase: no agent is
    rung), its contact's number, and, when calls are capped, a line of ``lines``."""

    agent: str | None
    contact: str
    lines: LinePool | None = None


@dataclass(frozen=True)
class Created:
    """The callback a create request stands for; ``created`` is False for a replayed idempotency key."""

    callback: Callback
    created: bool


@dataclass(frozen=True)
class StreamEvent:
    """An event read from the stream through a consumer group; ack ``entry_id`` once handled."""

    entry_id: str
    event: Event


@dataclass(frozen=True)
class UnreadableEntry:
    """A stream entry that does not decode (``error`` says why): its reader parks it and goes on."""

    entry_id: str
    fields: dict[str, str]
    error: str


StreamEntry = StreamEvent | UnreadableEntry


@dataclass(frozen=True)
class GroupInfo:
    """One consumer group of the event stream, as ``XINFO GROUPS`` tells it. ``lag``: entries not yet
    delivered to the group (None when Redis cannot tell: before 7.0, or after some deletions)."""

    name: str
    consumers: int
    pending: int
    last_delivered: str
    lag: int | None


# A group's dead letters beyond this many (approximately) are dropped, oldest first.
DEAD_LETTERS_KEPT = 10_000


class _Script(enum.Enum):
    CREATE = "create"
    WRITE = "write"
    CLAIM = "claim"
    RENEW = "renew"
    RELEASE = "release"
    TRIM = "trim"
    PURGE = "purge"
    LOCK = "lock"
    UNLOCK = "unlock"
    HELD = "held"
    REQUEST = "request"
    SETTLE = "settle"


def _load_scripts(redis: RedisClient) -> dict[_Script, AsyncScript]:
    """Register each script with the shared helpers prepended (Redis caches them by SHA)."""
    folder = resources.files("asterisk_cb") / "lua"
    common = (folder / "common.lua").read_text()
    return {
        script: redis.register_script(common + "\n" + (folder / f"{script.value}.lua").read_text())
        for script in _Script
    }


class Store:
    """The Redis schedule of one namespace. Share one instance per process (scripts are registered once)."""

    def __init__(self, redis: RedisClient, keys: Keys | None = None) -> None:
        self.redis = redis
        self.keys = keys or Keys()
        self._scripts = _load_scripts(redis)

    async def _run(self, script: _Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await self._scripts[script](keys=list(keys), args=list(args))
        except ResponseError as error:
            code, _, detail = str(error).partition(" ")
            if code in _ERRORS:
                raise _ERRORS[code](detail) from None
            raise

    # --- creation and reads -------------------------------------------------------------------------

    async def create(
        self,
        callback: Callback,
        events: Sequence[Event],
        *,
        idempotency_key: str | None = None,
    ) -> Created:
        """Store a new callback with its creation events, once.

        A request retried with the same ``idempotency_key`` (within ``IDEMPOTENCY_WINDOW``) gets the first
        callback back (``created=False``) and nothing is written: a client that lost the reply cannot
        schedule the same call twice.
        """
        if callback.state is not State.SCHEDULED:
            raise ValueError(f"{callback.id}: a new callback must be scheduled, not {callback.state.value}")
        args = [
            self.keys.callback_prefix,
            callback.id,
            self.keys.wake_channel,
            idempotency_key or "",
            self.keys.idempotency_prefix,
            int(IDEMPOTENCY_WINDOW.total_seconds()),
            _due_ms(callback),
            self.keys.history_prefix,
            self._change(None, callback, events),
        ]
        created, callback_id = await self._run(_Script.CREATE, [self.keys.due, self.keys.events], args)
        if created:
            return Created(callback, True)
        first = await self.get(callback_id)
        if first is None:
            raise CallbackNotFound(f"idempotency key {idempotency_key!r} names {callback_id}, which is gone")
        return Created(first, False)

    async def get(self, callback_id: str) -> Callback | None:
        found = await self.get_many([callback_id])
        return found[0] if found else None

    async def get_many(self, callback_ids: Iterable[str]) -> list[Callback]:
        """The callbacks that exist among ``callback_ids``, in the given order."""
        wanted = list(callback_ids)
        async with self.redis.pipeline(transaction=False) as pipe:
            for callback_id in wanted:
                pipe.hgetall(self.keys.callback(callback_id))
                pipe.get(self.keys.history(callback_id))
            replies = await pipe.execute()
        records = zip(wanted, replies[::2], replies[1::2], strict=True)
        return [_decode(callback_id, stored, history) for callback_id, stored, history in records if stored]

    async def ids_in_state(self, state: State) -> set[str]:
        return set(await self.redis.smembers(self.keys.state_index(state.value)))

    async def ids_for_agent(self, agent: str) -> set[str]:
        return set(await self.redis.smembers(self.keys.agent_index(agent)))

    async def ids_for_contact(self, contact_number: str) -> set[str]:
        return await self._hash_index_ids(self.keys.contact_index, contact_number)

    async def ids_for_call(self, uniqueid_or_linkedid: str) -> set[str]:
        """Callbacks requested from a call, by the uniqueid or the linkedid of the originating channel."""
        return await self._hash_index_ids(self.keys.call_index, uniqueid_or_linkedid)

    async def _hash_index_ids(self, index: str, value: str) -> set[str]:
        return set((await self.redis.hget(index, value) or "").split())

    async def count_by_state(self) -> dict[State, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for state in State:
                pipe.scard(self.keys.state_index(state.value))
            counts = await pipe.execute()
        return dict(zip(State, counts, strict=True))

    # --- changes --------------------------------------------------------------------------------------

    async def edit(self, before: Callback, after: Callback, events: Sequence[Event]) -> Callback:
        """A person's change (edit, reschedule, cancel): applied only if the callback is still at
        ``before.version`` and not live; revokes a claim that is not live yet (see the module doc)."""
        await self._write(before, after, events, token=None)
        return after

    async def commit(
        self,
        claim: Claim,
        after: Callback,
        events: Sequence[Event],
        applying: ChangeRequest | None = None,
    ) -> Claim:
        """The holder's transition, fenced by its token and lease; ``applying`` names the person's
        change request this transition applies (its outcome goes to the requester atomically).

        If ``after`` is live (e.g. the attempt and its channel ids recorded just before originating) the
        lease is kept and the returned claim carries the new record; otherwise the lease is released and
        the callback is scheduled again at ``after.next_at`` or, finished, leaves the schedule. Unless a
        change request is pending: then the lease is kept and the returned claim's ``request`` is it.
        """
        pending = await self._write(claim.callback, after, events, claim.token, applying=applying)
        return Claim(after, claim.token, claim.resume, claim.owner, claim.lease_until_ms, pending)

    async def _write(
        self,
        before: Callback,
        after: Callback,
        events: Sequence[Event],
        token: int | None,
        *,
        applying: ChangeRequest | None = None,
    ) -> ChangeRequest | None:
        if after.id != before.id or after.version <= before.version:
            raise ValueError(f"{after.id}: a change must keep the id and raise the version")
        args = [
            self.keys.callback_prefix,
            after.id,
            self.keys.wake_channel,
            _VERSION_FIELD,
            before.version,
            "" if token is None else token,
            *_placement(after),
            self.keys.history_prefix,
            self._change(before, after, events),
            *self._outcome_args(applying, RequestOutcome(True, "applied", after.version)),
        ]
        pending = await self._run(_Script.WRITE, [self.keys.due, self.keys.leases, self.keys.events], args)
        return _request_or_none(after.id, pending) if pending else None

    def _outcome_args(self, request: ChangeRequest | None, outcome: RequestOutcome) -> list[object]:
        """Request id, outcome key, outcome and its ttl for the scripts ('' x 4 without a request)."""
        if request is None:
            return ["", "", "", ""]
        ttl = int(OUTCOME_TTL.total_seconds())
        return [request.id, self.keys.request_outcome(request.id), outcome.to_text(), ttl]

    # --- a person's change of a live callback ------------------------------------------------------

    async def request_change(self, callback_id: str, request: ChangeRequest) -> None:
        """Record ``request`` for the holder of the live callback and wake it (see the module doc).

        Raises ``CallbackNotLive`` when no call exists (change it with ``edit``), ``ChangePending``
        while another request waits, ``CallbackNotFound``."""
        args = [callback_id, request_to_text(request), self.keys.requests_channel]
        await self._run(_Script.REQUEST, [self.keys.callback(callback_id)], args)

    async def pending_request(self, callback_id: str) -> ChangeRequest | None:
        """The change request waiting on the callback, if any (a holder woken on the channel reads it)."""
        pending = await self.redis.hget(self.keys.callback(callback_id), _REQUEST_FIELD)
        return _request_or_none(callback_id, pending) if pending else None

    async def settle(self, claim: Claim, request: ChangeRequest, refusal: str) -> Claim:
        """The holder refuses ``request`` (fenced): it is dropped, the requester learns ``refusal``, the
        callback is unchanged. A callback kept only for the request is let go, as a commit would."""
        args = [
            self.keys.callback_prefix,
            claim.callback.id,
            claim.token,
            self.keys.wake_channel,
            *self._outcome_args(request, RequestOutcome(False, refusal, claim.callback.version)),
            *_placement(claim.callback),
        ]
        await self._run(_Script.SETTLE, [self.keys.due, self.keys.leases], args)
        return dataclasses.replace(claim, request=None)

    async def await_outcome(self, request_id: str, timeout_s: float) -> RequestOutcome | None:
        """What the holder did with the request, waiting up to ``timeout_s``; None if not yet."""
        key = self.keys.request_outcome(request_id)
        if timeout_s <= 0:  # BLPOP's 0 would wait for ever
            outcome = await self.redis.lpop(key)
            return RequestOutcome.from_text(outcome) if outcome else None
        reply = await self.redis.blpop([key], timeout=timeout_s)
        return RequestOutcome.from_text(reply[1]) if reply else None

    # --- claims -------------------------------------------------------------------------------------

    async def claim(
        self, limit: int, owner: str, lease_ms: int = DEFAULT_LEASE_MS, lines: LinePool | None = None
    ) -> ClaimBatch:
        """Claim up to ``limit`` callbacks, oldest first: expired leases, then due callbacks, of which
        no more than ``lines`` has free (the others keep their place in the due set)."""
        keys = [self.keys.due, self.keys.leases, self.keys.fence, self.keys.paused, *self._pool_key(lines)]
        args = [self.keys.callback_prefix, limit, lease_ms, owner, _DUE_FIELDS, self.keys.history_prefix]
        args += [lines.cap] if lines else []
        now, next_wake, claims_json = await self._run(_Script.CLAIM, keys, args)
        raw_claims = json.loads(claims_json) if claims_json else []
        lease_until = int(now) + lease_ms
        claims = tuple(claim for raw in raw_claims if (claim := _claim(raw, owner, lease_until)) is not None)
        return ClaimBatch(claims, int(now), int(next_wake) if next_wake else None)

    async def renew(self, claim: Claim, lease_ms: int = DEFAULT_LEASE_MS) -> Claim:
        """Extend the lease (fenced); the returned claim carries the new expiry."""
        args = [self.keys.callback_prefix, claim.callback.id, claim.token, lease_ms]
        expiry = await self._run(_Script.RENEW, [self.keys.leases], args)
        return Claim(claim.callback, claim.token, claim.resume, claim.owner, int(expiry))

    async def release(self, claim: Claim) -> bool:
        """Hand an untouched claim back to the due set (fenced). A live callback is not released (False):
        its lease lapses and the next holder resumes it."""
        args = [
            self.keys.callback_prefix,
            claim.callback.id,
            claim.token,
            self.keys.wake_channel,
            _DUE_FIELDS,
        ]
        return bool(await self._run(_Script.RELEASE, [self.keys.due, self.keys.leases], args))

    async def take_call_locks(self, claim: Claim, locks: CallLocks) -> Waiting | None:
        """Take the call's locks and line, all or none (fenced: ``LeaseLost`` for a late holder). Returns
        what another callback's call holds (nothing taken then), or None when all were taken. A resume
        claim (the call exists) re-takes them and is never refused."""
        lock_keys = self._lock_keys(locks)
        cap = locks.lines.cap if locks.lines else ""
        args = self._lock_args(claim, len(lock_keys), cap, "1" if claim.resume else "")
        keys = [self.keys.leases, *lock_keys, *self._pool_key(locks.lines)]
        [taken_by] = await self._run(_Script.LOCK, keys, args)
        if taken_by == 0:
            return None
        kinds = [Waiting.AGENT] * (locks.agent is not None) + [Waiting.CONTACT, Waiting.CALL_LIMIT]
        return kinds[taken_by - 1]

    async def release_call_locks(self, claim: Claim, locks: CallLocks) -> int:
        """Give back what ``take_call_locks`` took with this claim's token, unless the call still lives
        (whoever resumes it re-takes them). Returns how many locks and lines were given back."""
        lock_keys = self._lock_keys(locks)
        args = self._lock_args(claim, len(lock_keys), self.keys.wake_channel)
        return int(await self._run(_Script.UNLOCK, [*lock_keys, *self._pool_key(locks.lines)], args))

    def _lock_args(self, claim: Claim, *more: object) -> list[object]:
        """The lock scripts' arguments: callback prefix, id, token (which claim holds), then ``more``."""
        return [self.keys.callback_prefix, claim.callback.id, claim.token, *more]

    async def agents_in_calls(self, agents: Sequence[str]) -> set[str]:
        """The agents whose lock holds now: a callback's call (any daemon's) rings or talks through them."""
        keys = [self.keys.leases, *(self.keys.agent_lock(agent) for agent in agents)]
        held = await self._run(_Script.HELD, keys, [self.keys.callback_prefix]) if agents else []
        return {agents[position - 1] for position in held}

    def _lock_keys(self, locks: CallLocks) -> list[str]:
        agent = [self.keys.agent_lock(locks.agent)] if locks.agent is not None else []
        return [*agent, self.keys.contact_lock(locks.contact)]

    def _pool_key(self, lines: LinePool | None) -> list[str]:
        return [self.keys.lines(lines.name)] if lines else []

    async def set_paused(self, paused: bool) -> None:
        """Pause all callbacks: due ones wait (nothing is lost), live calls are still followed."""
        if paused:
            await self.redis.set(self.keys.paused, "1")
            return
        await self.redis.delete(self.keys.paused)
        await self.redis.publish(self.keys.wake_channel, "resumed")

    async def is_paused(self) -> bool:
        return bool(await self.redis.exists(self.keys.paused))

    # --- the event stream ----------------------------------------------------------------------------

    async def ensure_group(self, group: str, start_id: str = "0") -> None:
        """Create a consumer group (and the stream) unless it exists; ``start_id="$"`` skips history."""
        try:
            await self.redis.xgroup_create(self.keys.events, group, id=start_id, mkstream=True)
        except ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise

    async def read_group(
        self, group: str, consumer: str, count: int = 100, block_ms: int | None = None
    ) -> list[StreamEntry]:
        """New events for ``consumer``; ``block_ms`` waits for some when there are none."""
        reply = await self.redis.xreadgroup(
            group, consumer, {self.keys.events: ">"}, count=count, block=block_ms
        )
        return [_stream_entry(entry_id, fields) for _, entries in reply for entry_id, fields in entries]

    async def take_over_stale(
        self, group: str, consumer: str, min_idle_ms: int, count: int = 500
    ) -> list[StreamEntry]:
        """Entries another consumer of ``group`` read but never acknowledged for ``min_idle_ms`` (it died):
        they become ``consumer``'s, so a dead reader never holds back trimming or loses an event."""
        _, entries, _ = await self.redis.xautoclaim(
            self.keys.events, group, consumer, min_idle_ms, start_id="0-0", count=count
        )
        return [_stream_entry(entry_id, fields) for entry_id, fields in entries if fields]

    async def park_event(self, group: str, entry: StreamEntry, error: str) -> None:
        """Copy an entry ``group`` could not decode or handle to the group's dead letters, with the
        reason: the caller then acknowledges it, so one bad entry never stops a reader."""
        fields = entry.fields if isinstance(entry, UnreadableEntry) else event_to_fields(entry.event)
        parked = {**fields, "_id": entry.entry_id, "_error": error}
        await self.redis.xadd(
            self.keys.dead_letters(group), parked, maxlen=DEAD_LETTERS_KEPT, approximate=True
        )

    async def event_groups(self) -> list[GroupInfo]:
        """Every consumer group of the event stream (none when there is no stream yet)."""
        if not await self.redis.exists(self.keys.events):
            return []
        return [
            GroupInfo(
                name=group["name"],
                consumers=int(group["consumers"]),
                pending=int(group["pending"]),
                last_delivered=group["last-delivered-id"],
                lag=None if group.get("lag") is None else int(group["lag"]),
            )
            for group in await self.redis.xinfo_groups(self.keys.events)
        ]

    async def drop_group(self, group: str) -> None:
        """Remove a consumer group that nobody will read any more (no error if there is none)."""
        if await self.redis.exists(self.keys.events):
            with contextlib.suppress(ResponseError):
                await self.redis.xgroup_destroy(self.keys.events, group)

    async def ack(self, group: str, entry_ids: Sequence[str]) -> int:
        return int(await self.redis.xack(self.keys.events, group, *entry_ids)) if entry_ids else 0

    async def trim_events(self, retention: timedelta) -> int:
        """Drop events older than ``retention`` that every consumer group has read and acknowledged."""
        retention_ms = int(retention.total_seconds() * 1000)
        return int(await self._run(_Script.TRIM, [self.keys.events], [retention_ms]))

    # --- runtime setting overrides ----------------------------------------------------------------------

    async def setting_overrides(self) -> dict[str, dict[str, str]]:
        """Every scope's overrides: {"general" | "queue/<name>" | "agent/<id>": {option: value}}."""
        scopes = sorted(await self.redis.smembers(self.keys.settings_scopes))
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                pipe.hgetall(self.keys.settings(scope))
            values = await pipe.execute()
        return {scope: options for scope, options in zip(scopes, values, strict=True) if options}

    async def setting_layers(self) -> Layers:
        """The overrides parsed and validated like the file's values, ready for ``settings.resolve``."""
        return runtime_layers(await self.setting_overrides())

    async def set_setting(self, scope: str, option: str, value: str) -> None:
        """Override ``option`` in ``scope`` until reset (the caller validates the value)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.settings(_checked_scope(scope)), option, value)
            pipe.sadd(self.keys.settings_scopes, scope)
            await pipe.execute()
        await self.redis.publish(self.keys.settings_channel, scope)

    async def reset_setting(self, scope: str, option: str | None = None) -> None:
        """Drop one override of ``scope``, or all of them when ``option`` is None."""
        key = self.keys.settings(_checked_scope(scope))
        await (self.redis.delete(key) if option is None else self.redis.hdel(key, option))
        await self.redis.publish(self.keys.settings_channel, scope)

    # --- housekeeping ----------------------------------------------------------------------------------

    async def purge_finished(self, older_than: timedelta, batch: int = 500) -> int:
        """Delete callbacks that finished more than ``older_than`` ago (Redis server clock), with their
        history and index entries, so the schedule's memory stays bounded. Their events stay in the
        stream (trimmed separately). Returns how many were deleted."""
        seconds, micros = await self.redis.time()
        cutoff = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros) - older_than
        purged = 0
        for state in (state for state in State if state.is_finished):
            ids = [
                callback_id async for callback_id in self.redis.sscan_iter(self.keys.state_index(state.value))
            ]
            for start in range(0, len(ids), batch):
                for callback in await self.get_many(ids[start : start + batch]):
                    finished_at = callback.finished_at or callback.updated_at or callback.created_at
                    if finished_at < cutoff:
                        purged += await self._purge(callback)
        return purged

    async def _purge(self, callback: Callback) -> int:
        args = [
            self.keys.callback_prefix,
            callback.id,
            _VERSION_FIELD,
            callback.version,
            self.keys.history(callback.id),
            self._change(callback, None, ()),
        ]
        return int(await self._run(_Script.PURGE, [self.keys.due, self.keys.leases], args))

    async def delete_namespace(self) -> int:
        """Delete every key of this namespace and nothing else (tests, benchmarks, decommissioning)."""
        deleted = 0
        batch: list[str] = []
        async for key in self.redis.scan_iter(match=self.keys.pattern, count=1000):
            batch.append(key)
            if len(batch) == 1000:
                deleted += await self.redis.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await self.redis.unlink(*batch)
        return deleted

    # --- encoding helpers ------------------------------------------------------------------------------

    def _change(self, before: Callback | None, after: Callback | None, events: Sequence[Event]) -> str:
        """The JSON change the scripts apply (see common.lua): ``after``'s hash fields (the codec's, less
        the id, which the key holds, and the history, which has its own key, plus bookkeeping), its
        history, the index changes from ``before`` and the events."""
        old = self._index_entries(before) if before else frozenset()
        new = self._index_entries(after) if after else frozenset()
        index = [(kind + "rem", key, value) for kind, key, value in sorted(old - new)]
        index += [(kind + "add", key, value) for kind, key, value in sorted(new - old)]
        change: dict[str, Any] = {
            "index": index,
            "events": [_flat(event_to_fields(event)) for event in events],
        }
        if after is not None:
            check_callback_id(after.id)
            fields = callback_to_fields(after)
            del fields[_ID_FIELD]
            change["history"] = fields.pop(_HISTORY_FIELD, "")
            if after.state.is_live:
                fields[_LIVE_FIELD] = "1"
            change["fields"] = _flat(fields)
        return json.dumps(change, separators=(",", ":"))

    def _index_entries(self, callback: Callback) -> frozenset[tuple[str, str, str]]:
        entries = {
            ("s", self.keys.state_index(callback.state.value), callback.id),
            ("h", self.keys.contact_index, callback.contact_number),
        }
        if callback.agent:
            entries.add(("s", self.keys.agent_index(callback.agent), callback.id))
        entries.update(
            ("h", self.keys.call_index, call_id)
            for call_id in (callback.origin_uniqueid, callback.origin_linkedid)
            if call_id
        )
        return frozenset(entries)


def _checked_scope(scope: str) -> str:
    if is_settings_scope(scope):
        return scope
    raise ValueError(f"settings scope must be 'general', 'queue/<name>' or 'agent/<id>', not {scope!r}")


def _placement(callback: Callback) -> tuple[str, str]:
    """(due ms or '', live flag) for the scripts: only a scheduled callback sits in the due set."""
    if callback.state is State.SCHEDULED:
        return str(_due_ms(callback)), ""
    return "", "1" if callback.state.is_live else ""


def _due_ms(callback: Callback) -> int:
    return _time_to_ms(callback.next_at or callback.due_at)


def _claim(raw: Sequence[Any], owner: str, lease_until_ms: int) -> Claim | None:
    """A claim from one [id, token, hash fields, history] entry of the claim script's reply, or None
    for a record this version cannot read (e.g. written by a newer daemon during a rolling upgrade):
    it is skipped, not the whole batch, and its lease lapses so that another daemon may take it."""
    callback_id, token, flat_fields, history = raw
    stored = _flat_to_dict(flat_fields)
    try:
        callback = _decode(callback_id, stored, history)
    except CodecError as error:
        log.error("callback %s cannot be read, left for another daemon: %s", callback_id, error)
        return None
    resume = stored.get(_LIVE_FIELD) == "1"
    pending = stored.get(_REQUEST_FIELD)
    request = _request_or_none(callback_id, pending) if pending else None
    return Claim(callback, int(token), resume, owner, lease_until_ms, request)


def _request_or_none(callback_id: str, text: str) -> ChangeRequest | None:
    """A pending request this version cannot read is left unread (logged); the callback goes on."""
    try:
        return request_from_text(text)
    except CodecError as error:
        log.error("callback %s: change request cannot be read: %s", callback_id, error)
        return None


def _decode(callback_id: str, stored: Mapping[str, str], history: str | None) -> Callback:
    restored = {**stored, _ID_FIELD: callback_id}
    if history:
        restored[_HISTORY_FIELD] = history
    return callback_from_fields(restored)


def _stream_entry(entry_id: str, fields: Mapping[str, str]) -> StreamEntry:
    try:
        return StreamEvent(entry_id, event_from_fields(fields))
    except CodecError as error:
        return UnreadableEntry(entry_id, dict(fields), str(error))


def _flat(fields: Mapping[str, str]) -> list[str]:
    return [part for item in fields.items() for part in item]


def _flat_to_dict(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
