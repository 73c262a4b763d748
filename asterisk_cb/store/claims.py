"""Claims: how a scheduler takes due callbacks, keeps them and hands them back.

Each claim carries a fencing token (a global counter, so tokens only grow) and a lease judged on the
Redis server's clock. Every write of the holder presents the token and is refused (``StaleToken``,
``LeaseExpired``) once it lost the callback, so a holder paused past its lease cannot write, and
because it commits each attempt before originating, cannot dial either. An expired lease makes the
callback claimable again; if it was live, the new claim *resumes* the call and never dials again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from asterisk_cb.core.codec import CodecError
from asterisk_cb.core.inputs import ChangeRequest
from asterisk_cb.core.model import Callback
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import follow_channel
from asterisk_cb.store.base import StorePart
from asterisk_cb.store.encoding import (
    DUE_FIELDS,
    LIVE_FIELD,
    REQUEST_FIELD,
    decode,
    flat_to_dict,
    request_or_none,
)
from asterisk_cb.store.scripts import Script

log = logging.getLogger(__name__)

DEFAULT_LEASE_MS = 30_000
WAKE_LIMIT = 3  # callbacks woken per free agent: the first rings it, the rest are there if it fails


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
    lease_ms: int = DEFAULT_LEASE_MS  # the lease's length, renewed to this (the dial fence reckons with it)


ClaimT = TypeVar("ClaimT", "Claim", "Claimed")


@dataclass(frozen=True)
class Claimed:
    """A claim as the claim script returned it, its record not decoded yet. A scheduler needs only the
    id, the token and whether it resumes a call to hand it off; decoding (``open``) is left to the
    executor's own task, so the first of a batch of hundreds starts without waiting for the others
    to be read."""

    callback_id: str
    token: int
    owner: str
    lease_until_ms: int
    lease_ms: int
    stored: dict[str, str]
    history: str

    @property
    def resume(self) -> bool:
        return self.stored.get(LIVE_FIELD) == "1"

    def open(self) -> Claim:
        """The claim with its callback; ``CodecError`` for a record this version cannot read (e.g.
        written by a newer daemon during a rolling upgrade): leave it, its lease lapses and another
        daemon may take it."""
        callback = decode(self.callback_id, self.stored, self.history)
        pending = self.stored.get(REQUEST_FIELD)
        request = request_or_none(self.callback_id, pending) if pending else None
        return Claim(
            callback, self.token, self.resume, self.owner, self.lease_until_ms, request, self.lease_ms
        )


@dataclass(frozen=True)
class ClaimBatch(Generic[ClaimT]):
    """What one claim round returned (``Claimed`` records, or ``Claim``s decoded from them), with the
    server's clock so callers can sleep without skew."""

    claims: tuple[ClaimT, ...]
    server_now_ms: int
    next_wake_ms: int | None  # earliest due time or lease expiry still pending; None when nothing is


@dataclass(frozen=True)
class LinePool:
    """A cap on simultaneous callback calls shared by every daemon on the Redis (e.g. the outbound
    context's channels): at most ``cap`` calls hold a line of pool ``name`` at once."""

    name: str
    cap: int


def pool_key(keys: Keys, lines: LinePool | None) -> list[str]:
    """The pool's key, as the (optional) last key of the claim and lock scripts."""
    return [keys.lines(lines.name)] if lines else []


