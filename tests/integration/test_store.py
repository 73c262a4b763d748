"""The Redis store against the lab's real Redis: every test works in its own random namespace."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from asterisk_cb.core.codec import callback_to_fields, time_to_ms
from asterisk_cb.core.inputs import Waiting
from asterisk_cb.core.model import Attempt, Callback, Event, EventKind, Leg, LegRole, Phase, State
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.store import (
    CallbackLive,
    CallLocks,
    Claim,
    DuplicateCallback,
    LeaseExpired,
    LinePool,
    StaleToken,
    Store,
    VersionConflict,
)

pytestmark = pytest.mark.lab


NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _now_is_the_tests_start() -> None:
    """Due times are relative to each test's start, not to the module's import: in a full run the
    e2e tests come first and take minutes, which would make "due in 60 s" already due."""
    global NOW  # noqa: PLW0603 - the helpers below read it
    NOW = datetime.now(UTC)


def make_callback(callback_id: str, due_in: float = -1.0, **changes: object) -> Callback:
    """A scheduled callback due ``due_in`` seconds from the test run's start."""
    callback = Callback(
        id=callback_id,
        contact_number="+4930" + str(abs(hash(callback_id)) % 10**7),
        agent="1001",
        due_at=NOW + timedelta(seconds=due_in),
        timezone="Europe/Berlin",
        created_by="agent/1001",
        created_at=NOW,
    )
    return dataclasses.replace(callback, **changes)


def changed(callback: Callback, **changes: object) -> Callback:
    """The next version of ``callback`` (what core.lifecycle would return)."""
    return dataclasses.replace(callback, version=callback.version + 1, **changes)


def event(callback: Callback, kind: EventKind) -> Event:
    return Event(callback.id, kind, NOW, callback.version)


async def create(store: Store, *callbacks: Callback) -> None:
    for callback in callbacks:
        await store.create(callback, [event(callback, EventKind.CREATED)])


def ringing(callback: Callback) -> Callback:
    """The record a holder commits just before originating: attempt id and channel ids first."""
    attempt = Attempt(
        id=f"{callback.id}-a1",
        phase=Phase.AGENT,
        started_at=NOW,
        legs=(Leg(LegRole.AGENT, f"{callback.id}-agent-chan"),),
    )
    return changed(callback, state=State.AGENT_RINGING, attempts=(attempt,))


async def stream_length(redis: RedisClient, store: Store) -> int:
    return int(await redis.xlen(store.keys.events))


# --- creation, idempotency, indexes ---------------------------------------------------------------


async def test_create_stores_record_indexes_and_event(redis: RedisClient, store: Store) -> None:
    callback = make_callback("c1", origin_uniqueid="1700000000.11", origin_linkedid="1700000000.10")
    await create(store, callback)

    assert await store.get("c1") == callback
    assert await store.ids_in_state(State.SCHEDULED) == {"c1"}
    assert await store.ids_for_agent("1001") == {"c1"}
    assert await store.ids_for_contact(callback.contact_number) == {"c1"}
    assert await store.ids_for_call("1700000000.11") == {"c1"}
    assert await store.ids_for_call("1700000000.10") == {"c1"}
    assert await store.ids_for_call("1700000000.1") == set()
    assert await redis.zscore(store.keys.due, "c1") == time_to_ms(callback.due_at)
    assert await stream_length(redis, store) == 1


async def test_contact_index_separates_numbers_sharing_a_prefix(store: Store) -> None:
    await create(
        store, make_callback("short", contact_number="1234"), make_callback("long", contact_number="12345")
    )
    assert await store.ids_for_contact("1234") == {"short"}
    assert await store.ids_for_contact("12345") == {"long"}


async def test_multi_valued_indexes_follow_edits(store: Store) -> None:
    first = make_callback("c1", contact_number="+4930111", origin_linkedid="1700.5")
    await create(store, first, make_callback("c2", contact_number="+4930111", origin_linkedid="1700.5"))
    assert await store.ids_for_contact("+4930111") == {"c1", "c2"}

    moved = changed(first, contact_number="+4930222", origin_linkedid=None)
    await store.edit(first, moved, [])
    assert await store.ids_for_contact("+4930111") == {"c2"}
    assert await store.ids_for_contact("+4930222") == {"c1"}
    assert await store.ids_for_call("1700.5") == {"c2"}


