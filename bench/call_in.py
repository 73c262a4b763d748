"""Benchmark of the inbound hook ("the contact calls in first") against a real Redis; prints a table (see
bench/README.md).

    scripts/pbx-lab up redis
    .venv/bin/python bench/call_in.py              # 100,000 callbacks, 2,000 requests of each kind
    .venv/bin/python bench/call_in.py --quick      # 10,000 callbacks, 500 requests of each kind
    .venv/bin/python bench/call_in.py --profile    # also cProfile the daemon's side (one at a time)

The daemon's FastAGI server (``FastAgiServer``, ``[feature_code]`` defaults) listens on 127.0.0.1 with
three routes: the real ``InboundHook``, wired as ``asterisk_cb.daemon`` wires it (the service's contact
look-up, an availability view, the effective settings read from Redis on every look-up, its JSON log
line formatted and written to /dev/null); the hook's exchange with a fixed answer and no look-up (its
``GET FULL VARIABLE`` and nine ``SET VARIABLE``), to tell the FastAGI exchange from the look-up; and
the bare exchange (one ``GET FULL VARIABLE``, one ``SET VARIABLE``). A process of its own plays
Asterisk as res_agi.c does for the hook's helper channel: the ``agi_*`` header block, a reply to each
command, reading until the server closes. Each request is timed there, from connect to close.

Requests are of four kinds: the hook asked about a number with a pending callback (one of those
created, drawn at random) or about a number nobody is to call back, the fixed-answer exchange, the
bare one. One at a time, the kinds interleave at random; 20 in flight, each kind runs on its own.
Every answer is checked (status, and the callback id for a found number): a wrong one fails the run.
The case works in a namespace of its own, deleted afterwards; it is run again if the Redis server
restarts meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import multiprocessing
import os
import random
import re
import shlex
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from harness import (
    Lateness,
    Scratch,
    callback_id,
    create_all,
    far_future,
    lab_redis_url,
    markdown,
    request,
    scratch_store,
    used_memory,
)
from run import Row, guarded, lateness_row, memory_row, profiled, row

from asterisk_cb import inbound_hook
from asterisk_cb.core.settings import Settings, SettingsFile
from asterisk_cb.deployment import FeatureCodeSite, Listen
from asterisk_cb.inbound_hook import Answer, InboundHook, Status
from asterisk_cb.logs import JsonFormatter
from asterisk_cb.secrecy import redact
from asterisk_cb.service import CallbackService, effective_settings
from asterisk_cb.store import Store
from asterisk_cb.telephony.agi_channel import call_channel
from asterisk_cb.telephony.availability import READY, AgentSpec, AvailabilityView
from asterisk_cb.telephony.fastagi import AgiRequest, AgiSession, FastAgiServer, Handler

CALLBACKS, QUICK_CALLBACKS = 100_000, 10_000
REQUESTS, QUICK_REQUESTS = 2_000, 500  # of each kind, in each mode
IN_FLIGHT = 20  # the concurrent mode: requests open at once
WARM_UP = 100  # of each kind, IN_FLIGHT at once, not counted: Redis connections opened, code paths run
GOSUB_WAIT_MS = 200  # ACB_INBOUND_TIMEOUT's default: the caller's channel waits no longer for the answer
OVERRIDES = {"call_in_priority": "5", "call_in_caller_id_prefix": "CB"}  # as the e2e tests set them
HEADER: Row = ("measure", "inbound hook", "bare FastAGI", "hook/bare", "target", "met")
_SHARED = re.compile(r"SHARED\((\w+),(.+)\)\Z")


class Kind(StrEnum):
    FOUND = "found"  # the hook, a number with a pending callback
    UNKNOWN = "unknown"  # the hook, a number nobody is to call back
    EXCHANGE = "exchange"  # the hook's FastAGI exchange with a fixed answer, no look-up
    BARE = "bare"  # one GET and one SET


ROUTES = {
    Kind.FOUND: inbound_hook.ROUTE,
    Kind.UNKNOWN: inbound_hook.ROUTE,
    Kind.EXCHANGE: "exchange",
    Kind.BARE: "bare",
}
LABELS = {
    Kind.FOUND: "number with a pending callback",
    Kind.UNKNOWN: "number nobody is to call back",
    Kind.EXCHANGE: "  the hook's exchange alone (GET + 9 SETs, no look-up)",
}


@dataclass(frozen=True)
class Call:
    """One FastAGI request as Asterisk makes it for the hook's helper channel, and the answer due."""

    kind: Kind
    uniqueid: str  # the caller channel's: the helper channel's extension
    number: str  # the caller's CALLERID(num): what GET FULL VARIABLE evaluates to
    callback: str = ""  # the ACB_I_ID due back ("" for none)

    @property
    def script(self) -> str:
        return ROUTES[self.kind]

    @property
    def status(self) -> str:
        """The ACB_I_STATUS due back."""
        return Status.FOUND.value if self.callback else Status.UNKNOWN.value


