"""A burst in the store: scripts started in one turn of the event loop go to Redis as one pipeline
(``store.pipelining``), each caller with its own reply or refusal, and the first commits that precede
a dial look at Redis's replicas once; on the lab's Redis, in each test's own namespace."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from test_store import changed, create, make_callback, ringing

from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.store import StaleToken, Store
from asterisk_cb.store.pipelining import PIPELINE_LIMIT

pytestmark = pytest.mark.lab


def count_pipelines(redis: RedisClient, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of scripts each pipeline the client opens from now on sends (one entry per pipeline)."""
    sent: list[int] = []
    open_pipeline: Callable[..., Any] = redis.pipeline

    def counting(*args: Any, **kwargs: Any) -> Any:
        pipe = open_pipeline(*args, **kwargs)
        execute = pipe.execute

        async def counted(*execute_args: Any, **execute_kwargs: Any) -> Any:
            sent.append(len(pipe.command_stack))
            return await execute(*execute_args, **execute_kwargs)

        pipe.execute = counted
        return pipe

    monkeypatch.setattr(redis, "pipeline", counting)
    return sent


async def test_scripts_started_together_share_one_pipeline_each_with_its_own_reply(
    redis: RedisClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    callbacks = [make_callback(f"c{n}", contact_number=f"+49301234{n:03d}") for n in range(20)]
    await create(store, *callbacks)
    await store.get("absent")  # the read script is known to Redis from now on
    sent = count_pipelines(redis, monkeypatch)

    found = await asyncio.gather(*(store.get(callback.id) for callback in callbacks), store.get("absent"))

    assert found == [*callbacks, None]
    assert sent == [21]


async def test_a_refused_script_fails_its_own_caller_only(store: Store) -> None:
    """Three holders commit in the same turn; the one whose claim was taken over gets ``StaleToken``,
    the other two commits are applied."""
    await create(store, *(make_callback(f"c{n}") for n in range(3)))
    claims = (await store.claim(3, "daemon-a")).claims
    stale = dataclasses.replace(claims[1], token=claims[1].token - 1)

    outcomes = await asyncio.gather(
        *(store.commit(claim, ringing(claim.callback), []) for claim in (claims[0], stale, claims[2])),
        return_exceptions=True,
    )

    assert isinstance(outcomes[1], StaleToken)
    assert [await store.get(claim.callback.id) for claim in claims] == [
        ringing(claims[0].callback),
        claims[1].callback,
        ringing(claims[2].callback),
    ]


async def test_a_burst_beyond_one_pipeline_is_cut_into_several_replies_in_order(
    redis: RedisClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(store, make_callback("c1"))
    edited = changed(make_callback("c1"), note="edited")
    await store.edit(make_callback("c1"), edited, [])
    await store.get("absent")
    sent = count_pipelines(redis, monkeypatch)
    wanted = ["c1" if n % 2 else "absent" for n in range(2 * PIPELINE_LIMIT + 10)]

    found = await asyncio.gather(*(store.get(callback_id) for callback_id in wanted))

    assert found == [edited if callback_id == "c1" else None for callback_id in wanted]
    assert sent == [PIPELINE_LIMIT, PIPELINE_LIMIT, 10]


async def test_scripts_redis_forgot_are_loaded_and_run_once(redis: RedisClient, store: Store) -> None:
    """After a Redis restart or SCRIPT FLUSH (the lab's own Redis) the scripts are loaded again; the
    gathered commits are each applied once (a NOSCRIPT reply means the script did not run)."""
    await create(store, *(make_callback(f"c{n}") for n in range(3)))
    claims = (await store.claim(3, "daemon-a")).claims
    await redis.script_flush()

    await asyncio.gather(*(store.commit(claim, ringing(claim.callback), []) for claim in claims))

    assert [await store.get(claim.callback.id) for claim in claims] == [ringing(c.callback) for c in claims]
    assert await redis.xlen(store.keys.events) == 3  # the creations' events only: no commit ran twice


async def test_a_caller_that_gives_up_leaves_the_others_their_replies(store: Store) -> None:
    await create(store, make_callback("c1"), make_callback("c2"))
    given_up = asyncio.create_task(store.get("c1"))
    kept = asyncio.create_task(store.get("c2"))
    await asyncio.sleep(0)  # both are gathered
    given_up.cancel()

    assert await kept == make_callback("c2")
    with pytest.raises(asyncio.CancelledError):
        await given_up


async def test_a_pipeline_that_fails_as_a_whole_fails_each_caller_with_that_error(
    unused_tcp_port: int,
) -> None:
    client = Redis(port=unused_tcp_port, socket_connect_timeout=1)
    store = Store(client, Keys("test-unreachable"))
    try:
        outcomes = await asyncio.gather(store.get("c1"), store.get("c2"), return_exceptions=True)
    finally:
        await client.aclose()
    assert [type(outcome) for outcome in outcomes] == [RedisConnectionError, RedisConnectionError]


async def test_a_bursts_first_ringing_commits_ask_redis_about_its_replicas_once(
    redis: RedisClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``replica_wait = auto``: whether a replica must confirm is read from ``INFO replication``,
    unknown at first; twenty commits that precede a dial at once share one look."""
    await create(store, *(make_callback(f"c{n}") for n in range(20)))
    claims = (await store.claim(20, "daemon-a")).claims
    looks: list[object] = []
    info = redis.info

    async def counted_info(*args: Any, **kwargs: Any) -> Any:
        looks.append(args)
        return await info(*args, **kwargs)

    monkeypatch.setattr(redis, "info", counted_info)

    await asyncio.gather(*(store.commit(claim, ringing(claim.callback), []) for claim in claims))

    assert looks == [("replication",)]
    assert [await store.get(claim.callback.id) for claim in claims] == [ringing(c.callback) for c in claims]
