"""Benchmark of real callback calls on the lab: `asterisk-cb run` against the floor (bench/floor.py: the
least an agent-first call needs over ARI) and against Asterisk call files placing the same agent-first
calls, in the same run, on the same Asterisk and SIPp phones; prints tables (see bench/README.md).

    ACB_LAB_AGENTS="$(seq -s ' ' 1001 1050)" scripts/pbx-lab up   # a lab with 50 agent phones
    .venv/bin/python bench/calls.py             # every lab agent, 1 and 3 callbacks each; 1, 2, 4 daemons
    .venv/bin/python bench/calls.py --quick     # 10 agents; 1 and 2 daemons

Two cases: one callback per agent, all due at the same instant; and ``--per-agent`` callbacks per agent
due at that instant, so they queue behind busy agents. Each case runs the floor, the engine, then the
call files (bench/callfiles.py). Then the scale-out: the first case's load over ``--daemons`` daemons on
one Redis namespace (each with its own ARI application). While each side runs, AMI listeners count the
events each kind of AMI user receives (bench/ami_counts.py). Contacts are the lab's ``201SS...``
numbers: they answer and hang up after ``--talk-s`` seconds; agent phones answer at once. Every number
is new, so the phones' INVITE logs (one line per INVITE, with its time) tell exactly when each agent and
each contact was dialled.

The engine is the real daemon process with a config like the e2e tests' (tests/e2e/daemon_process.py,
``[daemon]`` at its defaults) on a Redis namespace of its own, deleted afterwards, and the run-time
override ``reschedule_delay = 1s``: a callback whose agent is busy is looked at again one second later.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import os
import pstats
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ami_counts import DOCUMENTED, UNFILTERED, AmiCounts
from callfiles import CallFiles
from floor import FloorPlan
from harness import REPO, Lateness, lab_env, markdown

from asterisk_cb.core import lifecycle
from asterisk_cb.core.model import State
from asterisk_cb.core.settings import Settings
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.secrecy import write_private
from asterisk_cb.store import Store
from asterisk_cb.telephony.ari import AriClient, AriSettings

sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests" / "e2e")]
from daemon_process import DaemonProcess, config_text  # noqa: E402 - needs the sys.path entries above
from lab import invites  # noqa: E402
from lab.ami_client import LabAmi  # noqa: E402

LEAD_S = 3.0  # the callbacks are due this long after they are scheduled
FLOOR_START_S = 3.0  # what the floor's process may take to start, added to its lead
POLL_S = 0.1  # how often the agents' channels are listed
RESCHEDULE = "1s"
PROFILED = "asterisk_cb|aiohttp/client.py|redis/asyncio/client.py"  # what --profile lists
RING_TIMEOUT_S = int(Settings().agent_ring_timeout.total_seconds())
SIDES = ("floor", "engine", "baseline")  # in the order each case runs them
HEADER = (
    "measure",
    "floor (ARI script)",
    "asterisk-cb run",
    "call files",
    "asterisk-cb/floor",
    "asterisk-cb/call files",
)
SCALE_HEADER = (
    "daemons on one Redis",
    "callbacks each daemon rang (all runs)",
    "due -> agent INVITE",
    "agent answer -> contact INVITE",
    "calls placed per second",
    "daemon CPU per callback (all daemons)",
    "AMI events reaching the daemons per callback",
)
Row = tuple[str, ...]
FLOOR = Path(__file__).resolve().parent / "floor.py"
RUNG = re.compile(r'"msg": "callback \S+ due: agent ')  # the daemon's log line as it rings an agent


@dataclass(frozen=True)
class Call:
    agent: str
    number: str
    name: str


def plan(agents: Sequence[str], per_agent: int, talk_s: int) -> list[Call]:
    """``per_agent`` calls for every agent, each to a contact number never dialled before."""
    tag = "".join(random.choices("0123456789", k=4))
    return [
        Call(agent, f"201{talk_s:02d}{tag}{n:04d}", f"Bench {n}")
        for n, agent in enumerate(agent for _ in range(per_agent) for agent in agents)
    ]


@dataclass(frozen=True)
class Run:
    """One side's run of a case: what it placed, when it was due, when the last agent was free again,
    the CPU seconds the client (the daemons, or the floor's script) and Asterisk spent from the due time
    to then, when each agent's queue memberships were paused (the engine does it just before ringing the
    agent), and the AMI events each kind of user received meanwhile (bench/ami_counts.py)."""

    calls: list[Call]
    due: float
    ended: float
    cpu: dict[str, float]
    pauses: dict[str, list[float]]
    ami: dict[str, int]  # by kind of user
    ami_names: Counter[str]  # the documented user's, by event name
    rung_by: tuple[int, ...] = ()  # engine: the callbacks each daemon rang the agent for, by its log


class Pauses:
    """When each agent's queue membership was paused, as AMI reports it to us (QueueMemberPause with
    Paused: 1; only the "agent" event class is asked for)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.times: dict[str, list[float]] = {}

    @contextlib.asynccontextmanager
    async def recording(self) -> AsyncIterator[None]:
        ami = self.info["ami_harness"]  # an observer: the tests' own user, not the daemon's
        async with LabAmi(ami["host"], ami["port"], ami["user"], ami["secret"]) as session:
            await session.action("Events", EventMask="agent")
            task = asyncio.create_task(self._record(session))
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _record(self, session: LabAmi) -> None:
        async for message in session.messages():
            if message.get("Event") == "QueueMemberPause" and message.get("Paused") == "1":
                interface = message.get("Interface", "").removeprefix("PJSIP/")
                self.times.setdefault(interface, []).append(time.time())


