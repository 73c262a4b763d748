"""How many AMI events reach a client per call, by the kind of AMI user it logs in as (bench/calls.py).

Asterisk decides what a session receives from its user's ``read`` classes, that user's ``eventfilter``
lines and the session's own class mask (the Login action's ``Events`` header, or the ``Events`` action
later; ``on``, the default, means the user's ``read`` classes).
A listener logged in as the daemon's user with the default mask therefore receives exactly the events
the daemon's own session receives; one logged in as a broader user receives what the daemon would, had
the admin given it that user. Each listener below counts the events it receives while a side of the
bench runs (answers to its own actions are not events and are not counted), so every user's figure
comes from the same calls in the same run, without running the daemon once per user or tapping its
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

DAEMON_CLASSES = "system,call,agent"  # every class an event the daemon handles comes in (README)


@dataclass(frozen=True)
class Listener:
    label: str
    user: str  # where the lab's `env --json` keeps its credentials, e.g. "ami" or "too_weak.ami"
    mask: str = "on"  # the Login action's Events header (panoramisk's ``events``); "on": the read classes


LISTENERS = (
    Listener("the documented user (the daemon's): read = system,call,agent + its event filters", "ami"),
    Listener(f"  the documented user, Events mask {DAEMON_CLASSES}", "ami", DAEMON_CLASSES),
    Listener("read = system,call,agent, no event filter", "too_weak.ami"),
    Listener("read = all, no event filter (the lab daemon's user when ~150 was measured)", "ami_harness"),
    Listener(f"  read = all, Events mask {DAEMON_CLASSES}", "ami_harness", DAEMON_CLASSES),
)
DOCUMENTED, UNFILTERED = LISTENERS[0].label, LISTENERS[3].label


def credentials(info: Mapping[str, Any], user: str) -> tuple[str, str]:
    """(user, secret) of one of the lab's AMI users, by its place in ``info``."""
    entry: Any = info
    for key in user.split("."):
        entry = entry[key]
    return str(entry["user"]), str(entry["secret"])


class AmiCounts:
    """One AMI session per listener; ``counts`` holds the events each received while counting, by name."""

    def __init__(self, info: Mapping[str, Any], listeners: tuple[Listener, ...] = LISTENERS) -> None:
        self.address = (str(info["ami"]["host"]), int(info["ami"]["port"]))
        self.logins = {listener: credentials(info, listener.user) for listener in listeners}
        self.counts: dict[str, Counter[str]] = {listener.label: Counter() for listener in listeners}

    @contextlib.asynccontextmanager
    async def counting(self) -> AsyncIterator[dict[str, Counter[str]]]:
        """Log every listener in (with its mask), count until the block ends."""
        sessions = [await self._login(listener, *login) for listener, login in self.logins.items()]
        tasks = [asyncio.create_task(self._count(reader, label)) for label, reader, _ in sessions]
        try:
            yield self.counts
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for _, _, writer in sessions:
                await _close(writer)

    async def _login(
        self, listener: Listener, user: str, secret: str
    ) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(*self.address)
        await reader.readline()  # the banner
        actions = (  # a Ping after the login: its answer comes after the login's own FullyBooted
            f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\nEvents: {listener.mask}\r\n\r\n",
            "Action: Ping\r\n\r\n",
        )
        for action in actions:
            writer.write(action.encode())
            answer = await _answer(reader)
            if b"Response: Success" not in answer:
                await _close(writer)
                raise ConnectionError(f"AMI {user}: {answer.decode(errors='replace').strip()}")
        return listener.label, reader, writer

    async def _count(self, reader: asyncio.StreamReader, label: str) -> None:
        """Counts the messages that open with ``Event:`` by name, from the raw stream (cheap: the
        listeners must not load the machine the calls are measured on)."""
        names, tail = self.counts[label], b""
        while chunk := await reader.read(65536):
            *messages, tail = (tail + chunk).split(END)
            names.update(m.split(b"\r\n", 1)[0][7:].decode() for m in messages if m.startswith(b"Event: "))


END = b"\r\n\r\n"  # every message ends with a blank line


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """The next message that answers an action (events arriving before it are skipped)."""
    while True:
        message = await reader.readuntil(END)
        if message.startswith(b"Response:"):
            return message


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
