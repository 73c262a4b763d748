"""The FastAGI server over real sockets on 127.0.0.1, with a small fake Asterisk written here: headers,
replies as res_agi.c (Asterisk 22) writes them, HANGUP lines, limits, timeouts and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from ipaddress import ip_network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_cb.telephony.fastagi import (
    AgiError,
    AgiHangup,
    AgiReply,
    AgiRequest,
    AgiServerSettings,
    AgiSession,
    AgiTimeout,
    FastAgiServer,
    Handler,
    quote_argument,
)

FAST = AgiServerSettings(
    port=0, header_timeout_s=0.5, command_timeout_s=0.3, request_timeout_s=1.0, max_connections=10
)
LOGGER = "asterisk_cb.telephony.fastagi"


def parse_args(line: str) -> list[str]:
    """res_agi.c's parse_args rules, re-told: a double quote (unless escaped) toggles quoting and,
    after whitespace, starts an argument; space and tab outside quotes and not escaped end one; a
    backslash escapes the next character (taken literally); any other character starts an argument
    after whitespace and is taken."""
    args: list[list[str]] = []
    quoted = escaped = False
    whitespace = True
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                args.append([])
                whitespace = False
            continue
        if char in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            args.append([])
            whitespace = False
        args[-1].append(char)
        escaped = False
    return ["".join(arg) for arg in args]


class FakeAsterisk:
    """Asterisk's end of one FastAGI connection: sends the headers, reads commands, writes replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> FakeAsterisk:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, *lines: str) -> None:
        self.writer.write("".join(f"{line}\n" for line in lines).encode())
        await self.writer.drain()

    async def send_headers(self, script: str = "probe?x=1") -> None:
        await self.send(*headers(script), "")

    async def next_command(self) -> str:
        async with asyncio.timeout(2):
            line = await self.reader.readline()
        assert line.endswith(b"\n"), f"connection closed instead of a command: {line!r}"
        return line.decode().rstrip("\n")

    async def answer(self, *lines: str) -> str:
        """Read the next command, answer it with ``lines``; returns the command."""
        command = await self.next_command()
        await self.send(*lines)
        return command

    async def closed(self, timeout_s: float = 2.0) -> bytes:
        """Everything the server still sent before closing; fails if it does not close in time."""
        async with asyncio.timeout(timeout_s):
            return await self.reader.read()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def headers(script: str) -> list[str]:
    """The header lines res_agi sends for AGI(agi://127.0.0.1/<script>) on a Local channel."""
    return [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1/{script}",
        "agi_channel: Local/1@acb-test-00000001;2",
        "agi_language: en",
        "agi_type: Local",
        "agi_uniqueid: 1700000000.42",
        "agi_callerid: unknown",
        "agi_calleridname:  two leading spaces",
        "agi_context: acb-test",
        "agi_extension: 1",
        "agi_priority: 1",
    ]


class Served:
    """A running server, the requests its handlers saw and what they returned or raised."""

    def __init__(self, server: FastAgiServer, port: int) -> None:
        self.server = server
        self.port = port
        self.clients: list[FakeAsterisk] = []

    async def client(self, script: str | None = "probe?x=1") -> FakeAsterisk:
        fake = await FakeAsterisk.connect(self.port)
        self.clients.append(fake)
        if script is not None:
            await fake.send_headers(script)
        return fake


@contextlib.asynccontextmanager
async def serving(routes: Mapping[str, Handler], settings: AgiServerSettings = FAST) -> AsyncIterator[Served]:
    server = FastAgiServer(settings, routes)
    task = asyncio.create_task(server.run())
    port = await asyncio.wait_for(server.wait_listening(), 2)
    served = Served(server, port)
    try:
        yield served
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for fake in served.clients:
            await fake.close()


def recording(
    body: Callable[[AgiRequest, AgiSession], Awaitable[Any]] | None = None,
) -> tuple[Handler, asyncio.Future[Any]]:
    """A handler that runs ``body`` and puts its result (or error) into the returned future."""
    outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def handler(request: AgiRequest, session: AgiSession) -> None:
        try:
            result = await body(request, session) if body else request
        except Exception as error:
            outcome.set_exception(error)
            raise
        outcome.set_result(result)

    return handler, outcome