@dataclass(frozen=True)
class Played:
    """One request as Asterisk's side saw it: connect and close times (perf_counter), the answer."""

    started: float
    closed: float
    shared: dict[str, str]  # SHARED(name) -> value, as set


@dataclass(frozen=True)
class Round:
    """Requests of one kind played ``IN_FLIGHT`` at a time, and the CPU seconds each side spent."""

    played: list[Played]
    daemon_cpu_s: float
    asterisk_cpu_s: float

    @property
    def per_second(self) -> float:
        """Requests per second from the first connect to the last close."""
        first = min(seen.started for seen in self.played)
        return len(self.played) / (max(seen.closed for seen in self.played) - first)

    @property
    def daemon_ms(self) -> float:
        """The daemon's CPU milliseconds per request."""
        return self.daemon_cpu_s * 1000 / len(self.played)

    @property
    def asterisk_ms(self) -> float:
        return self.asterisk_cpu_s * 1000 / len(self.played)


# --- Asterisk's side: a process of its own ------------------------------------------------------------


def agi_headers(call: Call, port: int, n: int) -> bytes:
    """What res_agi.c sends for ``AGI(agi://127.0.0.1:<port>/<script>)`` on the helper Local channel:
    launch_netscript's two lines, then setup_env's block, ending with a blank line."""
    lines = (
        "agi_network: yes",
        f"agi_network_script: {call.script}",
        f"agi_request: agi://127.0.0.1:{port}/{call.script}",
        f"agi_channel: Local/{call.uniqueid}@acb-inbound-agi-{n:08x};2",
        "agi_language: en",
        "agi_type: Local",
        f"agi_uniqueid: 1796000001.{n}",
        "agi_version: 22.10.1",
        "agi_callerid: unknown",
        "agi_calleridname: unknown",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: unknown",
        "agi_rdnis: unknown",
        "agi_context: acb-inbound-agi",
        f"agi_extension: {call.uniqueid}",
        "agi_priority: 4",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        f"agi_threadid: {139_900_000_000_000 + n}",
    )
    return ("\n".join(lines) + "\n\n").encode()


def reply(call: Call, command: str, shared: dict[str, str]) -> bytes:
    """res_agi.c's reply to a command of the hook's (a GET FULL VARIABLE of the caller's number through
    IMPORT, SET VARIABLE of SHARED variables of the caller's channel); anything else fails the run."""
    words = shlex.split(command)
    if words == ["GET", "FULL", "VARIABLE", f"${{IMPORT({call.uniqueid},CALLERID(num))}}"]:
        return f"200 result=1 ({call.number})\n".encode()
    target = _SHARED.match(words[2]) if words[:2] == ["SET", "VARIABLE"] and len(words) == 4 else None
    if target is None or target[2] != call.uniqueid:
        raise RuntimeError(f"unexpected AGI command: {command}")
    shared[target[1]] = words[3]
    return b"200 result=1\n"


async def play_one(call: Call, port: int, n: int) -> Played:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(agi_headers(call, port, n))
    shared: dict[str, str] = {}
    while line := await reader.readline():
        writer.write(reply(call, line.decode().rstrip("\n"), shared))
        await writer.drain()
    closed = time.perf_counter()
    writer.close()
    with suppress(ConnectionError):
        await writer.wait_closed()
    return Played(started, closed, shared)


async def play_all(port: int, calls: Sequence[Call], in_flight: int) -> list[Played]:
    numbered = iter(enumerate(calls))
    played: dict[int, Played] = {}

    async def channel() -> None:
        for n, call in numbered:
            played[n] = await play_one(call, port, n)

    await asyncio.gather(*(channel() for _ in range(in_flight)))
    return [played[n] for n in range(len(calls))]


def play(port: int, calls: Sequence[Call], in_flight: int) -> tuple[list[Played], float]:
    """Asterisk's side of ``calls``, ``in_flight`` at a time (run in the process pool), and the CPU
    seconds it took."""
    cpu = time.process_time()
    played = asyncio.run(play_all(port, calls, in_flight))
    return played, time.process_time() - cpu


# --- the daemon's side ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewDirectory:
    """The service's directory (which agents exist): the view's agents. The look-up asks it nothing."""

    view: AvailabilityView

    def has_agent(self, agent: str) -> bool:
        return agent in self.view.agents

    def has_queue(self, queue: str) -> bool:
        return bool(queue)