class Claims(StorePart):
    """Claim, renew and release callbacks; pause them all; hear when one becomes the earliest due."""

    async def claim_records(
        self, limit: int, owner: str, lease_ms: int = DEFAULT_LEASE_MS, lines: LinePool | None = None
    ) -> ClaimBatch[Claimed]:
        """Claim up to ``limit`` callbacks, oldest first: expired leases, then due callbacks, of which
        no more than ``lines`` has free (the others keep their place in the due set)."""
        keys = self._keys
        script_keys = [keys.due, keys.leases, keys.fence, keys.paused, *pool_key(keys, lines)]
        args = [keys.callback_prefix, limit, lease_ms, owner, DUE_FIELDS, keys.history_prefix]
        args += [lines.cap] if lines else []
        now, next_wake, claims_json = await self._scripts.run(Script.CLAIM, script_keys, args)
        lease_until = int(now) + lease_ms
        claimed = tuple(
            Claimed(callback_id, int(token), owner, lease_until, lease_ms, flat_to_dict(flat), history)
            for callback_id, token, flat, history in (json.loads(claims_json) if claims_json else [])
        )
        return ClaimBatch(claimed, int(now), int(next_wake) if next_wake else None)

    async def claim(
        self, limit: int, owner: str, lease_ms: int = DEFAULT_LEASE_MS, lines: LinePool | None = None
    ) -> ClaimBatch[Claim]:
        """``claim_records``, each record decoded; one this version cannot read is left out (its lease
        lapses, another daemon may take it), not the whole batch."""
        batch = await self.claim_records(limit, owner, lease_ms, lines)
        claims = tuple(claim for claimed in batch.claims if (claim := open_or_none(claimed)) is not None)
        return ClaimBatch(claims, batch.server_now_ms, batch.next_wake_ms)

    async def renew(self, claim: Claim, lease_ms: int = DEFAULT_LEASE_MS) -> Claim:
        """Extend the lease (fenced); the returned claim carries the new expiry."""
        expiry = await self.renew_lease(claim.callback.id, claim.token, lease_ms)
        return dataclasses.replace(claim, lease_until_ms=expiry, request=None)

    async def renew_lease(self, callback_id: str, token: int, lease_ms: int = DEFAULT_LEASE_MS) -> int:
        """Extend the lease of the claim ``token`` (fenced); its new expiry (server ms)."""
        args = [self._keys.callback_prefix, callback_id, token, lease_ms]
        return int(await self._scripts.run(Script.RENEW, [self._keys.leases], args))

    async def release(self, claim: Claim) -> bool:
        """Hand an untouched claim back to the due set (fenced). A live callback is not released (False):
        its lease lapses and the next holder resumes it."""
        return await self.release_claim(claim.callback.id, claim.token)

    async def release_claim(self, callback_id: str, token: int) -> bool:
        """``release`` by the claim's id and token."""
        keys = self._keys
        args = [keys.callback_prefix, callback_id, token, keys.wake_channel, DUE_FIELDS]
        return bool(await self._scripts.run(Script.RELEASE, [keys.due, keys.leases], args))

    async def wake_waiting(self, agent: str, limit: int = WAKE_LIMIT) -> int:
        """The agent turned free: its callbacks scheduled to look at it again become due now, oldest
        first, at most ``limit`` (one rings the agent; the others would find it busy again). How many
        moved; any daemon may call it, as often as it hears the agent turn free."""
        keys = self._keys
        args = [keys.wake_channel, limit]
        return int(await self._scripts.run(Script.WAKE, [keys.due, keys.agent_waiting(agent)], args))

    async def set_paused(self, paused: bool) -> None:
        """Pause all callbacks: due ones wait (nothing is lost), live calls are still followed."""
        if paused:
            await self._redis.set(self._keys.paused, "1")
            return
        await self._redis.delete(self._keys.paused)
        await self._redis.publish(self._keys.wake_channel, "resumed")

    async def is_paused(self) -> bool:
        return bool(await self._redis.exists(self._keys.paused))

    async def follow_wakeups(self, on_wake: Callable[[str | None], None], retry_delay_s: float = 1.0) -> None:
        """Call ``on_wake`` whenever a callback becomes the earliest due one (created, moved, released,
        resumed), and with None when wake-ups may have been missed. Runs until cancelled."""
        await follow_channel(self._redis, self._keys.wake_channel, on_wake, retry_delay_s)


def open_or_none(claimed: Claimed) -> Claim | None:
    """The decoded claim, or None (logged) for a record this version cannot read."""
    try:
        return claimed.open()
    except CodecError as error:
        log.error("callback %s cannot be read, left for another daemon: %s", claimed.callback_id, error)
        return None