class Lines:
    """The agents' channels as ARI lists them (``GET /endpoints/PJSIP``): who is on a call, and when the
    last agent call ended (to ``POLL_S``: both sides are timed by this same poll)."""

    def __init__(self, ari: AriClient, agents: Sequence[str]) -> None:
        self.ari = ari
        self.agents = set(agents)
        self.busy: set[str] = set()
        self.last_free = 0.0

    async def poll(self) -> None:
        endpoints = await self.ari.request("GET", "/endpoints/PJSIP")
        now = time.time()
        busy = {e["resource"] for e in endpoints if e["resource"] in self.agents and e["channel_ids"]}
        if self.busy - busy:
            self.last_free = now
        self.busy = busy

    async def until(self, finished: Callable[[], Awaitable[bool]], timeout_s: float) -> float:
        """Poll until ``finished`` says so and no agent has a channel; the time the last call ended."""
        async with asyncio.timeout(timeout_s):
            while True:
                await self.poll()
                if await finished() and not self.busy:
                    return self.last_free
                await asyncio.sleep(POLL_S)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def asterisk_pid(info: dict[str, Any]) -> int:
    """The lab's Asterisk: the process named asterisk whose root is the lab's chroot."""
    root = info["asterisk_root"]
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            ours = entry.name.isdigit() and os.readlink(entry / "root") == root
            if ours and (entry / "comm").read_text().strip() == "asterisk":
                return int(entry.name)
    raise SystemExit("bench: the lab's Asterisk is not running (scripts/pbx-lab up)")


async def observe(
    info: dict[str, Any],
    calls: list[Call],
    pids: dict[str, list[int]],
    due: float,
    finished: Callable[[], Awaitable[bool]],
    timeout_s: float,
    lines: Lines,
) -> Run:
    """Wait for the due time, then until the run is over (``finished`` and every agent free). ``pids``:
    the processes whose CPU time is summed under each name ("client", "asterisk")."""
    pauses, ami = Pauses(info), AmiCounts(info)
    async with pauses.recording(), ami.counting() as counts:
        before = {name: sum(map(cpu_seconds, group)) for name, group in pids.items()}
        await asyncio.sleep(max(0.0, due - time.time()))
        ended = await lines.until(finished, timeout_s)
        cpu = {name: sum(map(cpu_seconds, group)) - before[name] for name, group in pids.items()}
    ami = {label: names.total() for label, names in counts.items()}
    return Run(calls, due, ended, cpu, pauses.times, ami, counts[DOCUMENTED])


async def schedule(store: Store, calls: Sequence[Call]) -> float:
    """Create the engine's callbacks, as the CLI does, all due ``LEAD_S`` from now; the due time."""
    now = datetime.now(UTC)
    due_at = now + timedelta(seconds=LEAD_S)
    settings = Settings()
    for n, call in enumerate(calls):
        request = lifecycle.NewCallback(
            contact_number=call.number,
            agent=call.agent,
            due_at=due_at,
            created_by="bench",
            contact_name=call.name,
        )
        new = lifecycle.create(request, f"bench{n:05}", now, settings)
        await store.create(new.callback, new.events)
    return due_at.timestamp()


