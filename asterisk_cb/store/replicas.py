"""Confirming the commits that precede a dial on a replica (WAIT), so a failover cannot lose them.

Redis replicates asynchronously: a primary that acknowledged a write and died before sending it on
leaves a promoted replica without it. For a ring that means the surviving record still says "due", and
the contact is dialled a second time. So the holder's commit that enters a dialling state (agent ring,
contact ring, queue) is followed by ``WAIT 1 <timeout>`` on the same connection (WAIT counts the
replicas that have that connection's writes, hence everything written before them too); with no replica
confirming within the timeout the store raises ``NotReplicated`` and nothing is dialled.

``replica_wait = auto`` waits only while the primary reports a replica in sync (``INFO replication``,
read again every ``RECHECK_S`` and after a failed wait, not at each commit); ``on`` always waits, so
with no replica nothing is ever dialled; ``off`` never waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from asterisk_cb.core.model import Callback, State
from asterisk_cb.redis_conn import RedisClient, ReplicaMode, ReplicaWait, node_of
from asterisk_cb.store.errors import NotReplicated

log = logging.getLogger(__name__)

# The states whose commit is followed by a dial (RingAgent, DialContact, EnterQueue).
DIALLING = frozenset({State.AGENT_RINGING, State.CONTACT_RINGING, State.QUEUED})
RECHECK_S = 30.0


def precedes_dial(before: Callback, after: Callback) -> bool:
    """A commit that enters a dialling state: its effects originate a channel."""
    return after.state in DIALLING and after.state is not before.state


def online_replicas(info: Mapping[str, Any]) -> int:
    """The replicas an ``INFO replication`` reply lists as ``state=online`` (in sync)."""
    listed = [value for name, value in info.items() if name.startswith("slave") and isinstance(value, dict)]
    return sum(1 for replica in listed if replica.get("state") == "online")


class ReplicaGuard:
    """Decides whether a commit must be confirmed by a replica, and judges WAIT's answer."""

    def __init__(self, redis: RedisClient, policy: ReplicaWait, key: str) -> None:
        self._redis = redis
        self.policy = policy
        self._key = key  # on a Cluster, the primary holding this key's slot is the one asked
        self._replicas: int | None = None  # replicas in sync at the last look (auto only)
        self._looked_at = 0.0
        self._looking: asyncio.Future[int] | None = None  # the look under way, shared by its askers

    async def required(self) -> bool:
        """On: always; off: never; auto: while the primary last reported a replica in sync."""
        if self.policy.mode is not ReplicaMode.AUTO:
            return self.policy.mode is ReplicaMode.ON
        if self._replicas is None or time.monotonic() - self._looked_at >= RECHECK_S:
            await self._look_once()
        return bool(self._replicas)

    async def _look_once(self) -> None:
        """``look``, once for all the commits that ask at the same time: a burst's first commits
        all find the answer unknown, and each asking Redis would send it as many INFO commands."""
        if self._looking is None:
            self._looking = asyncio.ensure_future(self.look())
            self._looking.add_done_callback(self._looked)
        await asyncio.shield(self._looking)  # one caller given up does not cancel the others' look

    def _looked(self, looking: asyncio.Future[int]) -> None:
        self._looking = None
        if not looking.cancelled():
            looking.exception()  # retrieved: each caller that awaited it has raised it already

    async def look(self) -> int:
        """The primary's replicas in sync now (``INFO replication``), remembered for ``required``. One
        still loading its first copy cannot confirm anything (nor be failed over to) yet."""
        info = await self._redis.info("replication", **await node_of(self._redis, self._key))
        replicas = online_replicas(info)
        if replicas != self._replicas:
            log.info("Redis primary reports %d replica(s) in sync", replicas)
        self._replicas, self._looked_at = replicas, time.monotonic()
        return replicas

    def judge(self, callback_id: str, acknowledged: int) -> None:
        """Raise ``NotReplicated`` unless a replica acknowledged the commit."""
        if acknowledged >= 1:
            return
        timeout = self.policy.timeout_ms
        reason = f"no replica confirmed the commit within {timeout} ms (replica_wait = {self.policy.mode})"
        self._replicas = None  # auto: look again at the next commit, the replica may be gone
        log.error("callback %s: %s; not dialling", callback_id, reason)
        raise NotReplicated(f"{callback_id}: {reason}")
