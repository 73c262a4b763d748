"""The Lua scripts (``asterisk_cb/lua``) and the one place that runs them.

Every change of the schedule is one script, so a callback, its place in the schedule, its indexes and
its events never disagree, and lease expiry is judged on the Redis server's clock only. A script refuses
with an ``ACB_<CODE> detail`` error reply; ``Scripts.run`` turns it into the store's typed error.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ResponseError

from asterisk_cb.redis_conn import RedisClient, node_of
from asterisk_cb.store import errors
from asterisk_cb.store.pipelining import ScriptPipeline

_ERRORS: dict[str, type[errors.StoreError]] = {
    "ACB_NOTFOUND": errors.CallbackNotFound,
    "ACB_EXISTS": errors.DuplicateCallback,
    "ACB_VERSION": errors.VersionConflict,
    "ACB_LIVE": errors.CallbackLive,
    "ACB_NOTLIVE": errors.CallbackNotLive,
    "ACB_PENDING": errors.ChangePending,
    "ACB_STALE": errors.StaleToken,
    "ACB_EXPIRED": errors.LeaseExpired,
}


class Script(enum.Enum):
    """A script, named by its file in ``asterisk_cb/lua``."""

    CREATE = "create"
    WRITE = "write"
    CLAIM = "claim"
    RENEW = "renew"
    RELEASE = "release"
    TRIM = "trim"
    PURGE = "purge"
    LOCK = "lock"
    UNLOCK = "unlock"
    HELD = "held"
    REQUEST = "request"
    SETTLE = "settle"
    REINDEX = "reindex"
    READ = "read"
    ORDER = "order"
    WAKE = "wake"


class Scripts:
    """Every script registered on one client with the shared helpers (common.lua) prepended; Redis
    caches them by SHA, so register once per process. The scripts started in one turn of the event
    loop go as one pipeline (``store.pipelining``); on a Cluster, one by one."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        folder = resources.files("asterisk_cb") / "lua"
        common = (folder / "common.lua").read_text()
        self._registered = {
            script: redis.register_script(common + "\n" + (folder / f"{script.value}.lua").read_text())
            for script in Script
        }
        self._pipeline = None if isinstance(redis, RedisCluster) else ScriptPipeline(redis)

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply; an ``ACB_*`` refusal raises its ``StoreError``, anything else as is."""
        registered = self._registered[script]
        try:
            if self._pipeline is None:
                return await registered(keys=list(keys), args=list(args))
            reply = await self._pipeline.run(registered.sha, registered.script, keys, args)
        except ResponseError as error:
            raise _refusal(error) from None
        if isinstance(reply, ResponseError):
            raise _refusal(reply) from None
        return reply

    async def run_and_wait(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], timeout_ms: int
    ) -> tuple[Any, int]:
        """``run``, then ``WAIT 1 timeout_ms`` on the same connection (WAIT counts the replicas that
        have that connection's writes): the reply, and how many replicas acknowledged it."""
        registered = self._registered[script]
        async with self._redis.pipeline(transaction=False) as pipe:
            if isinstance(pipe, ClusterPipeline):  # both on the slot's primary; EVAL: no NOSCRIPT there
                pipe.eval(registered.script, len(keys), *keys, *args)
            else:
                await registered(keys=list(keys), args=list(args), client=pipe)
            pipe.execute_command("WAIT", 1, timeout_ms, **await node_of(self._redis, keys[0]))
            reply, acknowledged = await pipe.execute(raise_on_error=False)
        if isinstance(reply, ResponseError):
            raise _refusal(reply)
        if isinstance(acknowledged, Exception):
            raise acknowledged
        return reply, int(acknowledged)


def _refusal(error: ResponseError) -> Exception:
    """The ``StoreError`` of an ``ACB_*`` refusal, or the error itself."""
    code, _, detail = str(error).partition(" ")
    return _ERRORS[code](detail) if code in _ERRORS else error
