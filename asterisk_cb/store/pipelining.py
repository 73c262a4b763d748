"""Scripts that callers start in the same turn of the event loop go to Redis as one pipeline.

Why: a daemon with many callbacks due at once runs one executor per callback, and each commits its
step with one script. Sent one by one, every script pays redis-py's whole command path (a pooled
connection, a write, a read) and one round trip; that path, not Redis, bounded how fast one process
hands callbacks off (bench/README.md, "The engine's hand-off"). Gathered per turn of the loop, a burst
of commits costs one connection, one write and one read of all the replies.

Nothing about a script's meaning changes: each is still its own atomic, fenced script, refused or
applied on its own; a caller gets its own reply or its own refusal, and awaits it before any effect
(commit-before-effect holds). A caller alone in its turn waits one turn of the loop more, no longer.
Replies to a pipeline that failed as a whole (connection lost, timeout) are that error for each caller,
as a direct command's would be: its script may or may not have run, which each caller already handles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

# Scripts per pipeline: one pipeline's replies are read before any caller resumes, so a huge burst is
# cut into pipelines sent side by side on their own connections.
PIPELINE_LIMIT = 256


@dataclass(frozen=True)
class ScriptCall:
    """One script to run: its SHA and text (the text to load it if Redis forgot it), keys, args."""

    sha: str
    text: str
    keys: Sequence[str]
    args: Sequence[Any]
    reply: asyncio.Future[Any] = field(compare=False)


class ScriptPipeline:
    """Gathers the script calls of one turn of the event loop and sends them as pipelines."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._gathered: list[ScriptCall] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the gathered calls wait in
        self._sending: set[asyncio.Task[None]] = set()  # held so a running send is not collected

    async def run(self, sha: str, text: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply; a script's error reply (e.g. a refusal) is returned, not raised, as
        ``ResponseError``; an error of the whole pipeline is raised."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a store used again under a new loop: nothing of the old one is sent
            self._loop, self._gathered = loop, []
        if not self._gathered:
            loop.call_soon(self._send_gathered)
        call = ScriptCall(sha, text, keys, args, loop.create_future())
        self._gathered.append(call)
        return await call.reply

    def _send_gathered(self) -> None:
        gathered, self._gathered = self._gathered, []
        for start in range(0, len(gathered), PIPELINE_LIMIT):
            task = asyncio.create_task(self._send(gathered[start : start + PIPELINE_LIMIT]))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, calls: list[ScriptCall]) -> None:
        try:
            replies = await self._replies(calls)
        except asyncio.CancelledError:
            for call in calls:
                call.reply.cancel()
            raise
        except Exception as error:  # each caller gets the error its own command would have raised
            for call in calls:
                if not call.reply.done():
                    call.reply.set_exception(error)
            return
        for call, reply in zip(calls, replies, strict=True):
            if not call.reply.done():  # a caller that gave up (cancelled) is not answered
                call.reply.set_result(reply)

    async def _replies(self, calls: list[ScriptCall]) -> list[Any]:
        """Every call's reply; those Redis did not know the script of (NOSCRIPT: not run) are sent
        again once their scripts are loaded (after a Redis restart or SCRIPT FLUSH)."""
        replies = await self._execute(calls)
        unknown = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if unknown:
            for text in {calls[index].text for index in unknown}:
                await self._redis.script_load(text)
            again = await self._execute([calls[index] for index in unknown])
            for index, reply in zip(unknown, again, strict=True):
                replies[index] = reply
        return replies

    async def _execute(self, calls: list[ScriptCall]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.evalsha(call.sha, len(call.keys), *call.keys, *call.args)
            return list(await pipe.execute(raise_on_error=False))
