"""Benchmark of real callback calls on the lab: `asterisk-cb run` against Asterisk call files placing the
same agent-first calls, in the same run, on the same Asterisk and SIPp phones; prints a table (see
bench/README.md).

    ACB_LAB_AGENTS="$(seq -s ' ' 1001 1050)" scripts/pbx-lab up   # a lab with 50 agent phones
    .venv/bin/python bench/calls.py             # every lab agent, 1 and 3 callbacks each
    .venv/bin/python bench/calls.py --quick     # 10 agents

Two cases: one callback per agent, all due at the same instant; and ``--per-agent`` callbacks per agent
due at that instant, so they queue behind busy agents. Each case runs the engine, then the baseline
(bench/callfiles.py). Contacts are the lab's ``201SS...`` numbers: they answer and hang up after
``--talk-s`` seconds; agent phones answer at once. Every number is new, so the phones' INVITE logs
(one line per INVITE, with its time) tell exactly when each agent and each contact was dialled.

The engine is the real daemon process with a config like the e2e tests' (tests/e2e/daemon_process.py,
``[daemon]`` at its defaults) on a Redis namespace of its own, deleted afterwards, and the run-time
override ``reschedule_delay = 1s``: a callback whose agent is busy is looked at again one second later.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from callfiles import CallFiles
from harness import REPO, Lateness, lab_env, markdown

from asterisk_cb.core import lifecycle
from asterisk_cb.core.model import State
from asterisk_cb.core.settings import Settings
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.store import Store
from asterisk_cb.telephony.ari import AriClient, AriSettings

sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests" / "e2e")]
from daemon_process import DaemonProcess, config_text  # noqa: E402 - needs the sys.path entries above
from lab import invites  # noqa: E402

LEAD_S = 3.0  # the callbacks are due this long after they are scheduled
POLL_S = 0.1  # how often the agents' channels are listed
RESCHEDULE = "1s"
RING_TIMEOUT_S = int(Settings().agent_ring_timeout.total_seconds())
HEADER = ("measure", "engine (asterisk-cb run)", "baseline (call files)", "engine/baseline")
Row = tuple[str, str, str, str]


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
    and the CPU seconds the daemon (engine side only) and Asterisk spent from the due time to then."""

    calls: list[Call]
    due: float
    ended: float
    cpu: dict[str, float]


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
    lines: Lines, pids: dict[str, int], due: float, finished: Callable[[], Awaitable[bool]], timeout_s: float
) -> tuple[float, dict[str, float]]:
    """Wait for the due time, then until the run is over; (last call ended, CPU seconds per process)."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    await asyncio.sleep(max(0.0, due - time.time()))
    ended = await lines.until(finished, timeout_s)
    return ended, {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}


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
async def daemon_on(info: dict[str, Any], namespace: str, folder: Path) -> AsyncIterator[DaemonProcess]:
    """`asterisk-cb run` on ``namespace``, with an ARI application of its own; SIGTERM after."""
    config = folder / "daemon.conf"
    config.write_text(config_text(info, namespace, f"acb-{namespace}", daemon={}))
    daemon = DaemonProcess(config, folder / "daemon.log")
    daemon.start()
    try:
        await daemon.wait_running(0)
        yield daemon
    except BaseException:
        print(daemon.tail(), file=sys.stderr)
        raise
    finally:
        daemon.send(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await daemon.exited(15)
        daemon.kill()


async def engine_side(info: dict[str, Any], ari: AriClient, calls: list[Call], timeout_s: float) -> Run:
    """The daemon carries the callbacks through; the run ends when all are finished and the agents free."""
    namespace = f"bench-calls-{os.urandom(4).hex()}"
    redis = connect(info["redis"]["url"], name="asterisk-cb-bench")
    store = Store(redis, Keys(namespace))
    lines = Lines(ari, [call.agent for call in calls])
    try:
        await store.set_setting("general", "reschedule_delay", RESCHEDULE)
        with tempfile.TemporaryDirectory(prefix="acb-bench-calls-") as folder:
            async with daemon_on(info, namespace, Path(folder)) as daemon:
                due = await schedule(store, calls)
                pids = {"daemon": daemon.pid, "asterisk": asterisk_pid(info)}
                ended, cpu = await observe(
                    lines, pids, due, lambda: all_finished(store, len(calls)), timeout_s
                )
        completed = await store.ids_in_state(State.COMPLETED)
        if len(completed) != len(calls):
            print(f"engine: {len(calls) - len(completed)} of {len(calls)} callbacks not completed")
        return Run(calls, due, ended, cpu)
    finally:
        await store.delete_namespace()
        await redis.aclose()


async def baseline_side(info: dict[str, Any], ari: AriClient, calls: list[Call], timeout_s: float) -> Run:
    """Call files moved in at the due time (and as agents free up); ends when all were read and the
    agents are free."""
    files = CallFiles(info, calls, RING_TIMEOUT_S)
    lines = Lines(ari, [call.agent for call in calls])
    due = time.time() + LEAD_S

    async def finished() -> bool:
        return files.dispatch(lines.busy)

    try:
        ended, cpu = await observe(lines, {"asterisk": asterisk_pid(info)}, due, finished, timeout_s)
    except BaseException:
        files.remove_leftovers()
        raise
    return Run(calls, due, ended, cpu)


@dataclass(frozen=True)
class Figures:
    """What the phones' INVITE logs say of one run (agent phones answer at once, so an agent's INVITE
    time is also its answer time, to the millisecond)."""

    lateness: Lateness  # due -> the agent's INVITE
    to_contact: Lateness  # the agent's INVITE -> the contact's INVITE
    requeue: Lateness | None  # an agent's call ended -> its next INVITE (queued callbacks only)
    rate: float  # agent INVITEs per second, from the due time to the last one
    agent_invites: int
    contact_invites: int


def contact_times(info: dict[str, Any], calls: Sequence[Call]) -> dict[str, list[float]]:
    """Every INVITE the contacts' phone got for these calls' numbers, by number."""
    numbers = {call.number for call in calls}
    times: dict[str, list[float]] = {}
    for invite in invites.read(Path(info["contacts"]["invite_dir"])):
        if invite.user in numbers:
            times.setdefault(invite.user, []).append(invite.time)
    return times


@dataclass
class Pairs:
    """(from, to) epoch-second pairs of every agent of a run, and the agents' INVITE times."""

    rung: list[float] = field(default_factory=list)
    bridged: list[tuple[float, float]] = field(default_factory=list)
    requeued: list[tuple[float, float]] = field(default_factory=list)

    def add(self, rung: list[float], contacts: list[float], talk_s: int) -> None:
        """One agent's INVITEs and its contacts' first INVITEs, both in time order: an agent has one
        call at a time, so its n-th call is the one that dialled its n-th contact. A contact answers at
        once and hangs up ``talk_s`` later, which ends the call: the agent is free again then."""
        self.rung += rung
        self.bridged += zip(rung, contacts, strict=False)
        self.requeued += ((contact + talk_s, ring) for contact, ring in zip(contacts, rung[1:], strict=False))


