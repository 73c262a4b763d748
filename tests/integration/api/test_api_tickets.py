"""Single-use tickets for EventSource clients, in the lab's Redis (a random namespace per test)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asterisk_cb.api.tickets import Tickets
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


async def test_a_ticket_is_redeemed_once(store: Store) -> None:
    tickets = Tickets(store)
    ticket = await tickets.issue("1001", "agent")
    assert await tickets.redeem(ticket) == ("agent", "1001")
    assert await tickets.redeem(ticket) is None


async def test_two_redeemers_racing_with_one_ticket_cannot_both_win(store: Store) -> None:
    tickets = Tickets(store)
    ticket = await tickets.issue("ops", "user")
    results = await asyncio.gather(*(tickets.redeem(ticket) for _ in range(20)))
    assert results.count(("user", "ops")) == 1
    assert results.count(None) == 19


async def test_a_ticket_expires_unused(store: Store) -> None:
    tickets = Tickets(store, ttl_s=0.2)
    ticket = await tickets.issue("1001", "agent")
    kept = Tickets(store, ttl_s=30)
    other = await kept.issue("1002", "agent")
    await asyncio.sleep(0.4)
    assert await tickets.redeem(ticket) is None
    assert await kept.redeem(other) == ("agent", "1002")


async def test_tickets_differ_and_hold_any_name(store: Store) -> None:
    tickets = Tickets(store)
    name = 'ä "quoted" \n, [x]'
    issued = [await tickets.issue(name, "user") for _ in range(5)]
    assert len(set(issued)) == 5
    assert all(len(ticket) == 43 for ticket in issued)
    assert [await tickets.redeem(ticket) for ticket in issued] == [("user", name)] * 5


async def test_redis_holds_only_a_digest_of_the_ticket(store: Store, redis: RedisClient) -> None:
    ticket = await Tickets(store).issue("1001", "agent")
    keys = [key async for key in redis.scan_iter(match=store.keys.pattern)]
    assert len(keys) == 1
    assert ticket not in keys[0]
    assert ticket not in await redis.get(keys[0])
    assert 0 < await redis.pttl(keys[0]) <= 30_000


async def test_a_value_not_written_by_tickets_counts_as_no_ticket(store: Store, redis: RedisClient) -> None:
    tickets = Tickets(store)
    ticket = await tickets.issue("1001", "agent")
    (key,) = [key async for key in redis.scan_iter(match=store.keys.pattern)]
    for stored in ("not json", "[1, 2]", '["only one"]', "{}"):
        await redis.set(key, stored)
        assert await tickets.redeem(ticket) is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.text() | st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True))
async def test_garbage_is_never_a_ticket_and_never_raises(store: Store, garbage: str) -> None:
    assert await Tickets(store).redeem(garbage) is None


def test_a_lifetime_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Tickets(object(), ttl_s=0)  # type: ignore[arg-type]


async def test_a_guessed_ticket_is_no_ticket(store: Store) -> None:
    tickets = Tickets(store)
    await tickets.issue("1001", "agent")
    assert await tickets.redeem(secrets.token_urlsafe(32)) is None
