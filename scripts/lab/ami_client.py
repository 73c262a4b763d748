"""A minimal asyncio AMI client for the lab's own checks (smoke call, lab tests): login, actions,
events. Standard library only; the daemon has its own client in asterisk_cb.telephony."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

Message = dict[str, str]


class LabAmi:
    """One AMI connection; every message is queued, and tests pick the ones they wait for."""

    def __init__(self, host: str, port: int, user: str, secret: str) -> None:
        self._address = (host, port)
        self._credentials = (user, secret)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._action_ids = itertools.count(1)
        self.banner = ""

    async def __aenter__(self) -> LabAmi:
        self._reader, self._writer = await asyncio.open_connection(*self._address)
        self.banner = (await self._reader.readline()).decode().strip()
        user, secret = self._credentials
        reply = await self.action("Login", Username=user, Secret=secret)
        if reply.get("Response") != "Success":
            raise ConnectionError(f"AMI login refused: {reply}")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def _read_message(self) -> Message:
        assert self._reader is not None
        message: Message = {}
        while True:
            line = (await self._reader.readline()).decode(errors="replace")
            if not line:
                raise ConnectionError("AMI connection closed")
            line = line.rstrip("\r\n")
            if not line:
                if message:
                    return message
                continue
            key, _, value = line.partition(":")
            message.setdefault(key.strip(), value.strip())

    async def messages(self) -> AsyncIterator[Message]:
        """Every message from now on, as it comes (e.g. to note when each event arrived)."""
        while True:
            yield await self._read_message()

    async def send(self, action: str, **fields: str) -> str:
        """Send an action without waiting; returns its ActionID."""
        assert self._writer is not None
        action_id = f"lab-{next(self._action_ids)}"
        lines = [f"Action: {action}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in fields.items())]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        return action_id

    async def action(self, action: str, **fields: str) -> Message:
        """Send an action and return its response (events read meanwhile are dropped)."""
        action_id = await self.send(action, **fields)
        return await self.wait_for(lambda message: message.get("ActionID") == action_id, timeout_s=10)

    async def wait_for(self, matches: Callable[[Message], bool], timeout_s: float) -> Message:
        """The next message for which matches() is true; TimeoutError after timeout_s."""
        async with asyncio.timeout(timeout_s):
            while True:
                message = await self._read_message()
                if matches(message):
                    return message