def figures(info: dict[str, Any], run: Run, talk_s: int) -> Figures:
    dialled = contact_times(info, run.calls)
    pairs = Pairs()
    for agent in sorted({call.agent for call in run.calls}):
        log = Path(info["agents"][agent]["invite_dir"])
        window = [i.time for i in invites.read(log, agent) if run.due - LEAD_S <= i.time <= run.ended]
        ours = (call.number for call in run.calls if call.agent == agent)
        pairs.add(window, sorted(dialled[number][0] for number in ours if number in dialled), talk_s)
    return Figures(
        lateness=Lateness.of((run.due, at) for at in pairs.rung),
        to_contact=Lateness.of(pairs.bridged),
        requeue=Lateness.of(pairs.requeued) if pairs.requeued else None,
        rate=len(pairs.rung) / (max(pairs.rung) - run.due),
        agent_invites=len(pairs.rung),
        contact_invites=sum(len(times) for times in dialled.values()),
    )


def ratio(engine: float, base: float) -> str:
    return f"x{engine / base:.2f}" if base else ""


def lateness_row(measure: str, engine: Lateness, base: Lateness) -> Row:
    return (measure, str(engine), str(base), "p99 " + ratio(engine.p99, base.p99))


def case_rows(name: str, info: dict[str, Any], sides: tuple[Run, Run], talk_s: int) -> list[Row]:
    engine, base = sides
    ours, theirs = figures(info, engine, talk_s), figures(info, base, talk_s)
    count = len(engine.calls)
    wall = (engine.ended - engine.due, base.ended - base.due)
    cpu = [side.cpu.get(process, 0) * 1000 / count for side in sides for process in ("daemon", "asterisk")]
    rows = [
        (f"**{name}**", "", "", ""),
        lateness_row("due -> agent INVITE", ours.lateness, theirs.lateness),
        lateness_row("agent answer -> contact INVITE", ours.to_contact, theirs.to_contact),
    ]
    if ours.requeue and theirs.requeue:
        rows.append(lateness_row("agent free again -> its next INVITE", ours.requeue, theirs.requeue))
    return [
        *rows,
        ("wall time, due -> last call ended", f"{wall[0]:.2f} s", f"{wall[1]:.2f} s", ratio(*wall)),
        (
            "calls placed per second (due -> last agent INVITE)",
            f"{ours.rate:.1f}/s",
            f"{theirs.rate:.1f}/s",
            ratio(ours.rate, theirs.rate),
        ),
        ("daemon CPU per callback", f"{cpu[0]:.1f} ms", "", ""),
        ("Asterisk CPU per call", f"{cpu[1]:.1f} ms", f"{cpu[3]:.1f} ms", ratio(cpu[1], cpu[3])),
        (
            f"INVITEs agents / contacts (expected {count} / {count})",
            f"{ours.agent_invites} / {ours.contact_invites}",
            f"{theirs.agent_invites} / {theirs.contact_invites}",
            "",
        ),
    ]


