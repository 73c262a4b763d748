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
from redis.asyncio import Redis
from test_store_connections import Servers, free_port, make_callback, redis_cli, wait_until

from asterisk_cb.core import inputs as ev
from asterisk_cb.core.effects import Effect
from asterisk_cb.core.model import Callback, Event, EventKind, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, ReplicaMode, ReplicaWait, SentinelSettings, connect
from asterisk_cb.runner import ChangeNotice, ClaimRunner
from asterisk_cb.store import Claim, NotReplicated, Store
from asterisk_cb.store.encoding import VERSION_FIELD

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server"),
]

WAIT_MS = 500


@dataclass(frozen=True)
class Pair:
    """A primary and its replica, reached as the daemon would: by URL, through Sentinel, or as the
    one shard of a Redis Cluster."""

    kind: str
    primary: int  # ports
    replica: int
    replica_pid: int
    sentinel: SentinelSettings | None = None

    def connect(self) -> RedisClient:
        if self.sentinel is not None:
            return connect(sentinel=self.sentinel)
        return connect(f"redis://127.0.0.1:{self.primary}", cluster=self.kind == "cluster")


@pytest.fixture(scope="module", params=["url", "sentinel", "cluster"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    kind = request.param
    servers = Servers(tmp_path_factory.mktemp(f"replicated-{kind}"))
    primary, replica = free_port(), free_port()
    node = ("--cluster-enabled", "yes") if kind == "cluster" else ()
    servers.start("primary", primary, *node)
    servers.start("replica", replica, *node, *(() if node else ("--replicaof", "127.0.0.1", str(primary))))
    if node:
        one_shard_cluster(primary, replica)
    wait_until(lambda: "master_link_status:up" in cli(replica, "info", "replication"), "replica in sync")
    # The replica says its link is up a moment before the primary lists it online; replica_wait = auto
    # waits only for replicas the primary lists (the first test once found none and did not WAIT).
    wait_until(lambda: "state=online" in cli(primary, "info", "replication"), "primary sees the replica")
    sentinel = None
    if kind == "sentinel":
        port = free_port()
        config = servers.root / "sentinel.conf"
        config.write_text(f"sentinel monitor pair 127.0.0.1 {primary} 1\n")
        servers.start("sentinel", port, str(config), "--sentinel")
        sentinel = SentinelSettings.from_section({"sentinels": f"127.0.0.1:{port}", "service_name": "pair"})
    replica_pid = servers.processes[1].pid
    yield Pair(kind, primary, replica, replica_pid, sentinel)
    os.kill(replica_pid, signal.SIGCONT)
    servers.stop()


def one_shard_cluster(primary: int, replica: int) -> None:
    """Every slot on ``primary``, ``replica`` its replica: the smallest Cluster that can fail over."""
    cli(primary, "cluster", "addslotsrange", "0", "16383")
    primary_id = cli(primary, "cluster", "myid").strip()
    cli(replica, "cluster", "meet", "127.0.0.1", str(primary))
    wait_until(lambda: primary_id in cli(replica, "cluster", "nodes"), "cluster meet")
    cli(replica, "cluster", "replicate", primary_id)
    wait_until(lambda: "cluster_state:ok" in cli(primary, "cluster", "info"), "cluster state")


def cli(port: int, *args: str) -> str:
    return redis_cli("-p", str(port), *args)


@dataclass(frozen=True)
class Clients:
    store: RedisClient  # as the daemon connects
    primary: Redis  # plain clients of each server, to look at them
    replica: Redis


@pytest.fixture
async def clients(pair: Pair) -> AsyncIterator[Clients]:
    store = pair.connect()
    replica = Redis(port=pair.replica, decode_responses=True, single_connection_client=True)
    if pair.kind == "cluster":
        await replica.execute_command("READONLY")  # a Cluster replica serves reads only when asked
    primary = Redis(port=pair.primary, decode_responses=True)
    yield Clients(store, primary, replica)
    await Store(store, Keys("replicated")).delete_namespace()
    for client in (store, primary, replica):
        await client.aclose()


async def claimed(store: Store, callback_id: str) -> Claim:
    await store.create(make_callback(callback_id), [])
    (claim,) = (await store.claim(1, "replica-test")).claims
    return claim


async def ring(store: Store, claim: Claim) -> Claim:
    """The commit before the agent's phones are rung (as the runner makes it)."""
    after = dataclasses.replace(claim.callback, state=State.AGENT_RINGING, version=claim.callback.version + 1)
    events = [Event(after.id, EventKind.AGENT_RINGING, datetime.now(UTC), after.version)]
    return await store.commit(claim, after, events)


async def version_on(redis: Redis, callback_id: str) -> int | None:
    """The callback's version as that server has it (one plain read: a Cluster replica answers it
    on the connection that sent READONLY)."""
    found = await redis.hget(Keys("replicated").callback(callback_id), VERSION_FIELD)
    return int(found) if found else None


async def waits_run(primary: RedisClient) -> int:
    """How many WAIT commands the primary has run."""
    stats = await primary.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


async def test_a_ringing_commit_is_on_the_replica_when_it_returns(clients: Clients) -> None:
    store = Store(clients.store, Keys("replicated"))  # replica_wait = auto: the primary reports a replica
    claim = await claimed(store, "r1")
    waits_before = await waits_run(clients.primary)
    rung = await ring(store, claim)
    assert await version_on(clients.replica, "r1") == rung.callback.version
    assert await waits_run(clients.primary) == waits_before + 1
    assert await store.replicas.look() == 1


async def test_no_replica_confirming_means_no_dial(pair: Pair, clients: Clients) -> None:
    store = Store(clients.store, Keys("replicated"), ReplicaWait(ReplicaMode.AUTO, WAIT_MS))
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
    assert await version_on(clients.primary, "r2") == claim.callback.version + 1


async def test_off_never_waits_and_a_commit_that_dials_nothing_does_not_wait(clients: Clients) -> None:
    off = Store(clients.store, Keys("replicated"), ReplicaWait(ReplicaMode.OFF, WAIT_MS))
    waits_before = await waits_run(clients.primary)
    await ring(off, await claimed(off, "r3"))
    auto = Store(clients.store, Keys("replicated"))
    claim = await claimed(auto, "r4")
    later = dataclasses.replace(claim.callback, version=claim.callback.version + 1, note="moved")
    await auto.commit(claim, later, [])  # stays scheduled: nothing is dialled after it
    assert await waits_run(clients.primary) == waits_before


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


class RecordingPort:
    """The telephony half of a run, reduced to what this test looks at: whether anything was dialled."""

    screening = False

    def __init__(self) -> None:
        self.performed: list[Effect] = []

    def ready_rings(self, callback: Callback) -> int | None:
        return 1

    async def resume(self, callback: Callback) -> tuple[ev.Input, ...]:
        raise AssertionError("not a resume")

    async def next_signal(self, callback: Callback) -> ev.Input | ChangeNotice | None:
        raise AssertionError("the run must stop at the unconfirmed commit")

    async def committed(self, callback: Callback, happening: ev.Input) -> None:
        return None

    async def perform(self, callback: Callback, effect: Effect) -> ev.Input | None:
        self.performed.append(effect)
        return None

    async def close(self) -> None:
        return None


async def test_the_runner_dials_nothing_no_replica_confirmed(pair: Pair, clients: Clients) -> None:
    """The real runner over the real store: the ring is committed first, so the refusal comes before
    any effect and nothing is originated."""
    store = Store(clients.store, Keys("replicated"), ReplicaWait(ReplicaMode.ON, WAIT_MS))
    port = RecordingPort()

    async def settings_for(_: Callback) -> Settings:
        return Settings()

    runner = ClaimRunner(
        store,
        await claimed(store, "r5"),
        settings_for=settings_for,
        open_call=lambda _callback, _settings, _fence: port,
        clock=lambda: datetime.now(UTC),
    )
    os.kill(pair.replica_pid, signal.SIGSTOP)
    try:
        with pytest.raises(NotReplicated):
            await runner.run()
    finally:
        os.kill(pair.replica_pid, signal.SIGCONT)
        await runner.close()
    assert port.performed == []
    assert await version_on(clients.primary, "r5") == 2  # the ring is on record, for a resumer