def availability(agents: Iterable[str]) -> AvailabilityView:
    """One phone per agent; every other agent on a call, so the hook answers "free" both ways."""
    ordered = sorted(agents)
    view = AvailabilityView.of(AgentSpec(agent, devices=(f"PJSIP/{agent}",)) for agent in ordered)
    for n, agent in enumerate(ordered):
        view.set_device_state(f"PJSIP/{agent}", READY if n % 2 else "INUSE")
    return view


def answering(fields: dict[str, str]) -> Handler:
    """A route doing the hook's FastAGI exchange with a fixed answer (``fields``): no look-up."""

    async def handler(request: AgiRequest, session: AgiSession) -> None:
        channel = call_channel(request, session)
        assert channel is not None
        await channel.get("CALLERID(num)")
        await channel.answer(fields)

    return handler


def routes(store: Store, view: AvailabilityView) -> dict[str, Handler]:
    """The hook as ``asterisk_cb.daemon`` builds it (no config file: the settings are the defaults
    under the run-time overrides); its exchange answering "unknown" at once; the bare exchange."""
    file = SettingsFile({}, {})

    async def settings_of(agent: str | None, queue: str | None) -> Settings:
        return await effective_settings(file, store, agent, queue)

    service = CallbackService(store, ViewDirectory(view), settings_of, lambda: datetime.now(UTC))
    return {
        inbound_hook.ROUTE: InboundHook(service, view, settings_of),
        ROUTES[Kind.EXCHANGE]: answering(Answer(Status.UNKNOWN).fields()),
        ROUTES[Kind.BARE]: answering({"ACB_I_STATUS": Status.UNKNOWN.value}),
    }


@asynccontextmanager
async def agi_server(handlers: dict[str, Handler]) -> AsyncIterator[int]:
    """The daemon's FastAGI server with its default settings, on a free port (yielded)."""
    settings = FeatureCodeSite(listen=Listen("127.0.0.1", 0)).server_settings()
    server = FastAgiServer(settings, handlers)
    task = asyncio.create_task(server.run())
    try:
        yield await asyncio.wait_for(server.wait_listening(), 5)
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def log_like_the_daemon() -> None:
    """The daemon's log lines (``logs.configure``: JSON, info and up; the hook logs every look-up),
    formatted and written to /dev/null: their cost is part of a look-up's."""
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    handler.setFormatter(JsonFormatter())
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)


# --- the case ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AsteriskSide:
    """Asterisk's side in a process of its own (``pool``, one worker), against the server on ``port``."""

    pool: ProcessPoolExecutor
    port: int

    async def play(self, calls: list[Call], in_flight: int) -> tuple[dict[Kind, list[Played]], float, float]:
        """The requests by kind, the CPU seconds of this process (it only serves meanwhile) and those of
        Asterisk's side."""
        cpu = time.process_time()
        loop = asyncio.get_running_loop()
        seen, asterisk_cpu_s = await loop.run_in_executor(self.pool, play, self.port, calls, in_flight)
        return by_kind(calls, seen), time.process_time() - cpu, asterisk_cpu_s

    async def alone(self, kind: Kind, calls: list[Call]) -> Round:
        """Requests of one kind, ``IN_FLIGHT`` at a time."""
        played, daemon_cpu_s, asterisk_cpu_s = await self.play(calls, IN_FLIGHT)
        return Round(played[kind], daemon_cpu_s, asterisk_cpu_s)


class Callers:
    """Calls of each kind: a distinct caller uniqueid each; found numbers drawn among the callbacks."""

    def __init__(self, callbacks: int, seed: int = 7) -> None:
        self._callbacks = callbacks
        self._random = random.Random(seed)
        self._serial = 0
        self._now = datetime.now(UTC)

    def call(self, kind: Kind) -> Call:
        self._serial += 1
        uniqueid = f"1796000000.{self._serial}"
        n = self._random.randrange(self._callbacks)
        if kind is Kind.FOUND:
            return Call(kind, uniqueid, self._number(n), callback_id(n))
        return Call(kind, uniqueid, self._number(self._callbacks + n))  # never created: unknown

    def calls(self, count: int, kinds: Iterable[Kind] = tuple(Kind)) -> list[Call]:
        """``count`` of each kind, in random order."""
        made = [self.call(kind) for kind in kinds for _ in range(count)]
        self._random.shuffle(made)
        return made

    def _number(self, n: int) -> str:
        """The contact number of the bench's callback ``n`` (created or not)."""
        return request(n, self._now).contact_number


