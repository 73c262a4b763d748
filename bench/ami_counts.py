"""How many AMI events reach a client per call, by the kind of AMI user it logs in as (bench/calls.py).

Asterisk decides what a session receives from its user's ``read`` classes, that user's ``eventfilter``
lines and the session's own class mask (the ``Events`` action; by default the user's ``read`` classes).
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
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

DAEMON_CLASSES = "system,call,agent"  # every class an event the daemon handles comes in (README)


@dataclass(frozen=True)
class Listener:
    label: str
    user: str  # where the lab's `env --json` keeps its credentials, e.g. "ami" or "too_weak.ami"
    mask: str = "on"  # the Events action's EventMask sent after login; "on": the user's read classes


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
    """One AMI session per listener; ``counts`` holds the events each received while counting."""

    def __init__(self, info: Mapping[str, Any], listeners: tuple[Listener, ...] = LISTENERS) -> None:
        self.address = (str(info["ami"]["host"]), int(info["ami"]["port"]))
        self.logins = {listener: credentials(info, listener.user) for listener in listeners}
        self.counts = dict.fromkeys((listener.label for listener in listeners), 0)

    @contextlib.asynccontextmanager
    async def counting(self) -> AsyncIterator[dict[str, int]]:
        """Log every listener in (and set its mask), count until the block ends."""
        sessions = [await self._login(listener, *login) for listener, login in self.logins.items()]
        tasks = [asyncio.create_task(self._count(reader, label)) for label, reader, _ in sessions]
        try:
            yield self.counts
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for _, _, writer in sessions:
                writer.close()

    async def _login(
        self, listener: Listener, user: str, secret: str
    ) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(*self.address)
        await reader.readline()  # the banner
        actions = (  # events off until the mask is set: login's own FullyBooted is no call's
            f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\nEvents: off\r\n\r\n",
            f"Action: Events\r\nEventMask: {listener.mask}\r\n\r\n",
        )
        for action in actions:
            writer.write(action.encode())
            answer = await _answer(reader)
            if b"Response: Success" not in answer:
                writer.close()
                raise ConnectionError(f"AMI {user}: {answer.decode(errors='replace').strip()}")
        return listener.label, reader, writer

    async def _count(self, reader: asyncio.StreamReader, label: str) -> None:
        """Counts the messages that open with ``Event:`` in the raw stream (cheap: the listeners must
        not load the machine the calls are measured on), a message boundary split across reads
        included."""
        tail = b"\r\n\r\n"  # the answer before the first event ended with its blank line
        while chunk := await reader.read(65536):
            stream = tail + chunk
            self.counts[label] += stream.count(EVENT_START)
            tail = stream[-(len(EVENT_START) - 1) :]


EVENT_START = b"\r\n\r\nEvent: "  # every message ends with a blank line; an event's first line


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """The next message that answers an action (events arriving before it are skipped)."""
    while True:
        message = await reader.readuntil(b"\r\n\r\n")
        if message.startswith(b"Response:"):
            return message