async def _until(predicate: Callable[[], bool], timeout_s: float = 2.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the condition is set by the server's tasks
            await asyncio.sleep(0.01)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


# --- quoting ---------------------------------------------------------------------------------------

CARRIABLE = st.text(alphabet=st.characters(blacklist_characters="\r\n\0"))


@given(name=CARRIABLE, value=CARRIABLE)
def test_quoted_arguments_come_back_whole_through_res_agi_parsing(name: str, value: str) -> None:
    line = f"SET VARIABLE {quote_argument(name)} {quote_argument(value)}"
    assert parse_args(line) == ["SET", "VARIABLE", name, value]


def test_the_parse_args_model_keeps_res_agi_quirks() -> None:
    assert parse_args('GET  FULL\tVARIABLE "${X}"') == ["GET", "FULL", "VARIABLE", "${X}"]
    assert parse_args(r'a\ b "c\"d" e"f g"h ""') == ["a b", 'c"d', "ef gh", ""]


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_values_that_cannot_be_carried_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        quote_argument(bad)


# --- requests --------------------------------------------------------------------------------------


async def test_the_request_carries_script_query_env_and_peer() -> None:
    handler, outcome = recording()
    async with serving({"probe": handler}) as served:
        fake = await served.client("/probe?x=1&y=&x=2&name=a%20b")
        request = await asyncio.wait_for(outcome, 2)
        assert await fake.closed() == b""  # the handler returned: closed, nothing sent
    assert request.script == "probe"
    assert request.query == {"x": "2", "y": "", "name": "a b"}
    assert request.env["uniqueid"] == "1700000000.42"
    assert request.env["channel"] == "Local/1@acb-test-00000001;2"
    assert request.env["network_script"] == "/probe?x=1&y=&x=2&name=a%20b"
    assert request.env["calleridname"] == " two leading spaces"
    assert request.peer == "127.0.0.1"


async def test_an_unknown_script_is_closed_without_a_word(caplog: pytest.LogCaptureFixture) -> None:
    handler, outcome = recording()
    async with serving({"probe": handler}) as served:
        fake = await served.client("other?x=1")
        assert await fake.closed() == b""
    assert not outcome.done()
    assert any("script unknown" in message for message in _warnings(caplog))


# --- replies ---------------------------------------------------------------------------------------


async def _one_command(
    replies: list[str], run: Callable[[AgiSession], Awaitable[Any]]
) -> tuple[str, asyncio.Future[Any], AgiSession]:
    """Serve one request whose handler runs ``run``; the fake answers its command with ``replies``."""
    sessions: list[AgiSession] = []

    async def body(_: AgiRequest, session: AgiSession) -> Any:
        sessions.append(session)
        return await run(session)

    handler, outcome = recording(body)
    async with serving({"probe": handler}) as served:
        fake = await served.client()
        command = await fake.answer(*replies)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(outcome), 2)
        await fake.closed()
    return command, outcome, sessions[0]


@pytest.mark.parametrize(
    ("replies", "value"),
    [
        (["200 result=1 (Local/1@x-0001;2)"], "Local/1@x-0001;2"),
        (["200 result=1 (f(a) (b) c)"], "f(a) (b) c"),  # up to the last ")"
        (["200 result=1 ()"], ""),
        (["200 result=0"], None),  # not set
        (["100 result=0 Trying...", "200 result=1 (v)"], "v"),
        (["HANGUP", "200 result=1 (v)"], "v"),
        (["200 result=1 (two", "lines)"], "two\nlines"),  # a value holding a line break
    ],
)
async def test_get_full_variable_reads_the_final_reply(replies: list[str], value: str | None) -> None:
    command, outcome, _ = await _one_command(replies, lambda s: s.get_full_variable("${CHANNEL(linkedid)}"))
    assert command == 'GET FULL VARIABLE "${CHANNEL(linkedid)}"'
    assert outcome.result() == value


async def test_a_reply_keeps_its_result_and_data_apart_from_endpos() -> None:
    _, outcome, _ = await _one_command(
        ["200 result=1 (dtmf) endpos=1234"], lambda s: s.command("STREAM FILE")
    )
    assert outcome.result() == AgiReply(200, "1", "dtmf")


