"""bench/ami_counts.py against a scripted AMI server: events are counted by name however the stream is
cut into reads, the login's own events and the answers to actions are not, and each listener logs in
with its mask."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from ami_counts import AmiCounts, Listener

SECRET = "right"
EVENTS = (
    b"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/1001\r\nState: INUSE\r\n\r\n"
    b"Response: Success\r\nActionID: 7\r\n\r\n"
    b"Event: Hangup\r\nPrivilege: call,all\r\nChannel: PJSIP/1001-0001\r\n\r\n"
    b"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/1001\r\nState: NOT_INUSE\r\n\r\n"
)


class ScriptedAmi:
    """Answers Login (with a FullyBooted after it, as Asterisk does) and Ping; then sends ``EVENTS`` to
    every session in pieces of ``piece`` bytes when told."""

    def __init__(self) -> None:
        self.logins: list[dict[str, str]] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await self._answer(reader, writer)
        writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        while block := await reader.readuntil(b"\r\n\r\n"):
            action = dict(line.split(": ", 1) for line in block.decode().strip().split("\r\n"))
            if action["Action"] == "Login":
                self.logins.append(action)
                if action["Secret"] != SECRET:
                    writer.write(b"Response: Error\r\nMessage: Authentication failed\r\n\r\n")
                    continue
                writer.write(b"Response: Success\r\nMessage: Authentication accepted\r\n\r\n")
                writer.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
            else:
                writer.write(b"Response: Success\r\nPing: Pong\r\n\r\n")
                self.writers.append(writer)

    async def send_events(self, piece: int) -> None:
        for writer in self.writers:
            for start in range(0, len(EVENTS), piece):
                writer.write(EVENTS[start : start + piece])
                await writer.drain()
                await asyncio.sleep(0.001)


@pytest.fixture
async def ami() -> AsyncIterator[ScriptedAmi]:
    scripted = ScriptedAmi()
    server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
    scripted.port = server.sockets[0].getsockname()[1]
    yield scripted
    server.close()
    await server.wait_closed()


def lab_info(port: int, secret: str = SECRET) -> dict[str, object]:
    user = {"host": "127.0.0.1", "port": port, "user": "acb", "secret": secret}
    return {"ami": user, "ami_harness": user | {"user": "harness"}}


LISTENERS = (Listener("documented", "ami"), Listener("all, masked", "ami_harness", "system,call,agent"))


@pytest.mark.parametrize("piece", [len(EVENTS), 5, 1])
async def test_events_are_counted_by_name_across_reads(ami: ScriptedAmi, piece: int) -> None:
    counts = AmiCounts(lab_info(ami.port), LISTENERS)
    async with counts.counting() as received:
        await ami.send_events(piece)
        await asyncio.sleep(0.05)
    expected = {"DeviceStateChange": 2, "Hangup": 1}
    assert {label: dict(names) for label, names in received.items()} == {
        "documented": expected,
        "all, masked": expected,
    }


async def test_each_listener_logs_in_with_its_mask(ami: ScriptedAmi) -> None:
    async with AmiCounts(lab_info(ami.port), LISTENERS).counting():
        pass
    assert [(login["Username"], login["Events"]) for login in ami.logins] == [
        ("acb", "on"),
        ("harness", "system,call,agent"),
    ]


async def test_a_refused_login_fails_the_count(ami: ScriptedAmi) -> None:
    with pytest.raises(ConnectionError, match="Authentication failed"):
        async with AmiCounts(lab_info(ami.port, "wrong"), LISTENERS).counting():
            pass