async def idle(ari: AriClient, agents: Sequence[str]) -> None:
    """Until no agent has a channel (the previous run's last hang-ups)."""

    async def anyway() -> bool:
        return True

    await Lines(ari, agents).until(anyway, 30)


async def run_case(
    info: dict[str, Any], ari: AriClient, agents: Sequence[str], per_agent: int, talk_s: int
) -> list[Row]:
    """The engine, then the baseline, each with fresh numbers for the same agents."""
    timeout_s = 60 + per_agent * (talk_s + RING_TIMEOUT_S + 5)
    sides = []
    for side in (engine_side, baseline_side):
        await idle(ari, agents)
        sides.append(await side(info, ari, plan(agents, per_agent, talk_s), timeout_s))
        print(f"  {side.__name__}: done, load average {os.getloadavg()[0]:.2f}", flush=True)
    name = f"{len(agents)} agents, {per_agent * len(agents)} callbacks due at one instant"
    return case_rows(name, info, (sides[0], sides[1]), talk_s)


def lab_agents(info: dict[str, Any], wanted: int | None) -> list[str]:
    agents = sorted(info["agents"])
    if wanted is not None and wanted > len(agents):
        raise SystemExit(
            f"bench: the lab has {len(agents)} agents, {wanted} wanted; restart it with more, e.g.\n"
            f"  scripts/pbx-lab down\n"
            f"  ACB_LAB_AGENTS=\"$(seq -s ' ' 1001 {1000 + wanted})\" scripts/pbx-lab up"
        )
    return agents[:wanted]


async def main(args: argparse.Namespace) -> list[Row]:
    info = lab_env()
    agents = lab_agents(info, args.agents or (10 if args.quick else None))
    print(
        f"{len(agents)} agents; load average at start {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; "
        f"contacts hang up {args.talk_s} s after answering",
        flush=True,
    )
    ari_info = info["ari"]
    rows: list[Row] = []
    async with AriClient(
        AriSettings(ari_info["url"], ari_info["user"], ari_info["password"], "acb-bench")
    ) as ari:
        for per_agent in (1, args.per_agent):
            print(f"case: {per_agent} per agent", flush=True)
            rows += await run_case(info, ari, agents, per_agent, args.talk_s)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10 agents (default: every agent of the lab)")
    parser.add_argument("--agents", type=int, help="how many of the lab's agents take callbacks")
    parser.add_argument("--per-agent", type=int, default=3, help="callbacks per agent in the queued case")
    parser.add_argument("--talk-s", type=int, default=3, help="seconds a contact talks before hanging up")
    print("\n" + markdown(HEADER, asyncio.run(main(parser.parse_args()))))