async def test_a_hangup_line_is_skipped_and_noted() -> None:
    _, outcome, session = await _one_command(["HANGUP", "200 result=1"], lambda s: s.command("NOOP"))
    assert outcome.result() == AgiReply(200, "1", None)
    assert session.hung_up


@pytest.mark.parametrize(
    ("replies", "error"),
    [
        (["510 Invalid or unknown command"], AgiError),
        (["HANGUP", "511 Command Not Permitted on a dead channel or intercept routine"], AgiHangup),
        (["511 Command Not Permitted on a dead channel or intercept routine"], AgiHangup),
        (["result=1"], AgiError),
    ],
)
async def test_error_replies_raise(replies: list[str], error: type[AgiError]) -> None:
    _, outcome, _ = await _one_command(replies, lambda s: s.command("EXEC Wait 1"))
    with pytest.raises(error):
        outcome.result()


async def test_a_511_marks_the_session_hung_up() -> None:
    _, _, session = await _one_command(["511 Command Not Permitted"], lambda s: s.command("ANSWER"))
    assert session.hung_up


async def test_after_a_multi_line_usage_error_the_next_command_gets_its_own_reply() -> None:
    usage = [
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: SET VARIABLE <variablename> <value>",
        "",
        "520 End of proper usage.",
    ]

    async def twice(session: AgiSession) -> tuple[str, AgiReply]:
        with pytest.raises(AgiError) as error:
            await session.command("SET VARIABLE x")
        return str(error.value), await session.command("NOOP")

    handler, outcome = recording(lambda _, session: twice(session))
    async with serving({"probe": handler}) as served:
        fake = await served.client()
        await fake.answer(*usage)
        assert await fake.answer("200 result=0") == "NOOP"
        message, reply = await asyncio.wait_for(outcome, 2)
    assert message.startswith("520-Invalid command syntax")
    assert reply == AgiReply(200, "0", None)


async def test_set_variable_sends_what_res_agi_splits_back_into_name_and_value() -> None:
    value = 'say "hi" \\ C:\\path\\ (x) \t$'
    command, outcome, _ = await _one_command(["200 result=1"], lambda s: s.set_variable("ACB_T", value))
    assert outcome.result() is None
    assert parse_args(command) == ["SET", "VARIABLE", "ACB_T", value]


async def test_no_reply_in_time_raises_and_leaves_the_session_unusable() -> None:
    async def twice(session: AgiSession) -> str:
        with pytest.raises(AgiTimeout):
            await session.command("NOOP")
        with pytest.raises(AgiError) as error:
            await session.command("NOOP")
        return str(error.value)

    handler, outcome = recording(lambda _, session: twice(session))
    async with serving({"probe": handler}) as served:
        fake = await served.client()
        assert await fake.next_command() == "NOOP"  # never answered
        assert "no reply to NOOP" in await asyncio.wait_for(outcome, 2)
        assert await fake.closed() == b""  # the second command was never sent


async def test_a_closed_connection_raises_hangup_once_hangup_was_seen() -> None:
    async def body(_: AgiRequest, session: AgiSession) -> None:
        await session.command("NOOP")

    handler, outcome = recording(body)
    async with serving({"probe": handler}) as served:
        fake = await served.client()
        await fake.next_command()
        await fake.send("HANGUP")
        await fake.close()
        with pytest.raises(AgiHangup):
            await asyncio.wait_for(outcome, 2)


@pytest.mark.parametrize("line", ["NOOP\nANSWER", "NOOP\0", "EXEC Wait " + "1" * 8190])
async def test_commands_that_res_agi_would_split_are_refused(line: str) -> None:
    handler, outcome = recording(lambda _, session: session.command(line))
    async with serving({"probe": handler}) as served:
        fake = await served.client()
        assert await fake.closed() == b""  # nothing sent
    with pytest.raises(ValueError):
        outcome.result()


# --- peers, headers and limits ---------------------------------------------------------------------


