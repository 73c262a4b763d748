"""Callback records: create, read, and the one versioned write behind both kinds of change.

A person (API, CLI, feature code through the service) changes a callback with ``edit``: an optimistic
write checked against the version the person read (``VersionConflict``), refused while a call lives
(``CallbackLive``). On a callback claimed but not live yet the person wins: the claim is revoked and the
holder's next fenced write fails. The holder changes it with ``commit``, fenced by its claim's token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asterisk_cb.core.codec import time_from_text, time_to_text
from asterisk_cb.core.inputs import ChangeRequest
from asterisk_cb.core.model import Callback, Event, State
from asterisk_cb.keys import check_callback_id
from asterisk_cb.store.base import StorePart
from asterisk_cb.store.claims import Claim
from asterisk_cb.store.encoding import VERSION_FIELD, change, decode, due_ms, placement, request_or_none
from asterisk_cb.store.errors import CallbackNotFound
from asterisk_cb.store.replicas import precedes_dial
from asterisk_cb.store.requests import RequestOutcome, outcome_args
from asterisk_cb.store.scripts import Script

# A retried creation is recognised for at least this long (and at most twice as long).
IDEMPOTENCY_WINDOW = timedelta(days=1)
# Callbacks read per script: ~0.5 ms of Redis time, so a listing of thousands never stalls a claim.
READ_BATCH = 500


OrderKey = tuple[datetime, str]  # (due time, id): the order of every listing


@dataclass(frozen=True)
class DueWindow:
    """Due times from ``start`` (inclusive) until ``end`` (exclusive), as sorted-set score bounds."""

    start: datetime | None = None
    end: datetime | None = None

    def low(self, after: OrderKey | None) -> str:
        """The lowest score to read: the window's start, or ``after``'s due time if later."""
        starts = [moment for moment in (self.start, after[0] if after else None) if moment is not None]
        return time_to_text(max(starts)) if starts else "-inf"

    @property
    def high(self) -> str:
        return "+inf" if self.end is None else "(" + time_to_text(self.end)


@dataclass(frozen=True)
class Created:
    """The callback a create request stands for; ``created`` is False for a replayed idempotency key."""

    callback: Callback
    created: bool


class Records(StorePart):
    """Create, read, edit and commit callbacks; look them up by state, agent, contact or call."""

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
        keys = self._keys
        args = [
            keys.callback_prefix,
            callback.id,
            keys.wake_channel,
            idempotency_key or "",
            keys.idempotency_prefix,
            int(IDEMPOTENCY_WINDOW.total_seconds()),
            due_ms(callback),
            keys.history_prefix,
            change(keys, None, callback, events),
        ]
        created, callback_id = await self._scripts.run(Script.CREATE, [keys.due, keys.events], args)
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
        """The callbacks that exist among ``callback_ids``, in the given order; read ``READ_BATCH`` at
        a time, each batch one script (one reply), so no read holds Redis for long."""
        wanted = [check_callback_id(callback_id) for callback_id in callback_ids]
        found: list[Callback] = []
        for start in range(0, len(wanted), READ_BATCH):
            batch = wanted[start : start + READ_BATCH]
            args = [self._keys.callback_prefix, self._keys.history_prefix, *batch]
            replies = await self._scripts.run(Script.READ, [self._keys.due], args)
            records = zip(batch, replies[::2], replies[1::2], strict=True)
            found += [
                decode(callback_id, _pairs(flat), history) for callback_id, flat, history in records if flat
            ]
        return found

    async def count_in_state(self, state: State) -> int:
        return int(await self._redis.scard(self._keys.state_index(state.value)))

    async def ids_in_state(self, state: State) -> set[str]:
        return set(await self._redis.smembers(self._keys.state_index(state.value)))

    async def ids_for_agent(self, agent: str) -> set[str]:
        return set(await self._redis.zrange(self._keys.agent_due_order(agent), 0, -1))

    async def ids_by_due(
        self, agent: str | None, window: DueWindow, after: OrderKey | None, count: int
    ) -> list[OrderKey]:
        """Up to ``count`` (due, id) of callbacks (of ``agent``; everyone's without one) due within
        ``window``, in due order, strictly after ``after``: a listing's next ids, no record read."""
        key = self._keys.due_order if agent is None else self._keys.agent_due_order(agent)
        low = window.low(after)
        skip = 0
        while True:
            found = await self._redis.zrange(
                key, low, window.high, byscore=True, offset=skip, num=count, withscores=True
            )
            listed = [(time_from_text(str(int(score))), callback_id) for callback_id, score in found]
            kept = [key for key in listed if after is None or key > after]
            if kept or len(found) < count:
                return kept
            skip += len(found)  # a page of ids all due with ``after`` and before it by id

    async def ids_for_contact(self, contact_number: str) -> set[str]:
        """Callbacks for the number in any of its forms (+49..., 0049..., 0... under the numbering plan)."""
        return await self._hash_index_ids(self._keys.contact_index, self._keys.contact_entry(contact_number))

    async def ids_for_call(self, uniqueid_or_linkedid: str) -> set[str]:
        """Callbacks requested from a call, by the uniqueid or the linkedid of the originating channel."""
        return await self._hash_index_ids(self._keys.call_index, uniqueid_or_linkedid)

    async def _hash_index_ids(self, index: str, value: str) -> set[str]:
        return set((await self._redis.hget(index, value) or "").split())

    async def count_by_state(self) -> dict[State, int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for state in State:
                pipe.scard(self._keys.state_index(state.value))
            counts = await pipe.execute()
        return dict(zip(State, counts, strict=True))

    async def edit(self, before: Callback, after: Callback, events: Sequence[Event]) -> Callback:
        """A person's change (edit, reschedule, cancel): applied only if the callback is still at
        ``before.version`` and not live; revokes a claim that is not live yet."""
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

        A commit that precedes a dial waits for a replica where one is required (``store.replicas``)
        and raises ``NotReplicated`` (the holder must not dial) when none confirmed it in time.
        """
        confirm = precedes_dial(claim.callback, after) and await self.replicas.required()
        pending = await self._write(
            claim.callback, after, events, claim.token, applying=applying, confirm=confirm
        )
        return dataclasses.replace(claim, callback=after, request=pending)

    async def _write(
        self,
        before: Callback,
        after: Callback,
        events: Sequence[Event],
        token: int | None,
        *,
        applying: ChangeRequest | None = None,
        confirm: bool = False,
    ) -> ChangeRequest | None:
        if after.id != before.id or after.version <= before.version:
            raise ValueError(f"{after.id}: a change must keep the id and raise the version")
        keys = self._keys
        args = [
            keys.callback_prefix,
            after.id,
            keys.wake_channel,
            VERSION_FIELD,
            before.version,
            "" if token is None else token,
            *placement(after),
            keys.history_prefix,
            change(keys, before, after, events),
            *outcome_args(keys, applying, RequestOutcome(True, "applied", after.version)),
        ]
        script_keys = [keys.due, keys.leases, keys.events]
        if confirm:
            timeout_ms = self.replicas.policy.timeout_ms
            pending, acknowledged = await self._scripts.run_and_wait(
                Script.WRITE, script_keys, args, timeout_ms
            )
            self.replicas.judge(after.id, acknowledged)
        else:
            pending = await self._scripts.run(Script.WRITE, script_keys, args)
        return request_or_none(after.id, pending) if pending else None


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    """A hash as HGETALL inside a script returns it: field, value, field, value..."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
