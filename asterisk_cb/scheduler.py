"""The scheduler: sleeps until the next callback is due, claims due callbacks, hands them to an executor.

No polling tick: after each claim round the Lua script returns the earliest pending due time (or lease
expiry) together with the Redis server's clock, and the loop sleeps exactly that long, measured against
the server clock so a skewed daemon clock cannot make it early or late. A callback that becomes the
earliest one (created or moved by this daemon or another) is announced on a pub/sub channel and wakes the
loop at once. Pub/sub drops messages published while a subscriber reconnects, so a reconnect of the
wake-up channel also wakes the loop, and the loop never sleeps longer than a safety timeout.

Work is handed to an ``Executor`` (implemented by the telephony layer) with bounded concurrency (the
daemon's ``max_calls``), and, with a line pool, never more due callbacks than lines are free: the
others wait in the due set in their order, oldest due first, on whichever daemon frees a slot first.
Without a line pool, when executors turn over fast (a burst of due callbacks), the scheduler also
claims what it will start within ``QUEUE_AHEAD_S`` at its current pace and queues those claims
locally under their leases, so a freed slot takes the next one without a claim round; a queued claim
not started within ``QUEUE_HOLD_S`` goes back to the due set for a daemon with room. While an
executor works on a claim the scheduler renews its lease; if a renewal is refused (the lease was lost:
this process stalled, or a person revoked a claim that was not live yet), or renewals fail or hang
until the lease may have run out (Redis unreachable), the executor's task is cancelled. On
``stop()`` the scheduler takes no new work, cancels its executor tasks, hands back claims that never
went live, and lets the leases of live ones lapse: another (or the restarted) daemon then resumes
those calls without dialling again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from redis.exceptions import RedisError

from asterisk_cb.keys import DEFAULT_NAMESPACE, Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.store import (
    DEFAULT_LEASE_MS,
    Claim,
    ClaimBatch,
    Claimed,
    LeaseLost,
    LinePool,
    NotReplicated,
    Store,
    open_or_none,
)

log = logging.getLogger(__name__)

# Claims queued beyond the free slots: as many as the executors finished in the last PACE_WINDOW_S,
# scaled to QUEUE_AHEAD_S (what this scheduler will start that soon), at most a claim batch.
PACE_WINDOW_S = 1.0
QUEUE_AHEAD_S = 0.25
QUEUE_HOLD_S = 2.0  # a queued claim not started by then goes back to the due set


class Executor(Protocol):
    """What the scheduler hands each claim to (the telephony layer implements it)."""

    async def execute(self, claim: Claim) -> None:
        """Carry the claimed callback as far as it can go now, writing every transition with
        ``Store.commit(claim, ...)`` (fenced by ``claim.token``); return once the callback is scheduled
        again or finished. ``claim.resume`` means a call already exists: find the channels of
        ``claim.callback.current_attempt`` instead of dialling. Cancellation means the claim is lost or
        the daemon stops: let go without touching the call (the next holder resumes it)."""
        ...


class SchedulerStore(Protocol):
    """What the scheduler needs of the store (``asterisk_cb.store.Store`` provides it)."""

    async def claim_records(
        self, limit: int, owner: str, lease_ms: int = DEFAULT_LEASE_MS, lines: LinePool | None = None
    ) -> ClaimBatch[Claimed]: ...

    async def renew_lease(self, callback_id: str, token: int, lease_ms: int = DEFAULT_LEASE_MS) -> int: ...

    async def release_claim(self, callback_id: str, token: int) -> bool: ...

    async def trim_events(self, retention: timedelta) -> int: ...

    async def purge_finished(self, older_than: timedelta, batch: int = 500) -> int: ...

    async def follow_wakeups(
        self, on_wake: Callable[[str | None], None], retry_delay_s: float = 1.0
    ) -> None: ...


def _describe(error: BaseException) -> str:
    """Type and message (redis-py's repr of its errors leaves the message out)."""
    return f"{type(error).__name__}: {error}"


def default_owner() -> str:
    """A name for this scheduler that is unique across hosts and restarts (shown as the lease owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class SchedulerOptions:
    """Tuning of one scheduler; the defaults suit a daemon placing real calls."""

    owner: str = field(default_factory=default_owner)
    concurrency: int = 200  # executor tasks at once (the telephony layer limits calls further)
    batch_size: int = 500  # callbacks claimed per Lua call
    lease_ms: int = DEFAULT_LEASE_MS
    lines: LinePool | None = None  # calls capped across daemons: claim no more than lines are free
    renew_every_ms: int = DEFAULT_LEASE_MS // 3
    safety_wake_s: float = 60.0  # longest sleep, in case a pub/sub wake-up was lost
    retry_delay_s: float = 1.0  # pause after a Redis error before trying again
    # Housekeeping, done by every scheduler (each pass is idempotent and cheap when nothing is due):
    housekeeping_every_s: float = 600.0
    event_retention: timedelta | None = timedelta(days=7)  # never past what a consumer group still needs
    finished_retention: timedelta | None = timedelta(days=90)  # finished callbacks are then deleted


@dataclass
class SchedulerStats:
    """Counters for metrics and ``doctor`` (since this scheduler started)."""

    handed_off: int = 0  # claims given to the executor
    requeued: int = 0  # claims queued here but not started within QUEUE_HOLD_S, given back
    resumed: int = 0  # of which resume claims (a call was live when its previous holder vanished)
    leases_lost: int = 0  # executors cancelled: a renewal was refused, or none confirmed the lease in time
    executor_failures: int = 0  # executors that raised (their leases lapse)
    claim_failures: int = 0  # claim rounds that failed (Redis unreachable...)
    last_claim_server_ms: int | None = None  # Redis server time of the last successful claim round


@dataclass(frozen=True)
class _Round:
    """One claim call under way, how many it asked for, and when it was sent (``time.monotonic()``)."""

    limit: int
    task: asyncio.Task[ClaimBatch[Claimed] | None]
    sent: float


class Scheduler:
    """One scheduler loop over one store; several may run on one Redis (claims keep them apart)."""

    def __init__(
        self, store: SchedulerStore, executor: Executor, options: SchedulerOptions | None = None
    ) -> None:
        self._store = store
        self._executor = executor
        self._options = options or SchedulerOptions()
        # Keyed by fencing token: this scheduler may re-claim a callback whose lease it lost before its
        # old executor task has noticed.
        self._held: dict[int, tuple[Claimed, asyncio.Task[None]]] = {}
        # Until when (time.monotonic()) each held lease is known to last: the start of the last claim or
        # renewal that Redis granted, plus the lease. Past it with renewals failing, the lease may
        # have lapsed and another daemon may hold the callback: the executor is stopped.
        self._confirmed_until: dict[int, float] = {}
        # Claimed beyond the free slots, oldest due first, with when each was queued (time.monotonic()).
        self._queued: deque[tuple[Claimed, float]] = deque()
        self._pace = _Pace()
        self._starved = False  # the dispatcher waits for room: a finishing executor wakes it
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.stats = SchedulerStats()

    @property
    def owner(self) -> str:
        return self._options.owner

    @property
    def held(self) -> int:
        """How many claims this scheduler's executor tasks are working on."""
        return len(self._held)

    @property
    def queued(self) -> int:
        """How many claims wait here for a free executor slot."""
        return len(self._queued)

    def stop(self) -> None:
        """Take no new work; ``run`` then lets go of its claims and returns."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Dispatch until ``stop()``."""
        background = [
            asyncio.create_task(self._listen_for_wakeups()),
            asyncio.create_task(self._renew_leases()),
            asyncio.create_task(self._requeue_held_back()),
            asyncio.create_task(self._housekeep()),
        ]
        try:
            await self._dispatch()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._let_go()

    async def _dispatch(self) -> None:
        ahead: _Round | None = None  # the next claim round, started while the last batch is handed off
        while not self._stopping.is_set():
            claim_round, ahead = ahead or self._start_round(), None
            if claim_round is None:
                await self._sleep(self._options.safety_wake_s)  # no free slot: a finishing task wakes us
                continue
            batch = await claim_round.task
            if batch is None:
                await self._sleep(self._options.retry_delay_s)
                continue
            if self._stopping.is_set():  # stop() came while claiming: hand the batch back untouched
                await self._release(batch.claims)
                break
            full = len(batch.claims) == claim_round.limit
            if full:  # more may be due: Redis claims the next batch while this one is handed off
                ahead = self._start_round(reserved=len(batch.claims))
            for claimed in batch.claims:
                self._take(claimed, claim_round.sent)
            if not full:
                await self._sleep(self._seconds_until_next(batch))
        if ahead is not None:
            await self._release((await ahead.task or ClaimBatch[Claimed]((), 0, None)).claims)

    def _start_round(self, reserved: int = 0) -> _Round | None:
        """Start claiming as many as there is room for (less ``reserved``), or None if none."""
        room = self._room() - reserved
        if room <= 0:
            self._starved = True
            return None
        self._wake.clear()  # a wake-up from now on concerns what this round may not see
        limit = min(room, self._options.batch_size)
        return _Round(limit, asyncio.create_task(self._claim(limit)), time.monotonic())

    def _room(self) -> int:
        """Free executor slots, plus the claims worth queueing at the current pace, less those queued."""
        return self._options.concurrency + self._queue_ahead() - len(self._held) - len(self._queued)

    def _queue_ahead(self) -> int:
        """How many claims may wait here: none with a line pool (a queued claim would hold a line no call
        uses), else what the executors will take within QUEUE_AHEAD_S at their recent pace."""
        if self._options.lines is not None:
            return 0
        per_second = self._pace.count(time.monotonic()) / PACE_WINDOW_S
        return min(self._options.batch_size, int(per_second * QUEUE_AHEAD_S))

    async def _claim(self, limit: int) -> ClaimBatch[Claimed] | None:
        try:
            options = self._options
            batch = await self._store.claim_records(limit, options.owner, options.lease_ms, options.lines)
        except Exception as error:  # Redis down, a record that cannot be decoded...: retry, never die
            self.stats.claim_failures += 1
            log.warning("claim failed, retrying in %.1fs: %s", self._options.retry_delay_s, _describe(error))
            return None
        self.stats.last_claim_server_ms = batch.server_now_ms
        return batch

    def _seconds_until_next(self, batch: ClaimBatch[Claimed]) -> float:
        if batch.next_wake_ms is None:
            return self._options.safety_wake_s
        delay = max(0.0, (batch.next_wake_ms - batch.server_now_ms) / 1000)
        return min(delay, self._options.safety_wake_s)

    async def _sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` or until woken (pub/sub, a freed slot, stop)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _take(self, claim: Claimed, claimed_at: float) -> None:
        """Start the claim's executor, or queue the claim if every slot is busy."""
        self._confirmed_until[claim.token] = claimed_at + self._options.lease_ms / 1000
        if len(self._held) < self._options.concurrency:
            self._hand_off(claim)
        else:
            self._queued.append((claim, time.monotonic()))

    def _hand_off(self, claim: Claimed) -> None:
        task = asyncio.create_task(self._execute(claim), name=f"callback {claim.callback_id}")
        self._held[claim.token] = (claim, task)
        self.stats.handed_off += 1
        self.stats.resumed += claim.resume

    def _slot_freed(self) -> None:
        """The next queued claim takes the slot; the dispatcher, if it waits for room, claims more
        once half the queue's worth is free (a round per freed slot would cost a Redis call each)."""
        now = time.monotonic()
        self._pace.note(now)
        while self._queued and not self._stopping.is_set():
            claim = self._queued.popleft()[0]
            if now < self._confirmed_until.get(claim.token, 0.0):
                self._hand_off(claim)
                break
            self._confirmed_until.pop(claim.token, None)  # its lease may have lapsed: another takes it
            self.stats.leases_lost += 1
        if self._starved and self._room() >= max(1, self._queue_ahead() // 2):
            self._starved = False
            self._wake.set()

    async def _execute(self, claim: Claimed) -> None:
        """Decode the claimed record (here, not in the dispatcher: see ``Claimed``) and run it; one this
        version cannot read is left (logged) for its lease to lapse."""
        try:
            if (opened := open_or_none(claim)) is not None:
                await self._executor.execute(opened)
        except LeaseLost as lost:
            log.info("callback %s: lease lost, letting go: %s", claim.callback_id, lost)
        except NotReplicated as unconfirmed:  # nothing was dialled; the next holder resumes it
            log.warning("callback %s: letting go, not dialling: %s", claim.callback_id, unconfirmed)
        except Exception:
            self.stats.executor_failures += 1
            log.exception("callback %s: executor failed; its lease will lapse", claim.callback_id)
        finally:
            self._held.pop(claim.token, None)
            self._confirmed_until.pop(claim.token, None)
            self._slot_freed()

    async def _renew_leases(self) -> None:
        """Renew every held lease; stop the executor of one that is lost, or that can no longer be
        proven (renewals failing or hanging past the lease's end): it must not go on as if it held
        the callback. Each renewal waits at most one renewal period, so a Redis that hangs instead
        of refusing is a failure too."""
        every_s = self._options.renew_every_ms / 1000
        while True:
            await asyncio.sleep(every_s)
            held: list[tuple[Claimed, asyncio.Task[None] | None]] = list(self._held.values())
            held += [(claim, None) for claim, _ in self._queued]
            sent = time.monotonic()
            results = await asyncio.gather(
                *(
                    asyncio.wait_for(
                        self._store.renew_lease(claim.callback_id, claim.token, self._options.lease_ms),
                        every_s,
                    )
                    for claim, _ in held
                ),
                return_exceptions=True,
            )
            for (claim, task), result in zip(held, results, strict=True):
                self._after_renewal(claim, task, result, sent)

    def _after_renewal(
        self, claim: Claimed, task: asyncio.Task[None] | None, result: int | BaseException, sent: float
    ) -> None:
        """``task`` is None for a claim still queued (or started since the renewal was sent)."""
        if not isinstance(result, BaseException):
            if claim.token in self._confirmed_until:
                self._confirmed_until[claim.token] = sent + self._options.lease_ms / 1000
            return
        if task is None:
            task = self._held.get(claim.token, (claim, None))[1]
        if task is not None and task.done():
            return
        if isinstance(result, LeaseLost):
            reason = f"lease lost ({result})"
        elif time.monotonic() >= self._confirmed_until.get(claim.token, 0.0):
            reason = f"lease not confirmed before its end, renewals failing ({_describe(result)})"
        else:
            log.warning("callback %s: renewal failed, will retry: %s", claim.callback_id, _describe(result))
            return
        self.stats.leases_lost += 1
        if task is None:
            log.warning("callback %s: %s, dropping it from the queue", claim.callback_id, reason)
            self._unqueue({claim.token})
            return
        log.warning("callback %s: %s, cancelling its executor", claim.callback_id, reason)
        task.cancel()

    def _unqueue(self, tokens: set[int]) -> list[Claimed]:
        """Take the queued claims with these tokens out of the queue (and the lease bookkeeping)."""
        taken = [claim for claim, _ in self._queued if claim.token in tokens]
        self._queued = deque(entry for entry in self._queued if entry[0].token not in tokens)
        for claim in taken:
            self._confirmed_until.pop(claim.token, None)
        return taken

    async def _requeue_held_back(self) -> None:
        """Give back queued claims not started within QUEUE_HOLD_S: the executors slowed down (calls
        now last), and another daemon with room should take them from the due set."""
        while True:
            await asyncio.sleep(QUEUE_HOLD_S / 2)
            late = time.monotonic() - QUEUE_HOLD_S
            stale = self._unqueue({claim.token for claim, queued_at in self._queued if queued_at < late})
            self.stats.requeued += len(stale)
            await self._release(stale)

    async def _listen_for_wakeups(self) -> None:
        """A callback became the earliest due one, or wake-ups may have been missed: look again."""
        await self._store.follow_wakeups(lambda _message: self._wake.set(), self._options.retry_delay_s)

    async def _housekeep(self) -> None:
        """Trim the event stream and purge long-finished callbacks, now and then."""
        options = self._options
        while True:
            await asyncio.sleep(options.housekeeping_every_s)
            try:
                if options.event_retention is not None:
                    await self._store.trim_events(options.event_retention)
                if options.finished_retention is not None:
                    await self._store.purge_finished(options.finished_retention)
            except Exception as error:  # housekeeping must never stop the scheduler
                log.warning("housekeeping failed, will retry: %s", _describe(error))

    async def _let_go(self) -> None:
        """Cancel executor tasks, then hand back claims that never went live (live ones lapse) and the
        queued ones."""
        held = list(self._held.values())
        for _, task in held:
            task.cancel()
        await asyncio.gather(*(task for _, task in held), return_exceptions=True)
        queued = self._unqueue({claim.token for claim, _ in self._queued})
        await self._release([claim for claim, _ in held] + queued)

    async def _release(self, claims: Iterable[Claimed]) -> None:
        """Hand back claims that never went live; live ones (and lost ones) are left to lapse. All at
        once: the store sends releases started together as one pipeline."""

        async def release(claim: Claimed) -> None:
            with contextlib.suppress(LeaseLost, RedisError, OSError):
                await self._store.release_claim(claim.callback_id, claim.token)

        await asyncio.gather(*(release(claim) for claim in claims))


class _Pace:
    """When executors finished in the last PACE_WINDOW_S (time.monotonic() values)."""

    def __init__(self) -> None:
        self._finished: deque[float] = deque()

    def note(self, now: float) -> None:
        self._finished.append(now)
        self._forget(now)

    def count(self, now: float) -> int:
        self._forget(now)
        return len(self._finished)

    def _forget(self, now: float) -> None:
        while self._finished and self._finished[0] < now - PACE_WINDOW_S:
            self._finished.popleft()


async def run_scheduler(
    redis_url: str,
    executor: Executor,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    options: SchedulerOptions | None = None,
) -> None:
    """Run one scheduler process on ``redis_url`` until SIGTERM or SIGINT (benchmarks, soak tests, the
    daemon's wiring)."""
    redis = connect(redis_url)
    scheduler = Scheduler(Store(redis, Keys(namespace)), executor, options)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, scheduler.stop)
    try:
        await scheduler.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await redis.aclose()
