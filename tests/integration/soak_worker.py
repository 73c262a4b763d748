"""One scheduler process of the crash-safety soak (``test_crash_soak.py`` starts several, then kills,
stops and restarts them).

It runs the real scheduler and store (``run_scheduler``) with a fake executor that plays a short call
for each claim (go live, talk a little, complete) and journals what it does to a file of its own, one
JSON line per record, written with ``os.write`` on an ``O_APPEND`` descriptor: a line is in the kernel
before the next step starts, so a SIGKILL loses nothing that was journalled. Records:

* ``handoff``: the executor's method was called (callback, token, holder, resume flag, time);
* ``write``: a fenced write is about to be sent (so its time is a lower bound of when Redis applied it);
* ``refused``: Redis refused that write (``LeaseExpired``/``StaleToken``).

Whether a write succeeded is read from the event stream afterwards (each write appends an event that
carries its token and holder): that survives a SIGKILL between Redis applying a write and the journal.

Run: ``python soak_worker.py REDIS_URL NAMESPACE JOURNAL_DIR LEASE_MS``; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from asterisk_cb.core.model import Attempt, Callback, Event, EventKind, Leg, LegRole, Phase, State
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.scheduler import SchedulerOptions, default_owner, run_scheduler
from asterisk_cb.store import Claim, LeaseLost, Store

# A "call" lasts up to this long: long enough that SIGSTOPs often catch a holder mid-call.
MAX_CALL_SECONDS = 0.5


class Journal:
    """Append-only JSON lines on an O_APPEND descriptor (each record reaches the kernel at once)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def record(self, entry: str, claim: Claim, **details: object) -> None:
        line = {
            "e": entry,
            "cb": claim.callback.id,
            "tok": claim.token,
            "own": claim.owner,
            "t": time.time(),
            **details,
        }
        os.write(self._fd, (json.dumps(line) + "\n").encode())


def ringing(callback: Callback, now: datetime) -> Callback:
    """The callback live: an agent-phase attempt with its channel recorded before "dialling"."""
    attempt = Attempt(
        id=f"{callback.id}-a1",
        phase=Phase.AGENT,
        started_at=now,
        legs=(Leg(LegRole.AGENT, f"{callback.id}-agent"),),
    )
    return dataclasses.replace(
        callback,
        state=State.AGENT_RINGING,
        next_at=None,
        attempts=(attempt,),
        version=callback.version + 1,
        updated_at=now,
    )


def completed(callback: Callback, now: datetime) -> Callback:
    return dataclasses.replace(
        callback,
        state=State.COMPLETED,
        next_at=None,
        finished_at=now,
        version=callback.version + 1,
        updated_at=now,
    )


Change = Callable[[Callback, datetime], Callback]


class SoakExecutor:
    """Goes live, "talks" for a random while, completes; a resumed claim just follows the call to its
    end. Every write is fenced by the claim's token and journalled before it is sent."""

    def __init__(self, store: Store, journal: Journal) -> None:
        self._store = store
        self._journal = journal
        self._random = random.Random()

    async def execute(self, claim: Claim) -> None:
        self._journal.record("handoff", claim, resume=claim.resume)
        if not claim.resume:
            claim = await self._commit(claim, ringing, EventKind.AGENT_RINGING)
        await asyncio.sleep(self._random.uniform(0, MAX_CALL_SECONDS))
        await self._commit(claim, completed, EventKind.COMPLETED)

    async def _commit(self, claim: Claim, change: Change, kind: EventKind) -> Claim:
        now = datetime.now(UTC)
        after = change(claim.callback, now)
        stamp = {"token": str(claim.token), "owner": claim.owner}
        event = Event(after.id, kind, now, after.version, stamp)
        self._journal.record("write", claim, kind=kind.value)
        try:
            return await self._store.commit(claim, after, [event])
        except LeaseLost as lost:
            self._journal.record("refused", claim, kind=kind.value, error=type(lost).__name__)
            raise


async def main(redis_url: str, namespace: str, journal_dir: Path, lease_ms: int) -> None:
    owner = default_owner()
    journal = Journal(journal_dir / f"{owner.replace(':', '_')}.jsonl")
    executor_redis = connect(redis_url, name="soak-executor")
    options = SchedulerOptions(owner=owner, lease_ms=lease_ms, renew_every_ms=lease_ms // 3)
    try:
        executor = SoakExecutor(Store(executor_redis, Keys(namespace)), journal)
        await run_scheduler(redis_url, executor, namespace=namespace, options=options)
    finally:
        await executor_redis.aclose()


if __name__ == "__main__":
    url, name, folder, lease = sys.argv[1:5]
    asyncio.run(main(url, name, Path(folder), int(lease)))