async def all_finished(store: Store, count: int) -> bool:
    counts = await store.count_by_state()
    return sum(n for state, n in counts.items() if state.is_finished) >= count


@contextlib.asynccontextmanager
async def daemons_on(
    info: dict[str, Any], namespace: str, folder: Path, count: int, profile_top: int
) -> AsyncIterator[list[DaemonProcess]]:
    """``count`` processes of `asterisk-cb run` on ``namespace``, each with an ARI application of its
    own (as the README tells admins); SIGTERM after. With ``profile_top``, the first under cProfile, whose top
    functions are printed once it exited."""
    profile = folder / "daemon.prof"
    daemons = []
    for n in range(count):
        config = folder / f"daemon-{n}.conf"
        write_private(config, config_text(info, namespace, f"acb-{namespace}-{n}", daemon={}))
        profiled = profile_top and not n
        wrapper = (sys.executable, "-m", "cProfile", "-o", str(profile)) if profiled else ()
        daemons.append(DaemonProcess(config, folder / f"daemon-{n}.log", wrapper))
    started: list[DaemonProcess] = []
    try:
        for daemon in daemons:  # one after the other: several starting at once can take past the timeout
            daemon.start()
            started.append(daemon)
            await daemon.wait_running(0)
        yield daemons
    except BaseException:
        for daemon in started:
            print(daemon.tail(), file=sys.stderr)
        raise
    finally:
        await stop_all(started)
    if profile.exists():
        print(f"--- the daemon under cProfile: top {profile_top} of {PROFILED} by cumulative time ---")
        pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(PROFILED, profile_top)


async def stop_all(daemons: Sequence[DaemonProcess]) -> None:
    """SIGTERM to every daemon first, so that they stop together; SIGKILL any still running 15 s on."""
    for daemon in daemons:
        with contextlib.suppress(OSError):
            daemon.send(signal.SIGTERM)
    for daemon in daemons:
        with contextlib.suppress(subprocess.TimeoutExpired):
            await daemon.exited(15)
        daemon.kill()


async def engine_side(
    info: dict[str, Any],
    ari: AriClient,
    calls: list[Call],
    timeout_s: float,
    profile: int = 0,
    daemons: int = 1,
) -> Run:
    """The daemons carry the callbacks through; the run ends when all are finished and the agents free."""
    namespace = f"bench-calls-{os.urandom(4).hex()}"
    redis = connect(info["redis"]["url"], name="asterisk-cb-bench")
    store = Store(redis, Keys(namespace))
    lines = Lines(ari, [call.agent for call in calls])
    try:
        await store.set_setting("general", "reschedule_delay", RESCHEDULE)
        with tempfile.TemporaryDirectory(prefix="acb-bench-calls-") as folder:
            async with daemons_on(info, namespace, Path(folder), daemons, profile) as running:
                due = await schedule(store, calls)
                pids = {"client": [daemon.pid for daemon in running], "asterisk": [asterisk_pid(info)]}
                finished = functools.partial(all_finished, store, len(calls))
                run = await observe(info, calls, pids, due, finished, timeout_s, lines)
                run = dataclasses.replace(run, rung_by=tuple(map(rung, running)))
        completed = await store.ids_in_state(State.COMPLETED)
        if len(completed) != len(calls):
            print(f"engine: {len(calls) - len(completed)} of {len(calls)} callbacks not completed")
        return run
    finally:
        await store.delete_namespace()
        await redis.aclose()


def rung(daemon: DaemonProcess) -> int:
    """How many callbacks a daemon rang the agent for: its log's "callback <id> due: agent ..." lines."""
    return len(RUNG.findall(daemon.log.read_text()))


async def baseline_side(info: dict[str, Any], ari: AriClient, calls: list[Call], timeout_s: float) -> Run:
    """Call files moved in at the due time (and as agents free up); ends when all were read and the
    agents are free."""
    files = CallFiles(info, calls, RING_TIMEOUT_S)
    lines = Lines(ari, [call.agent for call in calls])
    due = time.time() + LEAD_S

    async def finished() -> bool:
        return files.dispatch(lines.busy)

    pids = {"asterisk": [asterisk_pid(info)]}
    try:
        return await observe(info, calls, pids, due, finished, timeout_s, lines)
    except BaseException:
        files.remove_leftovers()
        raise


