"""Crash safety for real: several scheduler processes on the lab Redis, thousands of callbacks, random
SIGKILL (then a restart) and SIGSTOP/SIGCONT of the processes while they work.

The workers (``soak_worker.py``) run the real scheduler and store with a fake executor that journals
every hand-off and every write attempt; the event stream says which writes Redis accepted. At the end:

* every callback was handed to an executor and completed exactly once;
* no callback was held by two live holders at once: per callback, the holders whose writes succeeded,
  in token order, each stopped writing before the next was handed the callback (a sound check on one
  host clock: a write is applied after its journalled start, a claim before its hand-off);
* in Redis's own order (the stream), a callback's writes never go back to an older token;
* a holder SIGSTOPped past its lease woke up, tried to write and was refused (so the fencing was
  exercised, not just never needed).

Defaults fit CI (~1 minute). A bigger soak by hand, e.g.::

    ACB_SOAK_CALLBACKS=30000 ACB_SOAK_WORKERS=6 ACB_SOAK_CHAOS_SECONDS=300 \\
        .venv/bin/pytest tests/integration/test_crash_soak.py -p no:cacheprovider -s
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from asterisk_cb.core.model import Callback, Event, EventKind, State
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.store import Store

CALLBACKS = int(os.environ.get("ACB_SOAK_CALLBACKS", "3000"))
WORKERS = int(os.environ.get("ACB_SOAK_WORKERS", "4"))
CHAOS_SECONDS = float(os.environ.get("ACB_SOAK_CHAOS_SECONDS", "40"))
DUE_WINDOW_SECONDS = CHAOS_SECONDS * 0.75  # callbacks fall due while the chaos goes on
LEASE_MS = 1000
DRAIN_SECONDS = 60.0  # after the chaos, time for the fleet to finish every callback
WORKER = Path(__file__).with_name("soak_worker.py")

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.timeout(int(CHAOS_SECONDS + DRAIN_SECONDS + 60 + CALLBACKS / 500)),
]


@dataclass(frozen=True)
class Stop:
    """A SIGSTOP..SIGCONT window of one worker process."""

    pid: int
    start: float
    end: float

    @property
    def past_lease(self) -> bool:
        return (self.end - self.start) * 1000 > LEASE_MS


@dataclass
class Fleet:
    """The worker processes: start, SIGKILL (restarted a little later), SIGSTOP (continued later)."""

    argv: list[str]
    log_dir: Path
    rng: random.Random
    slots: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    restart_at: dict[int, float] = field(default_factory=dict)  # slot -> when to restart it
    stopped: dict[int, tuple[float, float]] = field(default_factory=dict)  # slot -> (since, until)
    stops: list[Stop] = field(default_factory=list)
    kills: int = 0

    def start(self, slot: int) -> None:
        log = (self.log_dir / f"worker-{slot}-{time.time():.3f}.log").open("wb")
        process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if slot == len(self.slots):
            self.slots.append(process)
        else:
            self.slots[slot] = process

    def healthy(self) -> list[int]:
        return [n for n, p in enumerate(self.slots) if p is not None and n not in self.stopped]

    def kill(self, slot: int) -> None:
        process = self.slots[slot]
        assert process is not None
        process.kill()
        process.wait()
        self.slots[slot] = None
        self.kills += 1
        self.restart_at[slot] = time.time() + self.rng.uniform(0.2, 2.0)

    def pause(self, slot: int, seconds: float) -> None:
        process = self.slots[slot]
        assert process is not None
        process.send_signal(signal.SIGSTOP)
        now = time.time()
        self.stopped[slot] = (now, now + seconds)

    def tick(self, now: float) -> None:
        """Restart the killed workers and continue the stopped ones whose time has come."""
        for slot, when in list(self.restart_at.items()):
            if when <= now:
                del self.restart_at[slot]
                self.start(slot)
        for slot, (since, until) in list(self.stopped.items()):
            if until <= now:
                self._resume(slot, since)

    def _resume(self, slot: int, since: float) -> None:
        process = self.slots[slot]
        assert process is not None
        process.send_signal(signal.SIGCONT)
        del self.stopped[slot]
        self.stops.append(Stop(process.pid, since, time.time()))

    def settle(self) -> None:
        """Everyone back at work: continue the stopped, restart the killed."""
        self.tick(float("inf"))

    def terminate(self) -> list[int | None]:
        """Stop every worker cleanly (SIGTERM); returns their exit codes (None: had to be killed)."""
        self.restart_at.clear()
        self.settle()
        running = [p for p in self.slots if p is not None]
        self._wait_ready(running)
        for process in running:
            process.terminate()
        codes: list[int | None] = []
        for process in running:
            try:
                codes.append(process.wait(timeout=15))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                codes.append(None)
        return codes

    def _wait_ready(self, processes: list[subprocess.Popen[bytes]]) -> None:
        """Wait until each worker has opened its journal: it does so just before the scheduler installs
        its SIGTERM handler (no await in between), so a little later SIGTERM means a clean stop, not
        death in the middle of the imports of a worker just restarted."""
        deadline = time.monotonic() + 15
        for process in processes:
            while process.poll() is None and not list(self.log_dir.glob(f"*_{process.pid}_*.jsonl")):
                assert time.monotonic() < deadline, f"worker {process.pid} never started"
                time.sleep(0.05)
        time.sleep(0.2)


async def unleash(fleet: Fleet, seconds: float) -> None:
    """Random harm every 0.3-1 s, always leaving one worker untouched: SIGKILL, or SIGSTOP for longer
    than the lease (most often) or shorter."""
    end = time.time() + seconds
    while time.time() < end:
        await asyncio.sleep(fleet.rng.uniform(0.3, 1.0))
        fleet.tick(time.time())
        healthy = fleet.healthy()
        if len(healthy) < 2:
            continue
        victim = fleet.rng.choice(healthy)
        harm = fleet.rng.random()
        if harm < 0.3:
            fleet.kill(victim)
        elif harm < 0.8:
            fleet.pause(victim, fleet.rng.uniform(1.5, 3.0))
        else:
            fleet.pause(victim, fleet.rng.uniform(0.1, 0.5))


@pytest.fixture
def fleet(lab_redis_url: str, store: Store, tmp_path: Path) -> Iterator[Fleet]:
    argv = [sys.executable, str(WORKER), lab_redis_url, store.keys.namespace, str(tmp_path), str(LEASE_MS)]
    fleet = Fleet(argv, tmp_path, random.Random())
    yield fleet
    fleet.terminate()


async def schedule_all(store: Store, count: int, start: datetime, window: float) -> set[str]:
    """Create ``count`` callbacks due spread over ``window`` seconds from ``start``."""
    ids = [f"cb{n:06}" for n in range(count)]
    for first in range(0, count, 500):
        await asyncio.gather(
            *(
                store.create(*_new_callback(callback_id, start + timedelta(seconds=window * n / count)))
                for n, callback_id in enumerate(ids[first : first + 500], start=first)
            )
        )
    return set(ids)


def _new_callback(callback_id: str, due_at: datetime) -> tuple[Callback, list[Event]]:
    now = datetime.now(UTC)
    callback = Callback(
        id=callback_id,
        contact_number="+49301234" + callback_id[-5:],
        agent="1001",
        due_at=due_at,
        next_at=due_at,
        timezone="UTC",
        created_by="soak",
        created_at=now,
    )
    return callback, [Event(callback_id, EventKind.CREATED, now, 1)]


async def wait_all_completed(redis: RedisClient, store: Store, count: int, within: float) -> None:
    completed = store.keys.state_index(State.COMPLETED.value)
    deadline = time.monotonic() + within
    while (done := await redis.scard(completed)) < count:
        assert time.monotonic() < deadline, f"only {done} of {count} callbacks completed"
        await asyncio.sleep(0.2)


def read_journals(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in folder.glob("*.jsonl") for line in path.read_text().splitlines()]


async def accepted_writes(redis: RedisClient, store: Store) -> list[dict[str, str]]:
    """The holders' writes Redis accepted, in Redis's order (events carrying a token)."""
    entries = await redis.xrange(store.keys.events)
    return [fields for _, fields in entries if "token" in fields]


def owner_pid(owner: str) -> int:
    return int(owner.split(":")[-2])  # scheduler.default_owner(): host:pid:random


def assert_each_completed_once(ids: set[str], handoffs: dict[int, dict], writes: list[dict]) -> None:
    assert {h["cb"] for h in handoffs.values()} == ids, "some callback was never handed off"
    completions = [w["cb"] for w in writes if w["kind"] == EventKind.COMPLETED.value]
    assert sorted(completions) == sorted(ids), "a callback was completed twice or never"


def assert_writes_never_go_back(writes: list[dict]) -> None:
    newest: dict[str, int] = {}
    for write in writes:
        token = int(write["token"])
        assert token >= newest.get(write["cb"], 0), f"{write['cb']}: token {token} wrote after a newer one"
        newest[write["cb"]] = token


def assert_no_overlapping_holders(handoffs: dict[int, dict], attempts: dict, writes: list[dict]) -> None:
    """Per callback, holder n's last accepted write started before holder n+1 was handed it."""
    last_write: dict[str, dict[int, float]] = defaultdict(dict)
    for write in writes:
        token = int(write["token"])
        started = attempts[token, write["kind"]]
        last_write[write["cb"]][token] = max(last_write[write["cb"]].get(token, 0.0), started)
    for callback_id, holders in last_write.items():
        tokens = sorted(holders)
        for older, newer in itertools.pairwise(tokens):
            assert holders[older] < handoffs[newer]["t"], (
                f"{callback_id}: token {older} wrote at {holders[older]:.3f}, after token {newer} "
                f"was handed it at {handoffs[newer]['t']:.3f}"
            )


