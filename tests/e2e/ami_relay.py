"""A TCP relay between an e2e daemon and the lab's AMI that loses Asterisk's answers to QueuePause.

A pause whose answer is lost is a fault only the wire makes (a link dropping at that instant, Asterisk
stalled past the action timeout). Through the relay the real Asterisk carries the pause out and the
daemon never hears so; everything else (login, events, QueueStatus, unpauses) passes as is.
"""

from __future__ import annotations

import asyncio
import contextlib

END = b"\r\n\r\n"


def _headers(block: bytes) -> dict[str, str]:
    lines = (line.partition(":") for line in block.decode(errors="replace").split("\r\n"))
    return {key.strip().lower(): value.strip() for key, sep, value in lines if sep}


class LossyAmi:
    """Relays every connection to ``host:port``; the answers to ``QueuePause`` with ``Paused: true`` are
    dropped (their ActionIDs listed in ``lost``)."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.lost: list[str] = []
        self._pauses: set[str] = set()  # ActionIDs of pauses sent, whose answer is to be lost
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for relay in self._relays:
                relay.cancel()
            await asyncio.gather(*self._relays, return_exceptions=True)
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        relay = asyncio.current_task()
        assert relay is not None
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        directions = [
            asyncio.create_task(self._actions(reader, up_writer)),
            asyncio.create_task(self._answers(up_reader, writer)),
        ]
        try:
            await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for direction in directions:
                direction.cancel()
            await asyncio.gather(*directions, return_exceptions=True)
            for end in (writer, up_writer):
                end.close()

    async def _actions(self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                block = await reader.readuntil(END)
                action = _headers(block)
                if action.get("action", "").lower() == "queuepause" and action.get("paused") == "true":
                    self._pauses.add(action.get("actionid", ""))
                upstream.write(block)
                await upstream.drain()

    async def _answers(self, upstream: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            writer.write(await upstream.readuntil(b"\r\n"))  # the banner: one line, no blank line after
            while True:
                block = await upstream.readuntil(END)
                answer = _headers(block)
                if "response" in answer and answer.get("actionid") in self._pauses:
                    self._pauses.discard(answer["actionid"])
                    self.lost.append(answer["actionid"])
                    continue
                writer.write(block)
                await writer.drain()