async def floor_side(info: dict[str, Any], ari: AriClient, calls: list[Call], timeout_s: float) -> Run:
    """bench/floor.py in a process of its own places the calls; ends once it says all ended and the
    agents are free. Its calls are due ``FLOOR_START_S`` later than the others' (its process starts
    first); it must be ready a second before they are due, or the run is refused."""
    due = time.time() + FLOOR_START_S + LEAD_S
    lines = Lines(ari, [call.agent for call in calls])
    with tempfile.TemporaryDirectory(prefix="acb-bench-floor-") as folder:
        plan = Path(folder) / "plan.json"
        plan.write_text(FloorPlan.on_lab(info, calls, due, RING_TIMEOUT_S).to_json())
        path = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))
        floor = await asyncio.create_subprocess_exec(
            sys.executable,
            str(FLOOR),
            str(plan),
            stdout=asyncio.subprocess.PIPE,
            env=os.environ | {"PYTHONPATH": path},
        )
        try:
            assert floor.stdout is not None
            async with asyncio.timeout(due - 1 - time.time()):
                ready = await floor.stdout.readline()
            if ready != b"ready\n":
                raise SystemExit(f"bench: bench/floor.py did not start ({await floor.wait()})")
            done = asyncio.create_task(floor.stdout.readline())

            async def finished() -> bool:
                if done.done() and done.result() != b"done\n":
                    raise SystemExit(f"bench: bench/floor.py failed ({await floor.wait()})")
                return done.done()

            pids = {"client": [floor.pid], "asterisk": [asterisk_pid(info)]}
            return await observe(info, calls, pids, due, finished, timeout_s, lines)
        finally:
            if floor.returncode is None:
                floor.terminate()
            await floor.wait()


@dataclass
class Pairs:
    """(from, to) epoch-second pairs of every agent of a side's runs."""

    late: list[tuple[float, float]] = field(default_factory=list)
    bridged: list[tuple[float, float]] = field(default_factory=list)
    requeued: list[tuple[float, float]] = field(default_factory=list)
    first_paused: list[tuple[float, float]] = field(default_factory=list)
    paused_rung: list[tuple[float, float]] = field(default_factory=list)

    def add(self, due: float, rung: list[float], contacts: list[float], talk_s: int) -> None:
        """One agent's INVITEs and its contacts' first INVITEs, both in time order: an agent has one
        call at a time, so its n-th call is the one that dialled its n-th contact. A contact answers at
        once and hangs up ``talk_s`` later, which ends the call: the agent is free again then."""
        self.late += ((due, ring) for ring in rung)
        self.bridged += zip(rung, contacts, strict=False)
        self.requeued += ((contact + talk_s, ring) for contact, ring in zip(contacts, rung[1:], strict=False))

    def add_pauses(self, due: float, rung: list[float], paused: list[float]) -> None:
        """An agent's queue pauses: the first one before each of its INVITEs (after the previous INVITE)
        is when the engine was about to ring it."""
        for start, ring in zip([due - LEAD_S, *rung], rung, strict=False):
            first = next((at for at in paused if start < at <= ring), None)
            if first is not None:
                self.paused_rung.append((first, ring))
                if start < due:
                    self.first_paused.append((due, first))


def contact_times(info: dict[str, Any], calls: Sequence[Call]) -> dict[str, list[float]]:
    """Every INVITE the contacts' phone got for these calls' numbers, by number."""
    numbers = {call.number for call in calls}
    times: dict[str, list[float]] = {}
    for invite in invites.read(Path(info["contacts"]["invite_dir"])):
        if invite.user in numbers:
            times.setdefault(invite.user, []).append(invite.time)
    return times


def read_run(info: dict[str, Any], run: Run, talk_s: int, pairs: Pairs) -> int:
    """Add a run's INVITEs to ``pairs``; the number of contact INVITEs (one per call expected)."""
    dialled = contact_times(info, run.calls)
    for agent in sorted({call.agent for call in run.calls}):
        log = Path(info["agents"][agent]["invite_dir"])
        window = [i.time for i in invites.read(log, agent) if run.due - LEAD_S <= i.time <= run.ended]
        ours = (call.number for call in run.calls if call.agent == agent)
        pairs.add(run.due, window, sorted(dialled[number][0] for number in ours if number in dialled), talk_s)
        pairs.add_pauses(run.due, window, run.pauses.get(agent, []))
    return sum(len(times) for times in dialled.values())


