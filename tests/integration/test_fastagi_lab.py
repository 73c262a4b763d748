"""Our FastAGI server driven by the lab's real Asterisk 22: a temporary dialplan context runs
AGI(agi://127.0.0.1:<port>/probe?x=1) on a Local channel; the handler reads and writes variables."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from lab import services  # scripts/lab: on sys.path through tests/conftest.py
from lab.settings import load

from asterisk_cb.telephony.fastagi import (
    AgiHangup,
    AgiRequest,
    AgiServerSettings,
    AgiSession,
    FastAgiServer,
    Handler,
)

pytestmark = pytest.mark.lab

# Quotes, backslashes, parentheses (a closing one last), a dialplan expression that must stay text.
TRICKY = 'say "hi" \\ C:\\dir\\ (x) ${EXTEN} \t;,|)'


@pytest.fixture(scope="module")
def asterisk_cli(pbx_lab_run: Callable[..., str]) -> Callable[[str], str]:
    """The lab Asterisk's CLI. Started like every lab test starts it, but only when it is down: a lab
    other sessions are using is then only read and given a context of ours for the test's time."""
    if not services.get("asterisk").status(load()).startswith("up"):
        pbx_lab_run("up", "asterisk")
    return lambda command: pbx_lab_run("cli", command, timeout=30)


@pytest.fixture
async def context(asterisk_cli: Callable[[str], str]) -> AsyncIterator[str]:
    """A dialplan context name of this test's own, removed afterwards with all it holds."""
    name = f"acb-test-agi-{uuid.uuid4().hex[:8]}"
    yield name
    await asyncio.to_thread(asterisk_cli, f"dialplan remove context {name}")


@contextlib.asynccontextmanager
async def serving(
    probe: Handler, asterisk_cli: Callable[[str], str], context: str, wait_s: int
) -> AsyncIterator[None]:
    """Serve ``probe`` while a Local channel runs it: its other half waits ``wait_s`` and hangs up."""
    server = FastAgiServer(AgiServerSettings(port=0), {"probe": probe})
    running = asyncio.create_task(server.run())
    try:
        port = await asyncio.wait_for(server.wait_listening(), 5)
        await asyncio.to_thread(
            asterisk_cli, f"dialplan add extension 1,1,AGI(agi://127.0.0.1:{port}/probe?x=1) into {context}"
        )
        await asyncio.to_thread(
            asterisk_cli, f"channel originate Local/1@{context} application Wait {wait_s}"
        )
        yield
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_asterisk_runs_a_route_and_variables_round_trip(
    asterisk_cli: Callable[[str], str], context: str
) -> None:
    outcome: asyncio.Future[tuple[AgiRequest, dict[str, Any]]] = asyncio.get_running_loop().create_future()

    async def probe(request: AgiRequest, session: AgiSession) -> None:
        try:
            seen = {"linkedid": await session.get_full_variable("${CHANNEL(linkedid)}")}
            await session.set_variable("ACB_T", TRICKY)
            seen["back"] = await session.get_full_variable("${ACB_T}")
            seen["unset"] = await session.get_full_variable("${ACB_NEVER_SET}")
            seen["hung_up"] = session.hung_up
        except Exception as error:
            outcome.set_exception(error)
            raise
        outcome.set_result((request, seen))

    async with serving(probe, asterisk_cli, context, wait_s=5):
        request, seen = await asyncio.wait_for(outcome, 15)

    assert (request.script, request.query, request.peer) == ("probe", {"x": "1"}, "127.0.0.1")
    assert (request.env["context"], request.env["extension"]) == (context, "1")
    assert request.env["channel"].startswith(f"Local/1@{context}-")
    assert re.fullmatch(r"\d+\.\d+", seen["linkedid"] or ""), seen["linkedid"]
    assert seen["back"] == TRICKY
    assert seen["unset"] == ""  # an expression always evaluates: unset reads as empty, not None
    assert seen["hung_up"] is False


async def test_a_channel_hung_up_under_the_handler_raises_agi_hangup(
    asterisk_cli: Callable[[str], str], context: str
) -> None:
    outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def probe(_: AgiRequest, session: AgiSession) -> None:
        await session.command("ANSWER")  # the originate's half runs Wait 1 once answered, then hangs up
        await asyncio.sleep(1.5)  # Asterisk writes HANGUP meanwhile
        try:
            reply = await session.command("ANSWER")  # not permitted on a dead channel
        except AgiHangup:
            outcome.set_result(session.hung_up)
            raise
        outcome.set_exception(AssertionError(f"ANSWER on a hung-up channel: {reply}"))

    async with serving(probe, asterisk_cli, context, wait_s=1):
        assert await asyncio.wait_for(outcome, 15) is True