async def test_the_contact_index_drops_a_callback_in_the_write_that_finishes_it(
    redis: RedisClient, store: Store
) -> None:
    first = make_callback("c1", contact_number="+4930111")
    await create(store, first, make_callback("c2", contact_number="+4930111"))
    done = changed(first, state=State.CANCELLED, finished_at=NOW, next_at=None)
    await store.edit(first, done, [])
    assert await store.ids_for_contact("+4930111") == {"c2"}
    assert await store.ids_in_state(State.CANCELLED) == {"c1"}, "the other indexes keep it"
    other = await store.get("c2")
    await store.edit(other, changed(other, state=State.CANCELLED, finished_at=NOW, next_at=None), [])
    assert await redis.hkeys(store.keys.contact_index) == [], "an empty entry goes"


async def test_retried_request_returns_first_callback_and_writes_nothing(
    redis: RedisClient, store: Store
) -> None:
    first = make_callback("first")
    created = await store.create(first, [event(first, EventKind.CREATED)], idempotency_key="req-1")
    retry = make_callback("second")
    replayed = await store.create(retry, [event(retry, EventKind.CREATED)], idempotency_key="req-1")

    assert created.created and not replayed.created
    assert replayed.callback == first
    assert await store.get("second") is None
    assert await redis.zcard(store.keys.due) == 1
    assert await stream_length(redis, store) == 1


