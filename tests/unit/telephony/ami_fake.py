"""A fake AMI server replaying wire transcripts recorded off the lab's Asterisk 22 (fixtures/ami_*.txt).

Real TCP, so panoramisk, our login and our reconnect run exactly as against Asterisk. Each reply is
the recorded block(s) of the matching recorded action, with its ActionID swapped for the one asked.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BANNER = "Asterisk Call Manager/11.0.0\r\n"


def transcript_blocks(name: str) -> list[str]:
    """The messages of a recorded transcript, banner dropped, as LF-joined header blocks."""
    text = (FIXTURES / name).read_text().replace("\r\n", "\n").removeprefix(BANNER.strip() + "\n")
    return [block.strip("\n") for block in text.split("\n\n") if block.strip()]


def block_headers(block: str) -> dict[str, str]:
    """A recorded block as the header dict panoramisk would hand us (empty values kept)."""
    pairs = (line.split(":", 1) for line in block.split("\n") if ":" in line)
    return {key: value.strip() for key, value in pairs}


def header(block: str, name: str) -> str:
    for line in block.split("\n"):
        key, _, value = line.partition(": ")
        if key.lower() == name.lower():
            return value
    return ""


def with_action_id(block: str, action_id: str) -> str:
    lines = [
        f"ActionID: {action_id}" if line.startswith("ActionID: ") else line for line in block.split("\n")
    ]
    return "\n".join(lines)


def wire(blocks: list[str]) -> bytes:
    return "".join(block.replace("\n", "\r\n") + "\r\n\r\n" for block in blocks).encode()


def recorded_reply(transcript: str, recorded_action_id: str) -> list[str]:
    return [b for b in transcript_blocks(transcript) if header(b, "ActionID") == recorded_action_id]


def unsolicited_events(transcript: str, *names: str) -> list[str]:
    """Recorded events that answered no action (what Asterisk pushes on its own), optionally by name."""
    return [
        b
        for b in transcript_blocks(transcript)
        if header(b, "Event") and not header(b, "ActionID") and (not names or header(b, "Event") in names)
    ]


class FakeAmi:
    """Answers Login (checking the secret) and the actions given to `reply`; records what it was sent."""

    def __init__(self, secret: str = "acb-lab-ami") -> None:
        self.secret = secret
        self.replies: dict[str, list[str]] = {}
        self.received: list[dict[str, str]] = []
        self.logins = 0
        self.booted = True  # False: like an Asterisk still booting, FullyBooted is not sent at login
        self.silent = False  # True: read actions but answer nothing, like a half-open TCP link
        self._lose: dict[str, bool] = {}  # action -> drop the link: the next one's answer is lost
        self.writers: list[asyncio.StreamWriter] = []
        self._sessions: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    def reply(self, action: str, blocks: list[str]) -> None:
        self.replies[action.lower()] = blocks

    def lose_next(self, action: str, *, drop: bool = False) -> None:
        """The next `action` reaches "Asterisk" but is never answered: with `drop` the link drops right
        after it, else the answer just never comes."""
        self._lose[action.lower()] = drop

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop_listening(self) -> None:
        """Asterisk down: connections dropped, nothing accepting on the port."""
        if self._server is not None:
            self._server.close()
            await self.drop()
            await asyncio.gather(*self._sessions)
            await self._server.wait_closed()
            self._server = None

    async def drop(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def push(self, blocks: list[str]) -> None:
        for writer in self.writers:
            writer.write(wire(blocks))
            await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = asyncio.current_task()
        assert session is not None
        self._sessions.add(session)
        session.add_done_callback(self._sessions.discard)
        self.writers.append(writer)
        writer.write(BANNER.encode())
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = dict(
                    line.split(": ", 1) for line in raw.decode().strip().split("\r\n") if ": " in line
                )
                self.received.append(action)
                drop = self._lose.pop(action.get("Action", "").lower(), None)
                if drop:
                    writer.close()
                    return
                if self.silent or drop is not None:
                    continue
                writer.write(wire(self._answer(action)))
                await writer.drain()

    def _answer(self, action: dict[str, str]) -> list[str]:
        name = action.get("Action", "").lower()
        if name == "login":
            return self._login(action)
        blocks = self.replies.get(
            name, [f"Response: Error\nActionID: x\nMessage: Invalid/unknown command: {name}"]
        )
        return [with_action_id(block, action.get("ActionID", "")) for block in blocks]

    def _login(self, action: dict[str, str]) -> list[str]:
        if action.get("Secret") != self.secret:
            return [
                with_action_id(b, action["ActionID"]) for b in recorded_reply("ami_badlogin.txt", "login-1")
            ]
        self.logins += 1
        accepted = recorded_reply("ami_seed.txt", "login-1")
        booted = unsolicited_events("ami_seed.txt", "FullyBooted") if self.booted else []
        return [with_action_id(b, action["ActionID"]) for b in accepted] + booted