@dataclass(frozen=True)
class Figures:
    """One side of a case, its runs pooled. From the phones' INVITE logs (agent phones answer at once, so
    an agent's INVITE time is also its answer time, to the millisecond) and the agents' channels."""

    lateness: Lateness  # due -> the agent's INVITE
    to_contact: Lateness  # the agent's INVITE -> the contact's INVITE
    requeue: Lateness | None  # an agent's call ended -> its next INVITE (queued callbacks only)
    paused: Lateness | None  # due -> the agent's queues paused (its first ring only)
    pause_to_ring: Lateness | None  # the agent's queues paused -> its INVITE
    wall_s: float  # due -> the last agent call ended (median of the runs)
    rate: float  # agent INVITEs per second, from the due time to the last one (median of the runs)
    cpu_ms: dict[str, float]  # CPU per call by process (client: the daemons or the floor; asterisk)
    ami: dict[str, float]  # AMI events per call, by kind of user (bench/ami_counts.py)
    ami_names: dict[str, float]  # the documented user's events per call, by name
    invites: tuple[int, int]  # agent INVITEs, contact INVITEs

    @classmethod
    def of(cls, info: dict[str, Any], runs: Sequence[Run], talk_s: int) -> Figures:
        pairs, rates, contact_invites = Pairs(), [], 0
        for run in runs:
            before = len(pairs.late)
            contact_invites += read_run(info, run, talk_s, pairs)
            rung = [ring for _, ring in pairs.late[before:]]
            rates.append(len(rung) / (max(rung) - run.due) if rung else 0.0)
        calls = sum(len(run.calls) for run in runs)
        return cls(
            lateness=Lateness.of(pairs.late),
            to_contact=Lateness.of(pairs.bridged),
            requeue=optional(pairs.requeued),
            paused=optional(pairs.first_paused),
            pause_to_ring=optional(pairs.paused_rung),
            wall_s=statistics.median(run.ended - run.due for run in runs),
            rate=statistics.median(rates),
            cpu_ms=per_call(runs, calls, "cpu", 1000),
            ami=per_call(runs, calls, "ami", 1),
            ami_names=per_call(runs, calls, "ami_names", 1),
            invites=(len(pairs.late), contact_invites),
        )


def per_call(runs: Sequence[Run], calls: int, attribute: str, scale: float) -> dict[str, float]:
    """A per-name total of the runs (``Run.cpu``, ``Run.ami``, ``Run.ami_names``) per call placed."""
    totals: dict[str, float] = {}
    for run in runs:
        for name, value in getattr(run, attribute).items():
            totals[name] = totals.get(name, 0) + value
    return {name: scale * total / calls for name, total in totals.items()}


def optional(pairs: list[tuple[float, float]]) -> Lateness | None:
    return Lateness.of(pairs) if pairs else None


def ratio(engine: float, base: float) -> str:
    return f"x{engine / base:.2f}" if base else ""


Key = Callable[[Figures], float | None] | None  # the number a ratio is taken of (None: no ratio)


def row(measure: str, sides: dict[str, Figures], show: Callable[[Figures], str | None], key: Key) -> Row:
    """One measure across the sides (an empty cell where a side has none), then asterisk-cb's ratio to
    the floor and to the call files by ``key`` (a number of the figures, or None: no ratio)."""
    cells = tuple(show(sides[side]) or "" for side in SIDES)
    numbers = {side: key(figures) if key else None for side, figures in sides.items()}
    engine = numbers["engine"]
    ratios = tuple(
        ratio(engine, base) if engine is not None and base is not None else ""
        for base in (numbers["floor"], numbers["baseline"])
    )
    return (measure, *cells, *ratios)


def lateness_row(measure: str, sides: dict[str, Figures], pick: Callable[[Figures], Lateness | None]) -> Row:
    def p99(figures: Figures) -> float | None:
        found = pick(figures)
        return found.p99 if found else None

    shown = row(measure, sides, lambda f: str(pick(f) or ""), p99)
    return (*shown[:-2], *(f"p99 {cell}" if cell else "" for cell in shown[-2:]))


