"""Redis itself killed with kill -9 while callbacks are being created loses none it acknowledged.

The lab Redis runs with ``appendonly yes`` (scripts/lab/redis_lab.py): a write reaches the AOF file
before its reply leaves the server, so once acknowledged it survives the death of the process (without
the AOF, everything since the last snapshot would be gone and this test fails). The lab's
``appendfsync always`` also covers a crash of the host, which a test cannot show.
The test creates callbacks from many concurrent clients, kills the server (SIGKILL: no shutdown, no
final flush) while creations are still in flight, restarts it the way a user does
(``scripts/pbx-lab up redis``), and checks that every acknowledged callback is back whole (record, due
entry, state index, creation event) and that each unacknowledged one is either whole or absent (one
Lua script per creation: never half-written).

Other tests sharing the lab Redis at that moment see it vanish for about a second; the store's client
retries through that.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from asterisk_cb.core.codec import time_to_ms
from asterisk_cb.core.model import Callback, Event, EventKind, State
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, connect
from asterisk_cb.store import Store, StoreError

pytestmark = pytest.mark.lab

PBX_LAB = Path(__file__).resolve().parents[2] / "scripts" / "pbx-lab"
CREATORS = 32  # concurrent clients creating callbacks
ACKNOWLEDGED_BEFORE_KILL = 2000


def new_callback(callback_id: str) -> tuple[Callback, list[Event]]:
    now = datetime.now(UTC).replace(microsecond=0)
    due_at = now + timedelta(days=1)
    callback = Callback(
        id=callback_id,
        contact_number="+4930" + callback_id[-7:],
        agent="1001",
        due_at=due_at,
        next_at=due_at,
        timezone="Europe/Berlin",
        created_by="durability-test",
        created_at=now,
        note="must survive kill -9",
    )
    return callback, [Event(callback_id, EventKind.CREATED, now, 1)]


class Creator:
    """Creates callbacks from several tasks until Redis goes away; keeps what was acknowledged."""

    def __init__(self, store: Store, enough: int) -> None:
        self.store = store
        self.enough = asyncio.Event()  # set once `enough` creations were acknowledged
        self.killed = False
        self._enough = enough
        self.acknowledged: dict[str, Callback] = {}
        self.sent: set[str] = set()
        self._next = 0

    async def create_until_failure(self) -> None:
        """Create one callback after another until a creation fails or Redis has been killed (another
        session sharing the lab could restart it at once; creations after the kill prove nothing)."""
        while not self.killed:
            callback, events = new_callback(f"d{self._next:07}")
            self._next += 1
            self.sent.add(callback.id)
            try:
                await self.store.create(callback, events)
            except (RedisError, OSError, StoreError):
                return  # outcome unknown to the client (a retry may even meet its own first try)
            self.acknowledged[callback.id] = callback
            if len(self.acknowledged) >= self._enough:
                self.enough.set()


async def lab_redis_pid(redis: Redis, lab_info: dict[str, Any]) -> int:
    """The pid of the lab's Redis, after making sure the server answering is the lab's, not the host's."""
    server = await redis.info("server")
    assert server["tcp_port"] == lab_info["redis"]["port"]
    assert (await redis.config_get("dir"))["dir"] == lab_info["redis"]["dir"]
    assert (await redis.config_get("appendonly"))["appendonly"] == "yes"
    return int(server["process_id"])


def kill_and_wait(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid):
        assert time.monotonic() < deadline, f"Redis {pid} survived SIGKILL"
        time.sleep(0.01)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


def restart_lab_redis() -> None:
    subprocess.run([sys.executable, str(PBX_LAB), "up", "redis"], check=True, capture_output=True, timeout=60)


@pytest.fixture
async def namespace(lab_redis_url: str) -> AsyncIterator[str]:
    name = "durable-" + uuid.uuid4().hex[:12]
    yield name
    redis = connect(lab_redis_url)
    await Store(redis, Keys(name)).delete_namespace()
    await redis.aclose()


async def whole(redis: RedisClient, store: Store, callback_id: str) -> bool | None:
    """True if the callback is fully stored, False if absent; None if only partly (never allowed)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.exists(store.keys.callback(callback_id))
        pipe.zscore(store.keys.due, callback_id)
        pipe.sismember(store.keys.state_index(State.SCHEDULED.value), callback_id)
        exists, due_score, indexed = await pipe.execute()
    present = {bool(exists), due_score is not None, bool(indexed)}
    return present.pop() if len(present) == 1 else None


async def test_acknowledged_creations_survive_kill_9(
    lab_redis_url: str, lab_info: dict[str, Any], namespace: str
) -> None:
    redis = connect(lab_redis_url)
    creator = Creator(Store(redis, Keys(namespace)), ACKNOWLEDGED_BEFORE_KILL)
    workers = [asyncio.create_task(creator.create_until_failure()) for _ in range(CREATORS)]
    old_pid = await lab_redis_pid(redis, lab_info)
    try:
        await asyncio.wait_for(creator.enough.wait(), 60)
        creator.killed = True
        kill_and_wait(old_pid)
        await asyncio.wait_for(asyncio.gather(*workers), 60)
    finally:
        for worker in workers:
            worker.cancel()
        await redis.aclose()
        restart_lab_redis()

    fresh = connect(lab_redis_url)
    try:
        assert await lab_redis_pid(fresh, lab_info) != old_pid
        store = Store(fresh, Keys(namespace))
        stored = {c.id: c for c in await store.get_many(sorted(creator.acknowledged))}
        assert stored == creator.acknowledged, "an acknowledged callback was lost or changed"
        due = await fresh.zrange(store.keys.due, 0, -1, withscores=True)
        expected_due = {i: time_to_ms(c.due_at) for i, c in creator.acknowledged.items()}
        assert {i: int(s) for i, s in due}.items() >= expected_due.items()
        created_events = {f["cb"] for _, f in await fresh.xrange(store.keys.events)}
        assert created_events >= set(creator.acknowledged)
        in_flight = creator.sent - set(creator.acknowledged)
        print(f"\n{len(creator.acknowledged)} acknowledged, {len(in_flight)} in flight at the kill")
        for callback_id in in_flight:
            assert await whole(fresh, store, callback_id) is not None, f"{callback_id} is half-written"
    finally:
        await fresh.aclose()
