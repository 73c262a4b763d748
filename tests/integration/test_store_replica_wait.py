"""A commit that precedes a dial waits for a replica (WAIT), so a failover cannot lose it.

The lab's Redis has no replica: each test starts a primary and a replica of its own
(test_store_connections.Servers). A ringing commit returns only once the replica has it; with the
replica stopped (SIGSTOP: connected, silent) the commit fails with ``NotReplicated`` after the wait's
timeout, so its holder never reaches the dial.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from test_store_connections import Servers, free_port, make_callback, redis_cli, wait_until

from asterisk_cb.core.model import Event, EventKind, State
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, ReplicaMode, ReplicaWait, connect
from asterisk_cb.store import Claim, NotReplicated, Store

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server"),
]

WAIT_MS = 500


@dataclass(frozen=True)
class Pair:
    primary_url: str
    replica_url: str
    replica_pid: int


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    servers = Servers(tmp_path_factory.mktemp("replicated"))
    primary, replica = free_port(), free_port()
    servers.start("primary", primary)
    servers.start("replica", replica, "--replicaof", "127.0.0.1", str(primary))
    wait_until(
        lambda: "master_link_status:up" in redis_cli("-p", str(replica), "info", "replication"), "sync"
    )
    wait_until(
        lambda: "connected_slaves:1" in redis_cli("-p", str(primary), "info", "replication"), "replica"
    )
    replica_pid = servers.processes[1].pid
    yield Pair(f"redis://127.0.0.1:{primary}/0", f"redis://127.0.0.1:{replica}/0", replica_pid)
    os.kill(replica_pid, signal.SIGCONT)
    servers.stop()


@pytest.fixture
async def clients(pair: Pair) -> AsyncIterator[tuple[RedisClient, RedisClient]]:
    primary, replica = connect(pair.primary_url), connect(pair.replica_url)
    yield primary, replica
    await Store(primary, Keys("replicated")).delete_namespace()
    await primary.aclose()
    await replica.aclose()


async def claimed(store: Store, callback_id: str) -> Claim:
    await store.create(make_callback(callback_id), [])
    (claim,) = (await store.claim(1, "replica-test")).claims
    return claim


async def ring(store: Store, claim: Claim) -> Claim:
    """The commit before the agent's phones are rung (as the runner makes it)."""
    after = dataclasses.replace(claim.callback, state=State.AGENT_RINGING, version=claim.callback.version + 1)
    events = [Event(after.id, EventKind.AGENT_RINGING, datetime.now(UTC), after.version)]
    return await store.commit(claim, after, events)


async def state_on(redis: RedisClient, callback_id: str) -> State | None:
    """The callback's state as that server has it (read-only)."""
    found = await Store(redis, Keys("replicated")).get(callback_id)
    return found.state if found else None


async def waits_run(primary: RedisClient) -> int:
    """How many WAIT commands the primary has run."""
    stats = await primary.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


async def test_a_ringing_commit_is_on_the_replica_when_it_returns(
    clients: tuple[RedisClient, RedisClient],
) -> None:
    primary, replica = clients
    store = Store(primary, Keys("replicated"))  # replica_wait = auto: the primary reports a replica
    claim = await claimed(store, "r1")
    waits_before = await waits_run(primary)
    await ring(store, claim)
    assert await state_on(replica, "r1") is State.AGENT_RINGING
    assert await waits_run(primary) == waits_before + 1
    assert await store.replicas.look() == 1


async def test_no_replica_confirming_means_no_dial(
    pair: Pair, clients: tuple[RedisClient, RedisClient]
) -> None:
    primary, _ = clients
    store = Store(primary, Keys("replicated"), ReplicaWait(ReplicaMode.AUTO, WAIT_MS))
    claim = await claimed(store, "r2")
    os.kill(pair.replica_pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(NotReplicated, match=f"no replica confirmed the commit within {WAIT_MS} ms"):
            await ring(store, claim)
        elapsed = time.monotonic() - started
        assert WAIT_MS / 1000 <= elapsed < WAIT_MS / 1000 + 1, elapsed
    finally:
        os.kill(pair.replica_pid, signal.SIGCONT)
    # The commit is on the primary (a resumer takes the callback over there), it was just not confirmed.
    assert await state_on(primary, "r2") is State.AGENT_RINGING


async def test_off_never_waits_and_a_commit_that_dials_nothing_does_not_wait(
    clients: tuple[RedisClient, RedisClient],
) -> None:
    primary, _ = clients
    off = Store(primary, Keys("replicated"), ReplicaWait(ReplicaMode.OFF, WAIT_MS))
    waits_before = await waits_run(primary)
    await ring(off, await claimed(off, "r3"))
    auto = Store(primary, Keys("replicated"))
    claim = await claimed(auto, "r4")
    later = dataclasses.replace(claim.callback, version=claim.callback.version + 1, note="moved")
    await auto.commit(claim, later, [])  # stays scheduled: nothing is dialled after it
    assert await waits_run(primary) == waits_before


async def test_on_without_a_replica_refuses_every_dial(
    pair: Pair, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``replica_wait = on`` on a Redis with no replica: nothing is ever dialled (doctor says so)."""
    servers = Servers(tmp_path_factory.mktemp("alone"))
    port = free_port()
    servers.start("alone", port)
    redis = connect(f"redis://127.0.0.1:{port}/0")
    store = Store(redis, Keys("alone"), ReplicaWait(ReplicaMode.ON, 100))
    try:
        assert await store.replicas.look() == 0
        with pytest.raises(NotReplicated, match=r"replica_wait = on"):
            await ring(store, await claimed(store, "a1"))
        auto = Store(redis, Keys("alone"))  # auto: no replica, nothing to wait for
        await ring(auto, await claimed(auto, "a2"))
    finally:
        await store.delete_namespace()
        await redis.aclose()
        servers.stop()