def case_rows(name: str, count: int, sides: dict[str, Figures]) -> list[Row]:
    engine = sides["engine"]
    rows = [
        (f"**{name}**", *[""] * (len(HEADER) - 1)),
        lateness_row("due -> agent INVITE", sides, lambda f: f.lateness),
        lateness_row("agent answer -> contact INVITE", sides, lambda f: f.to_contact),
    ]
    if engine.requeue:
        rows.append(lateness_row("agent free again -> its next INVITE", sides, lambda f: f.requeue))
    if engine.paused and engine.pause_to_ring:
        rows.append(
            lateness_row("  due -> agent's queues paused (AMI), first ring", sides, lambda f: f.paused)
        )
        rows.append(lateness_row("  agent's queues paused -> agent INVITE", sides, lambda f: f.pause_to_ring))
    return [
        *rows,
        row("wall time, due -> last call ended", sides, lambda f: f"{f.wall_s:.2f} s", lambda f: f.wall_s),
        row(
            "calls placed per second (due -> last agent INVITE)",
            sides,
            lambda f: f"{f.rate:.1f}/s",
            lambda f: f.rate,
        ),
        cpu_row("client CPU per call (the daemon; the floor's script)", sides, "client"),
        cpu_row("Asterisk CPU per call", sides, "asterisk"),
        *(
            row(f"AMI events per call: {label}", sides, lambda f, k=label: f"{f.ami[k]:.1f}", None)
            for label in engine.ami
        ),
        row("  the cut: read = all unfiltered / the documented user", sides, events_cut, None),
        row("  the documented user's, by name", sides, by_name, None),
        row(
            f"INVITEs agents / contacts (expected {count} / {count})",
            sides,
            lambda f: "{} / {}".format(*f.invites),
            None,
        ),
    ]


def cpu_row(measure: str, sides: dict[str, Figures], process: str) -> Row:
    def ms(figures: Figures) -> float | None:
        return figures.cpu_ms.get(process)

    return row(measure, sides, lambda f: f"{ms(f):.1f} ms" if ms(f) is not None else "", ms)


