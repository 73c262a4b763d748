"""The scheduler loop against the lab's real Redis, with a recording fake executor (the one place a fake
is right: the real executor places calls, and this issue is about when and to whom work is handed)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from asterisk_cb.core.codec import time_to_ms
from asterisk_cb.core.model import Attempt, Callback, Event, EventKind, Leg, LegRole, Phase, State
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, connect
from asterisk_cb.scheduler import QUEUE_HOLD_S, Scheduler, SchedulerOptions
from asterisk_cb.store import Claim, ClaimBatch, Claimed, LeaseLost, LinePool, Store

pytestmark = pytest.mark.lab


@dataclasses.dataclass(frozen=True)
class Handoff:
    callback_id: str
    token: int
    resume: bool
    owner: str
    at: float  # time.time() when the executor's method was called


Behaviour = Callable[[Store, Claim], Awaitable[None]]


class RecordingExecutor:
    """Records every hand-off with its fencing token, then plays ``behaviour``; notes refused writes."""

    def __init__(self, store: Store, behaviour: Behaviour) -> None:
        self.store = store
        self.behaviour = behaviour
        self.handoffs: list[Handoff] = []
        self.refused: list[int] = []  # tokens whose writes were refused (lease lost)
        self.cancelled: list[int] = []
        self.succeeded: list[int] = []  # tokens whose behaviour ran to the end
        self.running = 0
        self.max_running = 0

    async def execute(self, claim: Claim) -> None:
        self.handoffs.append(Handoff(claim.callback.id, claim.token, claim.resume, claim.owner, time.time()))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await self.behaviour(self.store, claim)
            self.succeeded.append(claim.token)
        except LeaseLost:
            self.refused.append(claim.token)
            raise
        except asyncio.CancelledError:
            self.cancelled.append(claim.token)
            raise
        finally:
            self.running -= 1


async def complete(store: Store, claim: Claim) -> None:
    done = dataclasses.replace(
        claim.callback,
        state=State.COMPLETED,
        finished_at=datetime.now(UTC),
        version=claim.callback.version + 1,
    )
    await store.commit(claim, done, [])


def go_live(claim: Callback) -> Callback:
    attempt = Attempt(
        id="a1",
        phase=Phase.AGENT,
        started_at=datetime.now(UTC),
        legs=(Leg(LegRole.AGENT, f"{claim.id}-chan"),),
    )
    return dataclasses.replace(
        claim, state=State.AGENT_RINGING, attempts=(attempt,), version=claim.version + 1
    )


async def hang_forever(store: Store, claim: Claim) -> None:
    await asyncio.Event().wait()


def make_callback(callback_id: str, due_at: datetime) -> Callback:
    return Callback(
        id=callback_id,
        contact_number="+4930555" + str(abs(hash(callback_id)) % 10000),
        agent="1001",
        due_at=due_at,
        timezone="UTC",
        created_by="test",
        created_at=datetime.now(UTC),
    )


async def schedule(store: Store, callback_id: str, due_in: float) -> Callback:
    callback = make_callback(callback_id, datetime.now(UTC) + timedelta(seconds=due_in))
    await store.create(callback, [])
    return callback


@pytest.fixture
async def namespace() -> str:
    return "test-" + uuid.uuid4().hex[:12]


@pytest.fixture
async def open_store(lab_redis_url: str, namespace: str) -> AsyncIterator[Callable[[], Store]]:
    """Opens stores on the same namespace, each with its own connection (like separate daemons)."""
    clients = []

    def open_one() -> Store:
        clients.append(connect(lab_redis_url))
        return Store(clients[-1], Keys(namespace))

    yield open_one
    await open_one().delete_namespace()
    for client in clients:
        await client.aclose()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    return open_store()


@asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[Scheduler]:
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0.05)  # subscribed to wake-ups
    try:
        yield scheduler
    finally:
        scheduler.stop()
        await asyncio.wait_for(task, 5)


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def options(**changes: object) -> SchedulerOptions:
    return dataclasses.replace(SchedulerOptions(owner="sched-" + uuid.uuid4().hex[:4]), **changes)


class CountingStore(Store):
    """Counts claim rounds, to show the loop does not poll."""

    claim_rounds = 0

    async def claim_records(  # type: ignore[override]
        self, limit: int, owner: str, lease_ms: int = 30_000, lines: LinePool | None = None
    ) -> ClaimBatch[Claimed]:
        self.claim_rounds += 1
        return await super().claim_records(limit, owner, lease_ms, lines)


# one by one; claims ahead; a burst queued beyond the free slots (the executors turn over fast)
@pytest.mark.parametrize(("concurrency", "batch_size", "count"), [(1, 500, 20), (100, 3, 20), (2, 500, 200)])
async def test_hands_off_oldest_first_and_each_once(
    store: Store, concurrency: int, batch_size: int, count: int
) -> None:
    ids = [f"c{n:03}" for n in range(count)]
    for n, callback_id in enumerate(ids):
        await schedule(store, callback_id, due_in=-20 + n * 0.01)
    executor = RecordingExecutor(store, complete)
    scheduler = Scheduler(store, executor, options(concurrency=concurrency, batch_size=batch_size))
    async with running(scheduler):
        await wait_until(lambda: len(executor.succeeded) == count)  # stopping earlier cancels commits
    assert [h.callback_id for h in executor.handoffs] == ids
    assert await store.ids_in_state(State.COMPLETED) == set(ids)
    assert executor.max_running <= concurrency


async def test_a_record_it_cannot_read_is_left_to_lapse_and_the_others_run(
    store: Store, redis: RedisClient
) -> None:
    """Each record is decoded in its own executor task: one written by a newer version is logged and
    left (its lease lapses, a newer daemon may take it), the rest of its batch runs."""
    for n, callback_id in enumerate(["c1", "future-format", "c3"]):
        await schedule(store, callback_id, due_in=-3 + n)
    await redis.hset(store.keys.callback("future-format"), "st", "state-of-a-newer-version")
    executor = RecordingExecutor(store, complete)
    scheduler = Scheduler(store, executor, options())
    async with running(scheduler):
        await wait_until(lambda: len(executor.succeeded) == 2)
    assert [h.callback_id for h in executor.handoffs] == ["c1", "c3"]
    assert await redis.zscore(store.keys.leases, "future-format") is not None
    assert scheduler.stats.executor_failures == 0


async def queue_behind_a_stuck_slot(store: Store) -> tuple[Scheduler, RecordingExecutor]:
    """A scheduler with one slot whose executors turn over fast (so it claims ahead), until "stuck"
    holds the slot: the three "late" callbacks due after it wait in its queue."""
    fast = [f"fast{n:02}" for n in range(60)]
    for n, callback_id in enumerate([*fast, "stuck", "late0", "late1", "late2"]):
        await schedule(store, callback_id, due_in=-10 + n * 0.01)

    async def stuck_or_fast(store: Store, claim: Claim) -> None:
        if claim.callback.id == "stuck":
            await asyncio.Event().wait()
        await complete(store, claim)

    executor = RecordingExecutor(store, stuck_or_fast)
    return Scheduler(store, executor, options(concurrency=1, lease_ms=400, renew_every_ms=100)), executor


async def test_a_claim_queued_behind_a_busy_slot_goes_back_for_another_daemon(
    open_store: Callable[[], Store],
) -> None:
    """Queued claims keep their leases while they wait (renewed), and after QUEUE_HOLD_S go back to
    the due set, where a daemon with room takes them; none is handed to two holders."""
    store, rival_store = open_store(), open_store()
    scheduler, executor = await queue_behind_a_stuck_slot(store)
    rival = RecordingExecutor(rival_store, complete)
    async with running(scheduler):
        await wait_until(lambda: scheduler.queued == 3)
        await asyncio.sleep(0.6)  # past the lease: the queued claims' leases were renewed
        async with running(Scheduler(rival_store, rival, options())):
            await wait_until(lambda: len(rival.succeeded) == 3, within=QUEUE_HOLD_S + 3)
    assert [h.callback_id for h in rival.handoffs] == ["late0", "late1", "late2"]
    assert "late0" not in {h.callback_id for h in executor.handoffs}
    assert (scheduler.stats.requeued, scheduler.stats.leases_lost) == (3, 0)


async def test_stop_gives_back_the_queued_claims(store: Store, redis: RedisClient) -> None:
    scheduler, _ = await queue_behind_a_stuck_slot(store)
    async with running(scheduler):
        await wait_until(lambda: scheduler.queued == 3)
    for callback_id in ("late0", "late1", "late2"):
        assert await redis.zscore(store.keys.due, callback_id) is not None
        assert await redis.zscore(store.keys.leases, callback_id) is None


async def test_sleeps_until_due_time_without_polling(
    open_store: Callable[[], Store], redis: RedisClient, namespace: str
) -> None:
    store = CountingStore(redis, Keys(namespace))
    callback = await schedule(store, "soon", due_in=0.5)
    executor = RecordingExecutor(store, complete)
    async with running(Scheduler(store, executor, options())):
        await wait_until(lambda: len(executor.handoffs) == 1)
        lateness = executor.handoffs[0].at - callback.due_at.timestamp()
        await asyncio.sleep(0.5)
    assert 0 <= lateness < 0.05
    assert store.claim_rounds <= 4  # start, due time, after the commit's own wake-up; no tick


async def test_earlier_callback_from_another_daemon_wakes_it_at_once(open_store: Callable[[], Store]) -> None:
    store, other_daemon = open_store(), open_store()
    await schedule(store, "far", due_in=3600)
    executor = RecordingExecutor(store, complete)
    async with running(Scheduler(store, executor, options())):
        await asyncio.sleep(0.2)  # asleep until "far" (capped by the 60 s safety timeout)
        callback = await schedule(other_daemon, "near", due_in=0.3)
        await wait_until(lambda: len(executor.handoffs) == 1)
    assert executor.handoffs[0].callback_id == "near"
    assert 0 <= executor.handoffs[0].at - callback.due_at.timestamp() < 0.05


async def test_still_wakes_promptly_after_its_wake_up_connection_is_killed(
    lab_redis_url: str, namespace: str, open_store: Callable[[], Store]
) -> None:
    client_name = "acb-test-" + uuid.uuid4().hex[:8]
    redis = connect(lab_redis_url, name=client_name)
    store, other_daemon = Store(redis, Keys(namespace)), open_store()
    await schedule(store, "far", due_in=3600)
    executor = RecordingExecutor(store, complete)
    try:
        async with running(Scheduler(store, executor, options())):
            (subscriber,) = [
                c for c in await redis.client_list() if c["name"] == client_name and c["sub"] == "1"
            ]
            await redis.client_kill_filter(_id=subscriber["id"])
            callback = await schedule(other_daemon, "near", due_in=0.3)  # its wake-up may be lost
            await wait_until(lambda: len(executor.handoffs) == 1)
    finally:
        await redis.aclose()
    assert executor.handoffs[0].at - callback.due_at.timestamp() < 0.1


async def test_concurrency_is_bounded(store: Store) -> None:
    release = asyncio.Event()

    async def wait_then_complete(store: Store, claim: Claim) -> None:
        await release.wait()
        await complete(store, claim)

    for n in range(10):
        await schedule(store, f"c{n}", due_in=-1)
    executor = RecordingExecutor(store, wait_then_complete)
    async with running(Scheduler(store, executor, options(concurrency=3))):
        await wait_until(lambda: len(executor.handoffs) == 3)
        await asyncio.sleep(0.2)
        assert len(executor.handoffs) == 3
        release.set()
        await wait_until(lambda: len(executor.handoffs) == 10)
    assert executor.max_running == 3


async def test_renews_leases_while_the_executor_works(open_store: Callable[[], Store]) -> None:
    store, rival_store = open_store(), open_store()

    async def long_call(store: Store, claim: Claim) -> None:
        claim = await store.commit(claim, go_live(claim.callback), [])
        await asyncio.sleep(1.0)  # more than three leases
        await complete(store, claim)

    await schedule(store, "c1", due_in=-1)
    executor = RecordingExecutor(store, long_call)
    rival = RecordingExecutor(rival_store, complete)
    lease = {"lease_ms": 300, "renew_every_ms": 100}
    async with running(Scheduler(store, executor, options(**lease))):
        await wait_until(lambda: len(executor.handoffs) == 1)
        async with running(Scheduler(rival_store, rival, options(**lease))):
            await wait_until(lambda: executor.running == 0, within=3)
    assert rival.handoffs == [] and executor.refused == []
    assert (await store.get("c1")).state is State.COMPLETED


async def test_revoked_claim_cancels_its_executor(store: Store) -> None:
    callback = await schedule(store, "c1", due_in=-1)
    executor = RecordingExecutor(store, hang_forever)
    scheduler = Scheduler(store, executor, options(renew_every_ms=50))
    async with running(scheduler):
        await wait_until(lambda: len(executor.handoffs) == 1)
        cancelled = dataclasses.replace(callback, state=State.CANCELLED, version=2)
        await store.edit(callback, cancelled, [])
        await wait_until(lambda: executor.cancelled == [executor.handoffs[0].token])
        assert scheduler.stats.leases_lost == 1


class FlakyRenewals(Store):
    """Redis as a holder sees it when renewals fail (refused connection) or hang (a half-dead
    server): only the renewals are affected, the claim and everything else work."""

    mode: str = "ok"  # "ok", "fail" or "hang"

    async def renew_lease(self, callback_id: str, token: int, lease_ms: int = 30_000) -> int:
        if self.mode == "fail":
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6380. Connection refused.")
        if self.mode == "hang":
            await asyncio.Event().wait()
        return await super().renew_lease(callback_id, token, lease_ms)


@asynccontextmanager
async def holding_one(lab_redis_url: str, namespace: str, lease_ms: int) -> AsyncIterator[Holding]:
    """A scheduler over ``FlakyRenewals`` whose executor holds one callback (forever, until cancelled)."""
    redis = connect(lab_redis_url)
    store = FlakyRenewals(redis, Keys(namespace))
    try:
        await schedule(store, "c1", due_in=-1)
        executor = RecordingExecutor(store, hang_forever)
        scheduler = Scheduler(store, executor, options(lease_ms=lease_ms, renew_every_ms=100))
        async with running(scheduler):
            await wait_until(lambda: len(executor.handoffs) == 1)
            yield Holding(store, executor, scheduler)
    finally:
        await store.delete_namespace()
        await redis.aclose()


@dataclasses.dataclass(frozen=True)
class Holding:
    store: FlakyRenewals
    executor: RecordingExecutor
    scheduler: Scheduler


@pytest.mark.parametrize("mode", ["fail", "hang"])
async def test_renewals_failing_past_the_lease_stop_the_executor(
    lab_redis_url: str, namespace: str, mode: str
) -> None:
    """Without a confirmed lease the executor must not go on: another daemon may hold the callback."""
    async with holding_one(lab_redis_url, namespace, lease_ms=600) as held:
        held.store.mode = mode
        failing_since = time.monotonic()
        executor = held.executor
        await wait_until(lambda: executor.cancelled == [executor.handoffs[0].token], within=3)
        assert time.monotonic() - failing_since <= 0.6 + 0.25  # by the end of the lease
        assert held.scheduler.stats.leases_lost == 1


async def test_renewals_failing_briefly_within_the_lease_leave_the_executor_working(
    lab_redis_url: str, namespace: str
) -> None:
    async with holding_one(lab_redis_url, namespace, lease_ms=1500) as held:
        held.store.mode = "fail"
        await asyncio.sleep(0.5)  # a third of the lease
        held.store.mode = "ok"
        await asyncio.sleep(2.0)  # longer than the lease: renewed meanwhile
        assert held.executor.cancelled == [] and held.executor.running == 1
        assert held.scheduler.stats.leases_lost == 0


async def test_stop_hands_back_idle_claims_and_leaves_live_ones_to_lapse(
    open_store: Callable[[], Store], redis: RedisClient
) -> None:
    store, successor_store = open_store(), open_store()

    async def live_or_idle(store: Store, claim: Claim) -> None:
        if claim.callback.id == "live":
            await store.commit(claim, go_live(claim.callback), [])
        await asyncio.Event().wait()

    await schedule(store, "live", due_in=-2)
    await schedule(store, "idle", due_in=-1)
    executor = RecordingExecutor(store, live_or_idle)
    async with running(Scheduler(store, executor, options(lease_ms=400, renew_every_ms=100))):
        await wait_until(lambda: len(executor.handoffs) == 2)
        await asyncio.sleep(0.05)
    assert sorted(executor.cancelled) == sorted(h.token for h in executor.handoffs)
    assert await redis.zscore(store.keys.due, "idle") is not None
    assert await redis.zscore(store.keys.leases, "live") is not None

    successor = RecordingExecutor(successor_store, complete)
    successor_scheduler = Scheduler(successor_store, successor, options())
    async with running(successor_scheduler):
        await wait_until(lambda: len(successor.handoffs) == 2)
    by_id = {h.callback_id: h for h in successor.handoffs}
    assert by_id["live"].resume and not by_id["idle"].resume
    assert (successor_scheduler.stats.handed_off, successor_scheduler.stats.resumed) == (2, 1)
    assert by_id["live"].at - executor.handoffs[0].at >= 0.35  # only after the lease lapsed


async def test_pause_holds_due_callbacks_until_resumed(store: Store) -> None:
    await store.set_paused(True)
    await schedule(store, "c1", due_in=-1)
    executor = RecordingExecutor(store, complete)
    async with running(Scheduler(store, executor, options())):
        await asyncio.sleep(0.3)
        assert executor.handoffs == []
        resumed_at = time.time()
        await store.set_paused(False)
        await wait_until(lambda: len(executor.handoffs) == 1)
    assert executor.handoffs[0].at - resumed_at < 0.05


async def test_housekeeping_trims_events_and_purges_finished_callbacks(
    redis: RedisClient, store: Store
) -> None:
    await store.ensure_group("cel")
    for n in range(3):
        callback = make_callback(f"c{n}", datetime.now(UTC) - timedelta(seconds=1))
        await store.create(callback, [Event(callback.id, EventKind.CREATED, callback.created_at, 1)])
    read = await store.read_group("cel", "writer")  # read, not yet acknowledged: must survive trimming
    executor = RecordingExecutor(store, complete)
    housekeeping = {
        "housekeeping_every_s": 0.2,
        "event_retention": timedelta(0),
        "finished_retention": timedelta(0),
    }
    async with running(Scheduler(store, executor, options(**housekeeping))):
        await wait_until(lambda: len(executor.handoffs) == 3)
        await asyncio.sleep(0.5)
        assert await store.get_many(["c0", "c1", "c2"]) == []
        assert await redis.xlen(store.keys.events) == 3
        await store.ack("cel", [entry.entry_id for entry in read])
        await asyncio.sleep(0.5)
        assert await redis.xlen(store.keys.events) == 0


@pytest.mark.slow
async def test_several_schedulers_never_hand_one_callback_to_two_live_holders(
    open_store: Callable[[], Store], redis: RedisClient
) -> None:
    """Three schedulers share 300 callbacks; some hand-offs stall past their lease (like a SIGSTOP)."""
    rng = random.Random(4)
    lease_ms = 200

    async def sometimes_stall(store: Store, claim: Claim) -> None:
        await asyncio.sleep(rng.choice([0, 0, 0.005, 0.02, 0.4]))  # 0.4 s: stalled past the lease
        await complete(store, claim)

    stores = [open_store() for _ in range(3)]
    for n in range(300):
        await schedule(stores[0], f"c{n:03}", due_in=rng.uniform(-0.5, 1.5))
    # The stall is in the executor, so the renewal must not hide it: renew less often than the lease.
    executors = [RecordingExecutor(store, sometimes_stall) for store in stores]
    schedulers = [
        Scheduler(s, e, options(lease_ms=lease_ms, renew_every_ms=10_000))
        for s, e in zip(stores, executors, strict=True)
    ]
    async with running(schedulers[0]), running(schedulers[1]), running(schedulers[2]):
        completed = stores[0].keys.state_index(State.COMPLETED.value)
        deadline = time.monotonic() + 60
        while await redis.scard(completed) < 300:
            assert time.monotonic() < deadline, "not every callback completed"
            await asyncio.sleep(0.05)

    handoffs = sorted((h for e in executors for h in e.handoffs), key=lambda h: h.token)
    refused = {token for e in executors for token in e.refused}
    succeeded = {token for e in executors for token in e.succeeded}
    per_callback: dict[str, list[Handoff]] = defaultdict(list)
    for handoff in handoffs:
        per_callback[handoff.callback_id].append(handoff)
    assert len(per_callback) == 300
    for callback_id, holders in per_callback.items():
        writers = [h for h in holders if h.token in succeeded]
        assert writers == [holders[-1]], f"{callback_id}: only the newest holder may write: {holders}"
        assert [h.at for h in holders] == sorted(h.at for h in holders)
    assert refused, "the test should include late writers"
    assert await stores[0].ids_in_state(State.COMPLETED) == set(per_callback)


async def test_due_time_lateness_is_measured_on_the_server_clock(redis: RedisClient, store: Store) -> None:
    """The sleep is computed from the server's clock in the claim reply, not this process's."""
    callback = await schedule(store, "c1", due_in=0.3)
    batch = await store.claim(1, "probe")
    assert batch.claims == ()
    assert batch.next_wake_ms == time_to_ms(callback.due_at)
    seconds, micros = await redis.time()
    assert abs(batch.server_now_ms - (seconds * 1000 + micros // 1000)) < 1000