async def test_idempotency_key_is_honoured_for_one_to_two_windows(
    redis: RedisClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("asterisk_cb.store.records.IDEMPOTENCY_WINDOW", timedelta(seconds=1))
    first = await store.create(make_callback("first"), [], idempotency_key="req-1")
    buckets = [key async for key in redis.scan_iter(match=store.keys.pattern.replace("*", "idem:*"))]
    assert len(buckets) == 1 and 0 < await redis.ttl(buckets[0]) <= 2
    await asyncio.sleep(0.9)
    assert not (await store.create(make_callback("retry"), [], idempotency_key="req-1")).created
    await asyncio.sleep(2.1)  # two windows later the key is forgotten
    late = await store.create(make_callback("late"), [], idempotency_key="req-1")
    assert late.created and late.callback.id == "late" != first.callback.id


async def test_concurrent_retries_create_exactly_one(store: Store) -> None:
    candidates = [make_callback(f"try-{n}") for n in range(20)]
    results = await asyncio.gather(*(store.create(c, [], idempotency_key="same") for c in candidates))
    assert sum(result.created for result in results) == 1
    assert len({result.callback.id for result in results}) == 1


async def test_same_id_twice_is_refused(store: Store) -> None:
    await create(store, make_callback("c1"))
    with pytest.raises(DuplicateCallback):
        await create(store, make_callback("c1"))


# --- claims, leases, fencing ----------------------------------------------------------------------


async def test_claim_takes_oldest_due_first_in_batches(store: Store) -> None:
    await create(
        store, *(make_callback(f"c{n}", due_in=-10 + n) for n in range(5)), make_callback("later", 60)
    )

    first = await store.claim(3, "daemon-a")
    rest = await store.claim(10, "daemon-a")

    assert [c.callback.id for c in first.claims] == ["c0", "c1", "c2"]
    assert [c.callback.id for c in rest.claims] == ["c3", "c4"]
    tokens = [c.token for c in first.claims + rest.claims]
    assert tokens == sorted(tokens) and len(set(tokens)) == 5
    assert rest.next_wake_ms is not None and rest.next_wake_ms <= time_to_ms(NOW + timedelta(seconds=60))
    assert not any(c.resume for c in first.claims + rest.claims)


async def test_an_unreadable_record_does_not_hold_up_the_batch(redis: RedisClient, store: Store) -> None:
    await create(store, make_callback("c1", -3), make_callback("future-format", -2), make_callback("c3", -1))
    await redis.hset(store.keys.callback("future-format"), "st", "state-of-a-newer-version")

    batch = await store.claim(10, "daemon-a", lease_ms=150)
    assert [claim.callback.id for claim in batch.claims] == ["c1", "c3"]
    lapses_at = await redis.zscore(store.keys.leases, "future-format")
    assert lapses_at == batch.server_now_ms + 150  # then another (newer) daemon may take it


async def test_lease_expiry_is_the_server_clock_plus_lease(redis: RedisClient, store: Store) -> None:
    await create(store, make_callback("c1"))
    seconds, micros = await redis.time()
    before_ms = seconds * 1000 + micros // 1000
    batch = await store.claim(1, "daemon-a", lease_ms=5000)
    expiry = await redis.zscore(store.keys.leases, "c1")
    assert before_ms <= batch.server_now_ms <= before_ms + 1000
    assert expiry == batch.server_now_ms + 5000 == batch.claims[0].lease_until_ms


async def test_holder_past_its_lease_cannot_write_even_unclaimed(store: Store) -> None:
    await create(store, make_callback("c1"))
    (claim,) = (await store.claim(1, "daemon-a", lease_ms=150)).claims
    await asyncio.sleep(0.25)
    with pytest.raises(LeaseExpired):
        await store.commit(claim, ringing(claim.callback), [])
    with pytest.raises(LeaseExpired):
        await store.renew(claim)
    assert (await store.get("c1")) == claim.callback


async def test_late_writer_is_fenced_off_after_takeover(store: Store) -> None:
    await create(store, make_callback("c1"))
    (late,) = (await store.claim(1, "daemon-a", lease_ms=150)).claims
    await asyncio.sleep(0.25)  # daemon-a "was SIGSTOPped" past its lease
    (current,) = (await store.claim(1, "daemon-b")).claims
    assert current.token > late.token and not current.resume

    for write in (store.commit(late, ringing(late.callback), []), store.renew(late), store.release(late)):
        with pytest.raises(StaleToken):
            await write
    await store.commit(current, ringing(current.callback), [])
    assert (await store.get("c1")).state is State.AGENT_RINGING


async def test_renew_keeps_the_claim_past_its_first_lease(store: Store) -> None:
    await create(store, make_callback("c1"))
    (claim,) = (await store.claim(1, "daemon-a", lease_ms=300)).claims
    for _ in range(4):
        await asyncio.sleep(0.15)
        claim = await store.renew(claim, lease_ms=300)
    assert (await store.claim(1, "daemon-b")).claims == ()
    await store.commit(claim, ringing(claim.callback), [])


async def test_commit_to_live_keeps_lease_and_updates_indexes_and_stream(
    redis: RedisClient, store: Store
) -> None:
    await create(store, make_callback("c1"))
    (claim,) = (await store.claim(1, "daemon-a")).claims
    live = ringing(claim.callback)
    claim = await store.commit(claim, live, [event(live, EventKind.AGENT_RINGING)])

    assert await store.get("c1") == live
    assert await redis.zscore(store.keys.leases, "c1") is not None
    assert await redis.zscore(store.keys.due, "c1") is None
    assert await store.ids_in_state(State.SCHEDULED) == set()
    assert await store.ids_in_state(State.AGENT_RINGING) == {"c1"}
    assert await stream_length(redis, store) == 2
    await store.renew(claim)  # still the holder


async def test_commit_to_scheduled_releases_to_due_set_at_next_at(redis: RedisClient, store: Store) -> None:
    await create(store, make_callback("c1"))
    (claim,) = (await store.claim(1, "daemon-a")).claims
    retry_at = NOW + timedelta(minutes=5)
    await store.commit(claim, changed(claim.callback, next_at=retry_at), [])

    assert await redis.zscore(store.keys.due, "c1") == time_to_ms(retry_at)
    assert await redis.zscore(store.keys.leases, "c1") is None
    with pytest.raises(StaleToken):
        await store.renew(claim)


async def test_commit_to_finished_leaves_the_schedule(redis: RedisClient, store: Store) -> None:
    await create(store, make_callback("c1"))
    (claim,) = (await store.claim(1, "daemon-a")).claims
    claim = await store.commit(claim, ringing(claim.callback), [])
    done = changed(claim.callback, state=State.COMPLETED, finished_at=NOW)
    await store.commit(claim, done, [event(done, EventKind.COMPLETED)])

    assert await redis.zscore(store.keys.due, "c1") is None
    assert await redis.zscore(store.keys.leases, "c1") is None
    assert await store.ids_in_state(State.COMPLETED) == {"c1"}
    assert await store.ids_in_state(State.AGENT_RINGING) == set()


async def stored_record(redis: RedisClient, store: Store, callback_id: str) -> tuple[dict[str, str], str]:
    """The callback's hash without the claim's bookkeeping, and its history string."""
    fields = await redis.hgetall(store.keys.callback(callback_id))
    history = await redis.get(store.keys.history(callback_id)) or ""
    return {key: value for key, value in fields.items() if key not in {"_tok", "_own", "_lk"}}, history


def as_written_whole(callback: Callback) -> tuple[dict[str, str], str]:
    """What a write of the whole record would leave: every non-default field, less the id (the key
    holds it), the live flag, and the history in its own string."""
    fields = callback_to_fields(callback)
    del fields["id"]
    history = fields.pop("hist", "")
    return fields | ({"_live": "1"} if callback.state.is_live else {}), history


async def test_writes_of_the_changed_fields_leave_the_record_a_whole_write_would(
    redis: RedisClient, store: Store
) -> None:
    """Commits send only what a transition changes: through live, back to scheduled with fields gone
    back to their defaults, a person's edit and the end, the stored record is always the whole one."""
    await create(store, make_callback("c1", queue="sales", note="call after 3"))
    (claim,) = (await store.claim(1, "daemon-a")).claims
    live = ringing(claim.callback)
    claim = await store.commit(claim, live, [])
    assert await stored_record(redis, store, "c1") == as_written_whole(live)
    retry = changed(live, state=State.SCHEDULED, queue=None, note="", next_at=NOW + timedelta(seconds=1))
    await store.commit(claim, retry, [])
    assert await stored_record(redis, store, "c1") == as_written_whole(retry)
    claim = dataclasses.replace(claim, callback=retry)
    edited = changed(claim.callback, contact_name="Ada", attempts=(), next_at=None)
    await store.edit(claim.callback, edited, [])
    assert await stored_record(redis, store, "c1") == as_written_whole(edited)
    assert await redis.exists(store.keys.history("c1")) == 0
    (claim,) = (await store.claim(1, "daemon-a")).claims
    done = changed(claim.callback, state=State.CANCELLED, finished_at=NOW, cancelled_by="agent/1001")
    await store.commit(claim, done, [])
    assert await stored_record(redis, store, "c1") == as_written_whole(done)


async def test_refused_commit_changes_nothing(redis: RedisClient, store: Store) -> None:
    await create(store, make_callback("c1"))
    (late,) = (await store.claim(1, "daemon-a", lease_ms=100)).claims
    await asyncio.sleep(0.2)
    (current,) = (await store.claim(1, "daemon-b")).claims
    snapshot = await redis.hgetall(store.keys.callback("c1"))

    with pytest.raises(StaleToken):
        await store.commit(
            late, changed(late.callback, state=State.CANCELLED), [event(late.callback, EventKind.CANCELLED)]
        )

    assert await redis.hgetall(store.keys.callback("c1")) == snapshot
    assert await store.ids_in_state(State.SCHEDULED) == {"c1"}
    assert await store.ids_in_state(State.CANCELLED) == set()
    assert await stream_length(redis, store) == 1
    assert await redis.zscore(store.keys.leases, "c1") is not None
    await store.renew(current)


@pytest.mark.parametrize(
    "live_state", [State.AGENT_RINGING, State.CONTACT_RINGING, State.QUEUED, State.IN_PROGRESS]
)
async def test_expired_live_claim_is_resumed_with_its_recorded_channels(
    store: Store, live_state: State
) -> None:
    await create(store, make_callback("c1"))
    (claim,) = (await store.claim(1, "daemon-a", lease_ms=150)).claims
    await store.commit(claim, dataclasses.replace(ringing(claim.callback), state=live_state), [])
    await asyncio.sleep(0.25)  # daemon-a crashed during the ring / the talk

    (resumed,) = (await store.claim(1, "daemon-b")).claims
    assert resumed.resume and resumed.token > claim.token
    attempt = resumed.callback.current_attempt
    assert attempt is not None and attempt.channel_ids == ("c1-agent-chan",)


async def test_release_returns_untouched_claim_but_not_a_live_one(redis: RedisClient, store: Store) -> None:
    await create(store, make_callback("idle"), make_callback("busy"))
    claims = {claim.callback.id: claim for claim in (await store.claim(2, "daemon-a")).claims}
    idle, busy = claims["idle"], claims["busy"]
    busy = await store.commit(busy, ringing(busy.callback), [])

    assert await store.release(idle) is True
    assert await store.release(busy) is False
    assert await redis.zscore(store.keys.due, "idle") is not None
    assert await redis.zscore(store.keys.leases, "busy") is not None


# --- call locks: one call at a time per agent and per contact number, lines under a cap --------------


def locks_of(claim: Claim, lines: LinePool | None = None) -> CallLocks:
    callback = claim.callback
    return CallLocks(callback.agent, callback.contact_number, lines)


async def claimed(store: Store, *callbacks: Callback, lease_ms: int = 30_000) -> dict[str, Claim]:
    await create(store, *callbacks)
    batch = await store.claim(len(callbacks), "daemon-a", lease_ms=lease_ms)
    return {claim.callback.id: claim for claim in batch.claims}


async def test_an_agent_or_a_number_in_one_call_is_refused_to_every_other_callback(store: Store) -> None:
    claims = await claimed(
        store,
        make_callback("first", agent="1001", contact_number="+4930111"),
        make_callback("same-agent", agent="1001", contact_number="+4930222"),
        make_callback("same-number", agent="1002", contact_number="+4930111"),
        make_callback("neither", agent="1003", contact_number="+4930222"),
    )
    assert await store.take_call_locks(claims["first"], locks_of(claims["first"])) is None
    assert await store.take_call_locks(claims["first"], locks_of(claims["first"])) is None  # again: ours

    refused = {name: await store.take_call_locks(claims[name], locks_of(claims[name])) for name in claims}
    assert refused == {
        "first": None,
        "same-agent": Waiting.AGENT,
        "same-number": Waiting.CONTACT,
        "neither": None,  # "same-agent" was refused whole: its number's lock was not taken
    }
    queue_phase = dataclasses.replace(locks_of(claims["same-number"]), agent=None)
    assert await store.take_call_locks(claims["same-number"], queue_phase) is Waiting.CONTACT


async def test_locks_of_a_holder_gone_before_ringing_lapse_with_its_lease(store: Store) -> None:
    claims = await claimed(store, make_callback("gone", agent="1001"), lease_ms=150)
    assert await store.take_call_locks(claims["gone"], locks_of(claims["gone"])) is None
    other = (await claimed(store, make_callback("other", agent="1001")))["other"]
    assert await store.take_call_locks(other, locks_of(other)) is Waiting.AGENT
    await asyncio.sleep(0.25)  # the holder vanished before committing its ring
    assert await store.take_call_locks(other, locks_of(other)) is None


async def test_locks_of_a_live_call_outlive_its_holder_and_only_the_resumer_retakes_them(
    redis: RedisClient,
    store: Store,
) -> None:
    holder = (await claimed(store, make_callback("live", agent="1001"), lease_ms=150))["live"]
    assert await store.take_call_locks(holder, locks_of(holder)) is None
    holder = await store.commit(holder, ringing(holder.callback), [])
    other = (await claimed(store, make_callback("other", agent="1001")))["other"]
    await asyncio.sleep(0.25)  # the holder's daemon died mid-call: the lease lapsed, the call lives

    assert await store.take_call_locks(other, locks_of(other)) is Waiting.AGENT
    (resumer,) = (await store.claim(1, "daemon-b")).claims
    assert resumer.resume
    assert await store.take_call_locks(resumer, locks_of(resumer)) is None
    assert await redis.get(store.keys.agent_lock("1001")) == f"live {resumer.token}"
    assert await store.take_call_locks(other, locks_of(other)) is Waiting.AGENT

    ended = changed(resumer.callback, state=State.COMPLETED, finished_at=NOW)
    await store.commit(resumer, ended, [])  # the write that ends the call ends its locks
    assert await store.take_call_locks(other, locks_of(other)) is None


async def test_release_gives_back_what_the_run_took_but_never_a_live_calls_locks(
    redis: RedisClient, store: Store
) -> None:
    claims = await claimed(store, make_callback("run", agent="1001"), make_callback("other", agent="1001"))
    run, other = claims["run"], claims["other"]
    assert await store.take_call_locks(run, locks_of(run, LinePool("outbound", 5))) is None
    run = await store.commit(run, ringing(run.callback), [])
    assert await store.release_call_locks(run, locks_of(run, LinePool("outbound", 5))) == 0  # the call lives

    run = await store.commit(run, changed(run.callback, state=State.COMPLETED, finished_at=NOW), [])
    assert (
        await store.release_call_locks(run, locks_of(run, LinePool("outbound", 5))) == 3
    )  # agent, number, line
    assert await redis.exists(store.keys.agent_lock("1001"), store.keys.lines("outbound")) == 0
    assert await store.take_call_locks(other, locks_of(other)) is None


async def test_a_late_holder_can_neither_take_nor_give_back_the_locks(
    redis: RedisClient, store: Store
) -> None:
    late = (await claimed(store, make_callback("c1", agent="1001"), lease_ms=150))["c1"]
    assert await store.take_call_locks(late, locks_of(late)) is None
    await asyncio.sleep(0.25)  # daemon-a "was SIGSTOPped" past its lease
    (current,) = (await store.claim(1, "daemon-b")).claims
    assert await store.take_call_locks(current, locks_of(current)) is None

    with pytest.raises(StaleToken):
        await store.take_call_locks(late, locks_of(late))
    assert await store.release_call_locks(late, locks_of(late)) == 0
    assert await redis.get(store.keys.agent_lock("1001")) == f"c1 {current.token}"


async def test_agents_in_calls_names_the_agents_whose_lock_holds(store: Store) -> None:
    claims = await claimed(
        store,
        make_callback("live", agent="1001", contact_number="+4930111"),
        make_callback("ringing", agent="1002", contact_number="+4930222"),
        make_callback("gone", agent="1003", contact_number="+4930333"),
        lease_ms=150,
    )
    for claim in claims.values():
        assert await store.take_call_locks(claim, locks_of(claim)) is None
    await store.commit(claims["live"], ringing(claims["live"].callback), [])
    assert await store.agents_in_calls(["1001", "1002", "1003", "1004"]) == {"1001", "1002", "1003"}

    await asyncio.sleep(0.25)  # holders gone: a live call still holds its agent, a mere claim does not
    assert await store.agents_in_calls(["1001", "1002", "1003", "1004"]) == {"1001"}
    assert await store.agents_in_calls([]) == set()


TWO_LINES = LinePool("outbound", 2)


async def test_a_line_pool_lets_at_most_cap_calls_through_and_frees_a_line_when_one_ends(
    redis: RedisClient,
    store: Store,
) -> None:
    claims = await claimed(store, *(make_callback(f"c{n}", agent=f"10{n:02}") for n in range(3)))
    first, second, third = claims["c0"], claims["c1"], claims["c2"]
    for claim in (first, second):
        assert await store.take_call_locks(claim, locks_of(claim, TWO_LINES)) is None
    assert await store.take_call_locks(third, locks_of(third, TWO_LINES)) is Waiting.CALL_LIMIT
    assert await redis.exists(store.keys.agent_lock("1002")) == 0  # refused whole

    await store.commit(first, changed(first.callback, next_at=NOW + timedelta(minutes=5)), [])
    assert await store.take_call_locks(third, locks_of(third, TWO_LINES)) is None
    assert await redis.hgetall(store.keys.lines("outbound")) == {
        "c1": str(second.token),
        "c2": str(third.token),
    }


async def test_claims_stop_at_the_free_lines_and_the_oldest_due_goes_first_when_one_frees(
    redis: RedisClient,
    store: Store,
) -> None:
    one_line = LinePool("outbound", 1)
    await create(
        store,
        make_callback("talking", -30, agent="1001"),
        make_callback("newer", -5, agent="1002"),
        make_callback("older", -10, agent="1003"),
    )
    (talking,) = (await store.claim(10, "daemon-a", lines=one_line)).claims
    assert (await store.claim(10, "daemon-b", lines=one_line)).claims == ()  # the claim holds the line
    assert await store.take_call_locks(talking, locks_of(talking, one_line)) is None
    talking = await store.commit(talking, ringing(talking.callback), [])

    full = await store.claim(10, "daemon-b", lines=one_line)
    assert full.claims == ()  # both stay in the due set, in their order
    assert full.next_wake_ms == await redis.zscore(store.keys.leases, "talking")  # not the overdue head

    async with redis.pubsub() as wake:
        await wake.subscribe(store.keys.wake_channel)
        talking = await store.commit(talking, changed(talking.callback, state=State.COMPLETED), [])
        assert await store.release_call_locks(talking, locks_of(talking, one_line)) == 3
        messages = [await wake.get_message(timeout=1) for _ in range(2)]
        assert {"type": "message", "data": "line"}.items() <= (messages[-1] or {}).items()

    assert [claim.callback.id for claim in (await store.claim(10, "daemon-b", lines=one_line)).claims] == [
        "older"
    ]


# --- a person's changes ---------------------------------------------------------------------------


async def test_edit_checks_version(redis: RedisClient, store: Store) -> None:
    callback = make_callback("c1")
    await create(store, callback)
    moved = changed(callback, due_at=NOW + timedelta(hours=1))
    await store.edit(callback, moved, [event(moved, EventKind.RESCHEDULED)])

    with pytest.raises(VersionConflict):
        await store.edit(callback, changed(callback, note="stale"), [])
    assert await redis.zscore(store.keys.due, "c1") == time_to_ms(moved.due_at)


async def test_person_cannot_change_a_live_callback(store: Store) -> None:
    await create(store, make_callback("c1"))
    (claim,) = (await store.claim(1, "daemon-a")).claims
    live = ringing(claim.callback)
    await store.commit(claim, live, [])
    with pytest.raises(CallbackLive):
        await store.edit(live, changed(live, state=State.CANCELLED), [])


async def test_cancel_of_claimed_not_live_callback_revokes_the_claim(
    redis: RedisClient, store: Store
) -> None:
    callback = make_callback("c1")
    await create(store, callback)
    (claim,) = (await store.claim(1, "daemon-a")).claims
    cancelled = changed(callback, state=State.CANCELLED, cancelled_by="supervisor")
    await store.edit(callback, cancelled, [event(cancelled, EventKind.CANCELLED)])

    with pytest.raises(StaleToken):  # the holder tries to record its attempt before dialling
        await store.commit(claim, ringing(claim.callback), [])
    assert (await store.get("c1")).state is State.CANCELLED
    assert await redis.zscore(store.keys.leases, "c1") is None
    assert (await store.claim(10, "daemon-b")).claims == ()


# --- pause -----------------------------------------------------------------------------------------


async def test_pause_holds_due_work_but_follows_live_calls(redis: RedisClient, store: Store) -> None:
    await create(store, make_callback("live", -3), make_callback("claimed", -2), make_callback("waiting", -1))
    claims = {claim.callback.id: claim for claim in (await store.claim(2, "daemon-a", lease_ms=150)).claims}
    live, claimed = claims["live"], claims["claimed"]
    await store.commit(live, ringing(live.callback), [])
    await store.set_paused(True)
    await asyncio.sleep(0.25)  # daemon-a is gone

    paused_batch = await store.claim(10, "daemon-b")
    assert [(c.callback.id, c.resume) for c in paused_batch.claims] == [("live", True)]
    assert await redis.zscore(store.keys.due, claimed.callback.id) is not None

    await store.set_paused(False)
    assert {c.callback.id for c in (await store.claim(10, "daemon-b")).claims} == {"claimed", "waiting"}


# --- event stream ----------------------------------------------------------------------------------


async def test_groups_read_and_trim_never_passes_the_slowest_group(redis: RedisClient, store: Store) -> None:
    await store.ensure_group("cel")
    await store.ensure_group("feed")
    await store.ensure_group("feed")  # idempotent
    await create(store, *(make_callback(f"c{n}") for n in range(6)))

    cel = await store.read_group("cel", "writer-1", count=100)
    await store.ack("cel", [entry.entry_id for entry in cel])
    feed = await store.read_group("feed", "api-1", count=4)
    await store.ack("feed", [entry.entry_id for entry in feed[:2]])
    assert [entry.event.callback_id for entry in cel] == [f"c{n}" for n in range(6)]

    assert await store.trim_events(timedelta(0)) == 2  # feed still has c2, c3 pending, c4, c5 unread
    await store.ack("feed", [entry.entry_id for entry in feed[2:]])
    assert await store.trim_events(timedelta(0)) == 2  # c4, c5 not yet delivered to feed
    assert await stream_length(redis, store) == 2
    assert await store.trim_events(timedelta(hours=1)) == 0  # young entries stay regardless


# --- runtime setting overrides -----------------------------------------------------------------------


async def test_setting_overrides_set_and_reset(store: Store) -> None:
    await store.set_setting("general", "retry_interval", "300")
    await store.set_setting("queue/sales", "max_attempts", "5")
    await store.set_setting("agent/1001", "ring_timeout_agent", "20")
    await store.reset_setting("agent/1001", "ring_timeout_agent")
    assert await store.setting_overrides() == {
        "general": {"retry_interval": "300"},
        "queue/sales": {"max_attempts": "5"},
    }
    await store.reset_setting("queue/sales")
    assert await store.setting_overrides() == {"general": {"retry_interval": "300"}}
    with pytest.raises(ValueError, match="scope"):
        await store.set_setting("team:x", "max_attempts", "1")


# --- wake-ups ----------------------------------------------------------------------------------------


async def test_wake_is_published_only_for_a_new_earliest_callback(redis: RedisClient, store: Store) -> None:
    await create(store, make_callback("now", due_in=10))
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(store.keys.wake_channel)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        await create(store, make_callback("later", due_in=60))
        await create(store, make_callback("sooner", due_in=5))
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        assert message is not None and int(message["data"]) == time_to_ms(NOW + timedelta(seconds=5))
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None


@asynccontextmanager
async def following(
    follow: Callable[[Callable[[str | None], None]], Awaitable[None]],
) -> AsyncIterator[asyncio.Queue[str | None]]:
    """What a store's ``follow_*`` hears, in a queue; the first entry is the gap at subscription (None)."""
    heard: asyncio.Queue[str | None] = asyncio.Queue()
    task = asyncio.create_task(follow(heard.put_nowait))
    try:
        assert await asyncio.wait_for(heard.get(), 5) is None
        yield heard
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_follow_wakeups_hears_a_new_earliest_callback(store: Store) -> None:
    async with following(store.follow_wakeups) as heard:
        await create(store, make_callback("sooner", due_in=5))
        woken = await asyncio.wait_for(heard.get(), 5)
    assert woken is not None and int(woken) == time_to_ms(NOW + timedelta(seconds=5))


# --- retention --------------------------------------------------------------------------------------


async def test_purge_deletes_only_long_finished_callbacks_and_their_traces(
    redis: RedisClient, store: Store
) -> None:
    await create(
        store,
        make_callback("old", origin_uniqueid="1700.1", contact_number="+4930777"),
        make_callback("recent", contact_number="+4930777"),
        make_callback("pending"),
    )
    claims = {c.callback.id: c for c in (await store.claim(3, "daemon-a")).claims}
    old = await store.commit(claims["old"], ringing(claims["old"].callback), [])
    done = changed(old.callback, state=State.COMPLETED, finished_at=NOW - timedelta(days=2))
    await store.commit(old, done, [])
    recent = changed(claims["recent"].callback, state=State.EXHAUSTED, finished_at=NOW)
    await store.commit(claims["recent"], recent, [])
    await store.release(claims["pending"])

    assert await store.purge_finished(timedelta(days=1)) == 1
    assert await store.get("old") is None
    assert await redis.exists(store.keys.history("old")) == 0
    assert await store.ids_in_state(State.COMPLETED) == set()
    assert await store.ids_for_call("1700.1") == set()
    assert await store.ids_for_contact("+4930777") == set(), "the contact index lists pending ones only"
    assert (await store.get("recent")) == recent
    assert (await store.get("pending")).state is State.SCHEDULED