def by_name(figures: Figures) -> str:
    """The documented user's events per call by name, most first."""
    names = sorted(figures.ami_names.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {count:.1f}" for name, count in names)


def events_cut(figures: Figures) -> str:
    """How many times more events the unfiltered user receives than the documented one."""
    documented = figures.ami[DOCUMENTED]
    return f"x{figures.ami[UNFILTERED] / documented:.1f}" if documented else "(none documented)"


@dataclass(frozen=True)
class Options:
    agents: tuple[str, ...]
    per_agent: int  # callbacks per agent in the queued case
    talk_s: int
    repeats: int
    profile: int  # functions of the daemon's cProfile to print (0: no profile)
    daemons: tuple[int, ...]  # the scale-out's daemon counts


async def idle(ari: AriClient, agents: Sequence[str]) -> None:
    """Until no agent has a channel (the previous run's last hang-ups)."""

    async def anyway() -> bool:
        return True

    await Lines(ari, agents).until(anyway, 30)


async def run_case(
    info: dict[str, Any], ari: AriClient, options: Options, per_agent: int
) -> tuple[list[Row], list[Run]]:
    """The floor, the engine, then the call files, each with fresh numbers for the same agents;
    ``repeats`` times. The rows, and the engine's runs (the scale-out's one daemon)."""
    timeout_s = 60 + per_agent * (options.talk_s + RING_TIMEOUT_S + 5)
    engine = functools.partial(engine_side, profile=options.profile)
    functions = {"floor": floor_side, "engine": engine, "baseline": baseline_side}
    runs: dict[str, list[Run]] = {name: [] for name in SIDES}
    for repeat in range(options.repeats):
        for name in SIDES:
            runs[name].append(await run_side(info, ari, options, functions[name], per_agent, timeout_s))
            print(f"  run {repeat + 1}, {name}: done, load average {os.getloadavg()[0]:.2f}", flush=True)
    count = per_agent * len(options.agents)
    name = f"{len(options.agents)} agents, {count} callbacks due at one instant, {options.repeats} run(s)"
    sides = {side: Figures.of(info, runs[side], options.talk_s) for side in SIDES}
    return case_rows(name, count * options.repeats, sides), runs["engine"]


Side = Callable[[dict[str, Any], AriClient, list[Call], float], Awaitable[Run]]


async def run_side(
    info: dict[str, Any], ari: AriClient, options: Options, side: Side, per_agent: int, timeout_s: float
) -> Run:
    """One run of one side, once the agents are idle, with fresh numbers."""
    await idle(ari, options.agents)
    return await side(info, ari, plan(options.agents, per_agent, options.talk_s), timeout_s)


async def scale_out(
    info: dict[str, Any], ari: AriClient, options: Options, one: list[Run], rows: list[Row]
) -> None:
    """The first case's load (one callback per agent, all due at once) over each of ``daemons`` daemons
    on one Redis namespace and one Asterisk, a row each into ``rows``; one daemon is the first case's
    engine runs."""
    for count in options.daemons:
        runs = one if count == 1 else []
        side = functools.partial(engine_side, daemons=count)
        for repeat in range(options.repeats if count != 1 else 0):
            runs.append(await run_side(info, ari, options, side, 1, 60 + options.talk_s + RING_TIMEOUT_S))
            print(f"  run {repeat + 1}, {count} daemons: done", flush=True)
        figures = Figures.of(info, runs, options.talk_s)
        events = count * figures.ami[DOCUMENTED]  # every daemon's session receives every event
        spread = [sum(counts) for counts in zip(*(run.rung_by for run in runs), strict=True)]
        rows.append(
            (
                str(count),
                " / ".join(map(str, sorted(spread, reverse=True))),
                str(figures.lateness),
                str(figures.to_contact),
                f"{figures.rate:.1f}/s",
                f"{figures.cpu_ms['client']:.1f} ms",
                f"{events:.1f}",
            )
        )


def lab_agents(info: dict[str, Any], wanted: int | None) -> list[str]:
    agents = sorted(info["agents"])
    if wanted is not None and wanted > len(agents):
        raise SystemExit(
            f"bench: the lab has {len(agents)} agents, {wanted} wanted; restart it with more, e.g.\n"
            f"  scripts/pbx-lab down\n"
            f"  ACB_LAB_AGENTS=\"$(seq -s ' ' 1001 {1000 + wanted})\" scripts/pbx-lab up"
        )
    return agents[:wanted]


async def main(args: argparse.Namespace) -> None:
    info = lab_env()
    options = Options(
        agents=lab_agents(info, args.agents or (10 if args.quick else None)),
        per_agent=args.per_agent,
        talk_s=args.talk_s,
        repeats=args.repeats or (1 if args.quick else 3),
        profile=args.profile,
        daemons=tuple(int(n) for n in (args.daemons or ("1,2" if args.quick else "1,2,4")).split(",")),
    )
    print(
        f"{len(options.agents)} agents; load average at start {os.getloadavg()[0]:.2f}; "
        f"{os.cpu_count()} CPUs; contacts hang up {options.talk_s} s after answering",
        flush=True,
    )
    ari_info = info["ari"]
    rows: list[Row] = []
    scaled: list[Row] = []
    try:
        async with AriClient(
            AriSettings(ari_info["url"], ari_info["user"], ari_info["password"], "acb-bench")
        ) as ari:
            engine_runs = []
            for per_agent in (1, options.per_agent):
                print(f"case: {per_agent} per agent", flush=True)
                case, engine = await run_case(info, ari, options, per_agent)
                rows += case
                engine_runs.append(engine)
            print(f"scale-out: {', '.join(map(str, options.daemons))} daemons", flush=True)
            await scale_out(info, ari, options, engine_runs[0], scaled)
    finally:  # what was measured is shown even if a later case fails
        print("\n" + markdown(HEADER, rows) + ("\n\n" + markdown(SCALE_HEADER, scaled) if scaled else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="10 agents, 1 run (default: every lab agent, 3 runs)"
    )
    parser.add_argument("--agents", type=int, help="how many of the lab's agents take callbacks")
    parser.add_argument("--per-agent", type=int, default=3, help="callbacks per agent in the queued case")
    parser.add_argument("--talk-s", type=int, default=3, help="seconds a contact talks before hanging up")
    parser.add_argument("--repeats", type=int, help="runs of each case, pooled")
    parser.add_argument(
        "--profile", type=int, nargs="?", const=30, default=0, help="cProfile the daemon, print the top N"
    )
    parser.add_argument(
        "--daemons", help="the scale-out's daemon counts, e.g. 1,2,4 (the default; --quick 1,2)"
    )
    asyncio.run(main(parser.parse_args()))
