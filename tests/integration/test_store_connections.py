"""The store over every way of reaching Redis: a unix socket, Sentinel, and a Redis Cluster.

The lab has one plain Redis, so these tests start their own short-lived redis-server processes (private
ports and directories, stopped at the end) to stand for an admin's Sentinel or Cluster deployment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from asterisk_cb.core.model import Callback, Event, EventKind, State
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, SentinelSettings, connect
from asterisk_cb.scheduler import Scheduler, SchedulerOptions
from asterisk_cb.store import Claim, Store

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server"),
]


def free_port() -> int:
    """A port redis-server can bind, and its port + 10000 too (a Cluster node's bus port). Tried by
    binding, not by connecting: a port no server listens on can still be the local end of one of the
    suite's own connections (the range overlaps Linux's ephemeral ports), and then Redis cannot bind
    it (seen once in CI: "redis did not start")."""
    while True:
        port = random.randrange(20_000, 55_000)
        if _bindable(port) and _bindable(port + 10_000):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def redis_cli(*args: str) -> str:
    return subprocess.run(["redis-cli", *args], check=False, capture_output=True, text=True).stdout


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def wait_for_ping(port: int) -> None:
    wait_until(lambda: redis_cli("-p", str(port), "ping").strip() == "PONG", f"redis on {port} did not start")


class Servers:
    """redis-server processes of one test module, each in its own folder, all stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, port: int, *args: str) -> Path:
        """Start redis-server with ``args`` (a config file first, if any) in a new folder ``name``."""
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        common = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)]
        process = subprocess.Popen(["redis-server", *args, *common], stdout=subprocess.DEVNULL, cwd=folder)
        self.processes.append(process)
        wait_for_ping(port)
        return folder

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(10)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    running = Servers(tmp_path_factory.mktemp("redis"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def plain_redis(servers: Servers) -> tuple[int, Path]:
    """A Redis listening on a TCP port and a unix socket."""
    port = free_port()
    folder = servers.start("plain", port, "--unixsocket", "redis.sock")
    return port, folder / "redis.sock"


@pytest.fixture(scope="module")
def sentinel(servers: Servers, plain_redis: tuple[int, Path]) -> SentinelSettings:
    port = free_port()
    config = servers.root / "sentinel.conf"  # Sentinel rewrites its config file: one of our own
    config.write_text(f"sentinel monitor callbacks 127.0.0.1 {plain_redis[0]} 1\n")
    servers.start("sentinel", port, str(config), "--sentinel")
    return SentinelSettings.from_section({"sentinels": f"127.0.0.1:{port}", "service_name": "callbacks"})


@pytest.fixture(scope="module")
def cluster_url(servers: Servers) -> str:
    """A three-master Redis Cluster."""
    ports = [free_port() for _ in range(3)]
    for port in ports:
        servers.start(f"node-{port}", port, "--cluster-enabled", "yes")
    nodes = [f"127.0.0.1:{port}" for port in ports]
    redis_cli("--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes")
    for port in ports:
        wait_until(
            lambda port=port: "cluster_state:ok" in redis_cli("-p", str(port), "cluster", "info"), "cluster"
        )
    return f"redis://{nodes[0]}"


NOW = datetime.now(UTC)


def make_callback(callback_id: str) -> Callback:
    return Callback(
        id=callback_id,
        contact_number="+4930123",
        agent="1001",
        due_at=NOW - timedelta(seconds=1),
        timezone="UTC",
        created_by="test",
        created_at=NOW,
        origin_uniqueid="1795690000.7",
    )


async def exercise(redis: RedisClient) -> None:
    """Every kind of store operation, each of which must work on this connection."""
    store = Store(redis, Keys("conn-test"))
    try:
        callback = make_callback("c1")
        created = await store.create(callback, [Event("c1", EventKind.CREATED, NOW, 1)], idempotency_key="k1")
        replayed = await store.create(make_callback("c2"), [], idempotency_key="k1")
        assert created.created and replayed.callback == callback
        assert await store.ids_for_call("1795690000.7") == {"c1"}
        (claim,) = (await store.claim(10, "test")).claims
        claim = await store.renew(claim)
        live = dataclasses.replace(claim.callback, state=State.AGENT_RINGING, version=2)
        await store.commit(claim, live, [Event("c1", EventKind.AGENT_RINGING, NOW, 2)])
        await store.ensure_group("cel")
        assert len(await store.read_group("cel", "writer")) == 2
        await store.trim_events(timedelta(0))
        await store.set_setting("general", "max_attempts", "3")
        assert await store.setting_overrides() == {"general": {"max_attempts": "3"}}
        await store.set_paused(True)
        await store.set_paused(False)
    finally:
        await store.delete_namespace()
        await redis.aclose()


async def test_store_over_a_unix_socket(plain_redis: tuple[int, Path]) -> None:
    await exercise(connect(f"unix://{plain_redis[1]}"))


async def test_store_through_sentinel(sentinel: SentinelSettings) -> None:
    await exercise(connect(sentinel=sentinel))


async def test_store_on_a_cluster(cluster_url: str) -> None:
    await exercise(connect(cluster_url, cluster=True))


async def test_scheduler_on_a_cluster_wakes_and_hands_off(cluster_url: str) -> None:
    redis = connect(cluster_url, cluster=True)
    store = Store(redis, Keys("conn-test-sched"))
    handed: list[Claim] = []

    class Record:
        async def execute(self, claim: Claim) -> None:
            handed.append(claim)

    scheduler = Scheduler(store, Record(), SchedulerOptions(owner="cluster-test"))
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.sleep(0.2)
        callback = dataclasses.replace(make_callback("c1"), due_at=datetime.now(UTC) + timedelta(seconds=0.3))
        await store.create(callback, [])
        deadline = time.monotonic() + 5
        while not handed:
            assert time.monotonic() < deadline, "not handed off"
            await asyncio.sleep(0.01)
        assert time.time() - callback.due_at.timestamp() < 0.1
    finally:
        scheduler.stop()
        await task
        await store.delete_namespace()
        await redis.aclose()