def late_refusals(journal: list[dict], handoffs: dict[int, dict], stops: list[Stop]) -> list[dict]:
    """Refused writes of holders that were SIGSTOPped past their lease while holding the callback."""
    found = []
    for refusal in (r for r in journal if r["e"] == "refused"):
        handed = handoffs[refusal["tok"]]["t"]
        pid = owner_pid(refusal["own"])
        if any(s.pid == pid and s.past_lease and handed < s.start and s.end < refusal["t"] for s in stops):
            found.append(refusal)
    return found


async def test_crash_soak(redis: RedisClient, store: Store, fleet: Fleet, tmp_path: Path) -> None:
    for slot in range(WORKERS):
        fleet.start(slot)
    ids = await schedule_all(store, CALLBACKS, datetime.now(UTC) + timedelta(seconds=3), DUE_WINDOW_SECONDS)
    await unleash(fleet, CHAOS_SECONDS)
    fleet.settle()
    await wait_all_completed(redis, store, CALLBACKS, DRAIN_SECONDS)
    assert all(code == 0 for code in fleet.terminate()), "a worker did not stop cleanly on SIGTERM"

    journal = read_journals(tmp_path)
    handoffs = {r["tok"]: r for r in journal if r["e"] == "handoff"}
    attempts = {(r["tok"], r["kind"]): r["t"] for r in journal if r["e"] == "write"}
    writes = await accepted_writes(redis, store)
    refused = late_refusals(journal, handoffs, fleet.stops)
    print(
        f"\nsoak: {CALLBACKS} callbacks, {WORKERS} workers, {fleet.kills} SIGKILLs, {len(fleet.stops)} "
        f"SIGSTOPs, {len(handoffs)} hand-offs ({sum(h['resume'] for h in handoffs.values())} resumes), "
        f"{sum(r['e'] == 'refused' for r in journal)} refused writes ({len(refused)} after a SIGSTOP)"
    )
    assert_each_completed_once(ids, handoffs, writes)
    assert await store.ids_in_state(State.COMPLETED) == ids
    assert_writes_never_go_back(writes)
    assert_no_overlapping_holders(handoffs, attempts, writes)
    assert refused, "no holder paused past its lease was refused: the fencing was never exercised"
