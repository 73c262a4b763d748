"""AMI events collected in the background while an e2e test's call runs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from lab.ami_client import LabAmi, Message


class Events:
    """AMI events of some kinds, collected in the background on a connection of their own (two readers
    of one connection would each miss what the other took) while a call runs."""

    def __init__(self, info: dict[str, Any], kinds: set[str]) -> None:
        harness = info["ami_harness"]
        self._ami = LabAmi(harness["host"], harness["port"], harness["user"], harness["secret"])
        self._kinds = kinds
        self.seen: list[Message] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Events:
        await self._ami.__aenter__()
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._ami.__aexit__()

    async def _collect(self) -> None:
        async for message in self._ami.messages():
            if message.get("Event") in self._kinds:
                self.seen.append(message | {"_at": str(time.monotonic())})

    def after(self, since: float, kind: str, channel: str) -> list[float]:
        """When each ``kind`` event on ``channel`` arrived after ``since`` (time.monotonic)."""
        return [float(event["_at"]) for event in self.of(kind, channel) if float(event["_at"]) > since]

    def of(self, kind: str, channel: str, **fields: str) -> list[Message]:
        return [
            event
            for event in self.seen
            if event.get("Event") == kind
            and event.get("Channel") == channel
            and all(event.get(name) == value for name, value in fields.items())
        ]
