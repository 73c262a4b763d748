"""The baselines the engine is compared with, measured in the same run on the same Redis.

* Scheduling: raw HSET + ZADD of the same hash content in non-transactional pipelines of 500: what
  Redis can take with no script, no indexes, no events, no idempotency, no validation.
* Dispatch: the minimal loop of issue 4: read the head of a due sorted set (ZRANGE), sleep until it,
  claim up to 500 due ids with a lease in one Lua call, hand each id off (a plain function call), repeat.
  No callback records, no fencing tokens, no state machine, no events, no tasks.

Their keys live in the benchmark's namespace (under ``base:``) and go with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import datetime

from redis.asyncio import Redis

from asterisk_cb.core.codec import callback_to_fields, time_to_ms
from asterisk_cb.core.model import Callback
from asterisk_cb.keys import Keys

BATCH = 500
LEASE_MS = 30_000

_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
end
return ids
"""


def _due_key(keys: Keys) -> str:
    return keys.prefix + "base:due"


async def raw_schedule(redis: Redis, keys: Keys, callbacks: Sequence[Callback]) -> float:
    """HSET + ZADD of each callback's fields (encoded beforehand), pipelined; returns the seconds."""
    rows = [
        (keys.prefix + "base:cb:" + c.id, callback_to_fields(c), time_to_ms(c.due_at), c.id)
        for c in callbacks
    ]
    started = time.perf_counter()
    for first in range(0, len(rows), BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for key, fields, due_ms, callback_id in rows[first : first + BATCH]:
                pipe.hset(key, mapping=fields)
                pipe.zadd(_due_key(keys), {callback_id: due_ms})
            await pipe.execute()
    return time.perf_counter() - started


async def add_due(redis: Redis, keys: Keys, due: Mapping[str, datetime]) -> None:
    """Put ids in the baseline's due set (filler or due ones), pipelined."""
    items = [(callback_id, time_to_ms(at)) for callback_id, at in due.items()]
    for first in range(0, len(items), 10_000):
        await redis.zadd(_due_key(keys), dict(items[first : first + 10_000]))


async def minimal_loop(redis: Redis, keys: Keys, due: Mapping[str, datetime]) -> list[tuple[float, float]]:
    """Run the minimal loop until every id of ``due`` was handed off; (due, handed off) epoch seconds."""
    claim = redis.register_script(_CLAIM)
    due_key, leases_key = _due_key(keys), keys.prefix + "base:leases"
    handoffs: list[tuple[float, float]] = []

    def hand_off(callback_id: str) -> None:
        handoffs.append((due[callback_id].timestamp(), time.time()))

    while len(handoffs) < len(due):
        head = await redis.zrange(due_key, 0, 0, withscores=True)
        if head:
            await asyncio.sleep(max(0.0, head[0][1] / 1000 - time.time()))
        for callback_id in await claim(keys=[due_key, leases_key], args=[BATCH, LEASE_MS]):
            hand_off(callback_id)
    return handoffs
