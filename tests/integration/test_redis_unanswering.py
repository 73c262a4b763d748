"""A Redis that accepts connections but never answers (SIGSTOP: the kernel still completes the TCP
handshake and takes the bytes, the process reads nothing) fails each command within the socket
timeout, instead of hanging the daemon; the scheduler rides it out and carries on once Redis answers.

Each test starts its own redis-server (test_store_connections.Servers): stopping the lab's would
stall every other test using it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError
from test_store_connections import Servers, free_port, make_callback

from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import Timeouts, connect
from asterisk_cb.scheduler import Scheduler, SchedulerOptions
from asterisk_cb.store import Claim, Store

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server"),
]

TIMEOUTS = Timeouts(socket_s=2.0, connect_s=2.0)
LEASE_MS = 3000


@pytest.fixture
def stoppable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A private Redis (its URL and pid), continued before it is stopped for good."""
    servers = Servers(tmp_path_factory.mktemp("unanswering"))
    port = free_port()
    servers.start("redis", port)
    pid = servers.processes[0].pid
    yield f"redis://127.0.0.1:{port}/0", pid
    os.kill(pid, signal.SIGCONT)
    servers.stop()


async def test_a_command_to_a_stopped_redis_fails_within_the_socket_timeout(
    stoppable: tuple[str, int],
) -> None:
    url, pid = stoppable
    redis = connect(url, timeouts=TIMEOUTS)
    fresh = connect(url, timeouts=TIMEOUTS)  # no connection yet: it must connect to a mute server
    store = Store(redis, Keys("mute"))
    try:
        await store.create(make_callback("c1"), [])
        os.kill(pid, signal.SIGSTOP)
        for client, what in ((redis, "pooled connection"), (fresh, "new connection")):
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError, match="Timeout"):
                await asyncio.wait_for(client.get("anything"), 30)  # wait_for: fail, never hang the suite
            elapsed = time.monotonic() - started
            assert TIMEOUTS.socket_s - 0.2 < elapsed < TIMEOUTS.socket_s + 1, f"{what}: {elapsed:.2f}s"
        os.kill(pid, signal.SIGCONT)
        assert (await store.get("c1")) == make_callback("c1")  # the same client works again
    finally:
        os.kill(pid, signal.SIGCONT)
        await store.delete_namespace()
        await redis.aclose()
        await fresh.aclose()


async def test_the_scheduler_rides_out_a_stopped_redis(stoppable: tuple[str, int]) -> None:
    """Claim rounds fail with the timeout while Redis is mute (counted, retried), and a callback that
    comes due meanwhile is handed off once it answers again: at once, or, when a claim the client gave
    up on ran after all as Redis woke (it read the queued command), once that claim's lease lapsed."""
    url, pid = stoppable
    redis = connect(url, timeouts=TIMEOUTS)
    store = Store(redis, Keys("mute-scheduler"))
    handed: list[Claim] = []

    class Record:
        async def execute(self, claim: Claim) -> None:
            handed.append(claim)

    options = SchedulerOptions(
        owner="mute-test",
        retry_delay_s=0.2,
        safety_wake_s=0.5,
        lease_ms=LEASE_MS,
        renew_every_ms=LEASE_MS // 3,
    )
    scheduler = Scheduler(store, Record(), options)
    callback = dataclasses.replace(make_callback("c1"), due_at=datetime.now(UTC) + timedelta(seconds=1))
    await store.create(callback, [])
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.sleep(0.2)
        os.kill(pid, signal.SIGSTOP)
        await wait_for(lambda: scheduler.stats.claim_failures >= 2, 3 * TIMEOUTS.socket_s + 2)
        assert not handed and not task.done()
        os.kill(pid, signal.SIGCONT)
        await wait_for(lambda: bool(handed), LEASE_MS / 1000 + TIMEOUTS.socket_s + 2)
        assert handed[0].callback.id == "c1"
    finally:
        os.kill(pid, signal.SIGCONT)
        scheduler.stop()
        await task
        await store.delete_namespace()
        await redis.aclose()


async def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
