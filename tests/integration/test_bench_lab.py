"""The benchmark's floor and AMI listeners on the real lab: bench/floor.py places agent-first calls
(each agent rung once, then its contact through the outbound context) and says when all ended; the
listener logged in as the daemon's documented user hears only the events its filter names, the
unfiltered one far more of the same calls."""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lab import invites

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
from ami_counts import DOCUMENTED, UNFILTERED, AmiCounts  # noqa: E402 - needs the sys.path entry above
from floor import FloorPlan  # noqa: E402

pytestmark = pytest.mark.lab
MANAGER_CONF = BENCH.parent / "scripts" / "lab" / "asterisk" / "manager.conf"


def documented_names() -> set[str]:
    """The event names the daemon's user admits (its section of the lab's manager.conf)."""
    section = MANAGER_CONF.read_text().split("[{{ami_user}}]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"eventfilter\(action\(include\),name\((\w+)\)\)", section))


@dataclass(frozen=True)
class Call:
    agent: str
    number: str
    name: str


def floor_plan(lab: dict[str, Any], agents: list[str], due: float) -> FloorPlan:
    """One call per agent; 20101...: the contact answers and hangs up after 1 s."""
    tag = "".join(random.choices("0123456789", k=4))
    calls = [Call(agent, f"20101{tag}{n:04d}", f"Floor {n}") for n, agent in enumerate(agents)]
    return FloorPlan.on_lab(lab, calls, due, ring_timeout_s=20)


async def run_floor(plan: FloorPlan, folder: Path) -> None:
    """bench/floor.py as bench/calls.py runs it: ready, then done, then SIGTERM."""
    path = folder / "plan.json"
    path.write_text(plan.to_json())
    environment = os.environ | {"PYTHONPATH": str(BENCH.parent)}
    floor = await asyncio.create_subprocess_exec(
        sys.executable, str(BENCH / "floor.py"), str(path), stdout=asyncio.subprocess.PIPE, env=environment
    )
    try:
        assert floor.stdout is not None
        assert await asyncio.wait_for(floor.stdout.readline(), 15) == b"ready\n"
        assert await asyncio.wait_for(floor.stdout.readline(), 60) == b"done\n"
    finally:
        floor.terminate()
        await floor.wait()


async def test_the_floor_rings_each_agent_then_its_contact_and_the_listeners_count_those_calls(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    agents = sorted(lab["agents"])[:2]
    due = time.time() + 4
    plan = floor_plan(lab, agents, due)
    async with AmiCounts(lab).counting() as received:
        await run_floor(plan, tmp_path)
        await asyncio.sleep(0.5)  # the last hang-up's events

    contacts = {i.user: i.time for i in invites.read(Path(lab["contacts"]["invite_dir"]))}
    for call in plan.calls:
        rung = [i.time for i in invites.read(Path(lab["agents"][call.agent]["invite_dir"]), call.agent)]
        assert len([at for at in rung if at >= due]) == 1, f"{call.agent} rung {rung} (due {due})"
        assert contacts[call.number] > max(rung)
    documented, unfiltered = received[DOCUMENTED], received[UNFILTERED]
    assert set(documented) <= documented_names() and "Hangup" in documented
    assert "VarSet" in unfiltered and unfiltered.total() > 3 * documented.total()