async def test_a_peer_outside_permit_is_closed_unread(caplog: pytest.LogCaptureFixture) -> None:
    handler, outcome = recording()
    settings = replace(FAST, permit=(ip_network("10.0.0.0/8"),))
    async with serving({"probe": handler}, settings) as served:
        fake = await served.client()
        with contextlib.suppress(ConnectionError):
            assert await fake.closed() == b""
    assert not outcome.done()
    assert any("not permitted" in message for message in _warnings(caplog))


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (["agi_network: yes", "agi_network_script: probe"], "closed inside the headers"),  # then closes
        ([f"agi_arg_{n}: x" for n in range(201)], "more than 200 header lines"),
        ([f"agi_arg_{n}: {'x' * 1000}" for n in range(40)], "larger than 32768 bytes"),
        (["GET / HTTP/1.1", "Host: x"], "not an AGI header"),
    ],
)
async def test_bad_header_blocks_are_dropped(
    caplog: pytest.LogCaptureFixture, sent: list[str], reason: str
) -> None:
    handler, outcome = recording()
    async with serving({"probe": handler}) as served:
        fake = await served.client(None)
        await fake.send(*sent)
        fake.writer.write_eof()
        await fake.closed()
        await _until(lambda: not served.server._connections)
    assert not outcome.done()
    assert any(reason in message for message in _reasons(caplog))


def _reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.getMessage()} {getattr(r, 'reason', '')}" for r in caplog.records if r.name == LOGGER]


async def test_a_stalled_peer_is_dropped_after_the_header_timeout_and_never_blocks_another(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, outcome = recording()
    async with serving({"probe": handler}) as served:
        stalled = await served.client(None)
        await stalled.send("agi_network: yes")  # and nothing more
        await served.client()
        assert (await asyncio.wait_for(outcome, 0.4)).script == "probe"  # before the stall times out
        started = asyncio.get_running_loop().time()
        assert await stalled.closed() == b""
        waited = asyncio.get_running_loop().time() - started
    assert 0.05 < waited < 0.8, waited
    assert any("not complete in time" in message for message in _warnings(caplog))


async def test_connections_beyond_the_limit_are_refused(caplog: pytest.LogCaptureFixture) -> None:
    handler, outcome = recording()
    async with serving({"probe": handler}, replace(FAST, max_connections=1)) as served:
        first = await served.client(None)  # holds the only place while it sends nothing
        await _until(lambda: len(served.server._connections) == 1)
        second = await served.client()
        with contextlib.suppress(ConnectionError):
            assert await second.closed(0.4) == b""
        await first.close()
    assert not outcome.done()
    assert any("at their limit" in message for message in _warnings(caplog))


# --- handlers --------------------------------------------------------------------------------------


async def test_a_failing_handler_is_logged_once_and_the_server_serves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def flaky(_: AgiRequest, __: AgiSession) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug in a handler")

    async with serving({"probe": flaky}) as served:
        assert await (await served.client()).closed() == b""
        assert await (await served.client()).closed() == b""
    failures = [r for r in caplog.records if r.name == LOGGER and r.exc_info]
    assert calls == 2
    assert len(failures) == 1
    assert "bug in a handler" in str(failures[0].exc_info[1])


async def test_a_handler_out_of_time_is_stopped_and_its_connection_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped = asyncio.Event()

    async def slow(_: AgiRequest, __: AgiSession) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            stopped.set()

    async with serving({"probe": slow}, replace(FAST, request_timeout_s=0.2)) as served:
        fake = await served.client()
        assert await fake.closed(1.0) == b""
        assert stopped.is_set()
    assert any("ran out of time" in message for message in _warnings(caplog))


async def test_cancelling_run_closes_the_listener_and_live_connections() -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def waits(_: AgiRequest, __: AgiSession) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            stopped.set()

    server = FastAgiServer(replace(FAST, request_timeout_s=60), {"probe": waits})
    task = asyncio.create_task(server.run())
    port = await asyncio.wait_for(server.wait_listening(), 2)
    fake = await FakeAsterisk.connect(port)
    await fake.send_headers()
    await asyncio.wait_for(started.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert stopped.is_set()
    assert await fake.closed() == b""
    await fake.close()
    assert not server._connections
    with pytest.raises(ConnectionError):
        await FakeAsterisk.connect(port)