def by_kind(calls: Sequence[Call], played: Sequence[Played]) -> dict[Kind, list[Played]]:
    """The requests grouped by kind; a wrong answer fails the run."""
    grouped: dict[Kind, list[Played]] = {}
    for call, seen in zip(calls, played, strict=True):
        answer = (seen.shared.get("ACB_I_STATUS"), seen.shared.get("ACB_I_ID", ""))
        if answer != (call.status, call.callback):
            raise RuntimeError(f"{call.kind} {call.number}: answered {answer}, not {call.status}")
        grouped.setdefault(call.kind, []).append(seen)
    return grouped


def times(played: Sequence[Played]) -> Lateness:
    """Connect -> close of each request, in milliseconds."""
    return Lateness.of((seen.started, seen.closed) for seen in played)


def timing_rows(mode: str, grouped: dict[Kind, list[Played]]) -> list[Row]:
    """Each kind of the hook's against the bare exchange; the found callers' against the Gosub's wait."""
    base = times(grouped[Kind.BARE])
    rows = []
    for kind, label in LABELS.items():
        hook = times(grouped[kind])
        target, met = (
            (f"max < {GOSUB_WAIT_MS} ms", hook.max < GOSUB_WAIT_MS) if kind is Kind.FOUND else ("", None)
        )
        rows.append(lateness_row(f"{label}, {mode}", hook, base, target, met))
    return rows


def rate_rows(rounds: dict[Kind, Round]) -> list[Row]:
    """Throughput and CPU per request of each kind run on its own, ``IN_FLIGHT`` at a time."""

    def each(value: Callable[[Round], float], form: str) -> tuple[str, str]:
        hook = ", ".join(f"{value(rounds[kind]):{form}} {kind}" for kind in LABELS)
        return hook, f"{value(rounds[Kind.BARE]):{form}}"

    found, base = rounds[Kind.FOUND], rounds[Kind.BARE]
    return [
        row(
            f"requests per second, {IN_FLIGHT} in flight",
            *each(lambda run: run.per_second, ",.0f"),
            f"x{found.per_second / base.per_second:.2f}",
        ),
        row(
            f"daemon CPU per request (ms), {IN_FLIGHT} in flight",
            *each(lambda run: run.daemon_ms, ".2f"),
            f"x{found.daemon_ms / base.daemon_ms:.2f}",
        ),
        row(
            "  the bench's Asterisk side (Python), CPU per request (ms)",
            *each(lambda run: run.asterisk_ms, ".2f"),
        ),
    ]


async def contact_index_row(scratch: Scratch, count: int) -> Row:
    """The contact index's share: one hash, canonical number -> ids of its pending callbacks."""
    size = await scratch.redis.memory_usage(scratch.keys.contact_index, samples=0) or 0
    return row(
        f"  of which the contact index (ix:contact) at {count:,}",
        f"{size / count:,.0f} B per callback ({size / 2**20:,.1f} MiB)",
    )


async def call_in(url: str, count: int, requests: int, profile: bool) -> list[Row]:
    async with scratch_store(url) as scratch:
        before = await used_memory(scratch)
        await create_all(scratch.store, 0, far_future(count))
        rows = [await memory_row(scratch, count, before), await contact_index_row(scratch, count)]
        for option, value in OVERRIDES.items():
            await scratch.store.set_setting("general", option, value)
        now = datetime.now(UTC)
        view = availability({request(n, now).agent for n in range(count)})
        callers = Callers(count)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            async with agi_server(routes(scratch.store, view)) as port:
                asterisk = AsteriskSide(pool, port)
                await asterisk.play(callers.calls(WARM_UP), IN_FLIGHT)
                with profiled(
                    profile, f"the daemon's side of {requests:,} requests of each kind, one at a time"
                ):
                    one_by_one, _, _ = await asterisk.play(callers.calls(requests), 1)
                concurrent = {
                    kind: await asterisk.alone(kind, callers.calls(requests, (kind,))) for kind in Kind
                }
    return [
        *timing_rows("one at a time", one_by_one),
        *timing_rows(f"{IN_FLIGHT} in flight", {kind: run.played for kind, run in concurrent.items()}),
        *rate_rows(concurrent),
        *rows,
    ]


async def main(args: argparse.Namespace) -> list[Row]:
    url = args.redis_url or lab_redis_url()
    print(f"Redis {redact(url)}; load average at start {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs")
    log_like_the_daemon()
    count, requests = (QUICK_CALLBACKS, QUICK_REQUESTS) if args.quick else (CALLBACKS, REQUESTS)
    case = functools.partial(call_in, url, count, requests, args.profile)
    return await guarded(url, f"call-in {count:,}", case)  # type: ignore[return-value]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-url", help="default: the lab's Redis (scripts/pbx-lab env)")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_CALLBACKS:,} callbacks, {QUICK_REQUESTS} requests"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the daemon's side, one at a time")
    print("\n" + markdown(HEADER, asyncio.run(main(parser.parse_args()))))
