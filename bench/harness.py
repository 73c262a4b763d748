"""What every benchmark case shares: the lab Redis, a namespace that is deleted afterwards, realistic
callbacks made by the real lifecycle, bulk creation, lateness statistics and memory accounting."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from asterisk_cb.core import lifecycle
from asterisk_cb.core.model import Source
from asterisk_cb.core.settings import Settings
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, connect
from asterisk_cb.store import Store

REPO = Path(__file__).resolve().parents[1]
SETTINGS = Settings()
CREATORS = 64  # concurrent creations (the client's connection pool holds 64)


def lab_env() -> dict[str, Any]:
    """`scripts/pbx-lab env --json`: the lab of this shell's ACB_LAB_* variables (ports, paths, agents)."""
    env = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "pbx-lab"), "env", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(env.stdout))


def lab_redis_url() -> str:
    """The lab's own Redis, as `scripts/pbx-lab env --json` reports it (start it with `up redis`)."""
    return str(lab_env()["redis"]["url"])


def markdown(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """The figures as a Markdown table, ready for bench/README.md."""
    lines = [header, ("---",) * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


@dataclass(frozen=True)
class Scratch:
    """A store on a fresh namespace and the client under it: the minimal-loop baseline and the memory
    accounting measure Redis itself, on the store's keys."""

    store: Store
    redis: RedisClient

    @property
    def keys(self) -> Keys:
        return self.store.keys


@asynccontextmanager
async def scratch_store(redis_url: str) -> AsyncIterator[Scratch]:
    """A store on a fresh namespace; every key of it is deleted on the way out, nothing else."""
    redis = connect(redis_url, name="asterisk-cb-bench")
    store = Store(redis, Keys("bench-" + uuid.uuid4().hex[:10]))
    try:
        yield Scratch(store, redis)
    finally:
        await store.delete_namespace()
        await redis.aclose()


def callback_id(n: int) -> str:
    return f"cb{n:08}"


def request(n: int, due_at: datetime) -> lifecycle.NewCallback:
    """A typical inbound callback: named contact, queue and originating call known."""
    return lifecycle.NewCallback(
        contact_number=f"+4930{n:08}",
        agent=str(1000 + n % 50),
        due_at=due_at,
        created_by="bench",
        contact_name="Bench Contact",
        queue="support",
        origin_uniqueid=f"1795690000.{n}",
        origin_linkedid=f"1795690000.{n}",
        source=Source.INBOUND,
    )


async def create_all(store: Store, first_n: int, due_times: Sequence[datetime]) -> float:
    """Create callbacks numbered from ``first_n`` due at ``due_times`` the way the service will (the
    lifecycle validates and emits the creation event, the store writes it all in one script), with
    ``CREATORS`` requests in flight. Returns the seconds it took."""
    numbered = iter(enumerate(due_times, start=first_n))

    async def creator() -> None:
        for n, due_at in numbered:
            now = datetime.now(UTC)
            new = lifecycle.create(request(n, due_at), callback_id(n), now, SETTINGS)
            await store.create(new.callback, new.events)

    started = time.perf_counter()
    await asyncio.gather(*(creator() for _ in range(CREATORS)))
    return time.perf_counter() - started


def far_future(count: int) -> list[datetime]:
    """Due times days ahead (within the default 30-day horizon): they sit in the schedule, never due."""
    start = datetime.now(UTC) + timedelta(days=7)
    return [start + timedelta(seconds=n) for n in range(count)]


def due_window(count: int, start: datetime, spread_s: float) -> list[datetime]:
    """``count`` due times evenly over ``spread_s`` seconds from ``start`` (0: all at ``start``)."""
    return [start + timedelta(seconds=spread_s * n / count) for n in range(count)]


@dataclass(frozen=True)
class Lateness:
    """Dispatch lateness of one run, in milliseconds (hand-off time minus due time)."""

    samples_ms: tuple[float, ...]

    @classmethod
    def of(cls, handoffs: Iterable[tuple[float, float]]) -> Lateness:
        """From (due, handed off) pairs in epoch seconds."""
        return cls(tuple(sorted((handed - due) * 1000 for due, handed in handoffs)))

    @classmethod
    def pooled(cls, runs: Iterable[Lateness]) -> Lateness:
        return cls(tuple(sorted(sample for run in runs for sample in run.samples_ms)))

    def percentile(self, p: float) -> float:
        rank = max(1, math.ceil(p / 100 * len(self.samples_ms)))
        return self.samples_ms[rank - 1]

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def max(self) -> float:
        return self.samples_ms[-1]

    def __str__(self) -> str:
        return f"p50 {self.p50:.2f} / p99 {self.p99:.2f} / max {self.max:.2f} ms"


async def namespace_bytes(scratch: Scratch) -> int:
    """Sum of MEMORY USAGE (all nested values counted) over every key of the namespace."""
    keys = [key async for key in scratch.redis.scan_iter(match=scratch.keys.pattern, count=5000)]
    total = 0
    for first in range(0, len(keys), 2000):
        async with scratch.redis.pipeline(transaction=False) as pipe:
            for key in keys[first : first + 2000]:
                pipe.memory_usage(key, samples=0)
            total += sum(usage or 0 for usage in await pipe.execute())
    return total


async def used_memory(scratch: Scratch) -> int:
    return int((await scratch.redis.info("memory"))["used_memory"])


async def redis_run_id(url: str, wait_s: float = 120) -> str:
    """Changes whenever the Redis server restarts. Waits (up to ``wait_s``) for a Redis that is down:
    other sessions' tests stop and start the shared lab."""
    redis = connect(url, name="asterisk-cb-bench")
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                return str((await redis.info("server"))["run_id"])
            except (RedisError, OSError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)
    finally:
        await redis.aclose()
