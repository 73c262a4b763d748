"""Lifts the queue pauses no callback holds: each "callback" pause of an agent that has no call lock.

Where they come from: a daemon that died mid-callback; AMI down when a run ended and should have lifted
its pauses; a QueuePause whose answer was lost and that the run's end could not look up, or a lost
unpause. An agent left paused silently misses every queue call and its own callbacks see it PAUSED,
so the sweep runs on every AMI (re)connect (the daemon wires it to the resync) and, as a daemon
component, every ``[daemon] pause_sweep`` (60 s).

Whose pause it is: the call locks in Redis (``Store.agents_in_calls``) are the truth across every
daemon on the Redis. A run takes its agent's lock before it pauses and lifts its pauses before it gives
the lock back (``ClaimRunner.close``), so a "callback" pause of an agent whose lock holds belongs to a
live run, this daemon's or another's, and stays; one of an agent without a lock is nobody's. Only the
memberships of agents this daemon is configured with are swept: it cannot ask the lock of an agent it
does not know (another daemon's [agents] may list it).

Order, and the race it leaves: QueueStatus first, then the locks, then the lift.

* A run whose pause QueueStatus showed took its lock before pausing: the later lock read sees it held.
  (Reading the locks first would let a run lock and pause between the two reads, and lose its pause.)
* A run that takes its lock after the lock read could pause before the lift and have that pause lifted.
  For that its agent's membership must have been unpaused meanwhile (a run pauses only what is not
  paused), i.e. an earlier run ended in those same milliseconds. In this process it cannot happen: the
  lock read and the lift run under ``QueueGuard.pausing``, which ``hold`` takes as well. A run of
  another daemon can hit it: its agent is then guarded by the queue's ``ringinuse=no`` only, for that
  one call. Closing it would mean taking the agent's lock for the lift, and a due callback would wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from redis.exceptions import RedisError

from asterisk_cb.telephony.ami import AmiError
from asterisk_cb.telephony.availability import AvailabilityView
from asterisk_cb.telephony.queue_guard import Pause, QueueGuard

log = logging.getLogger(__name__)


class CallLocksView(Protocol):
    """What the sweep needs of the store (``Store`` has it)."""

    async def agents_in_calls(self, agents: Sequence[str]) -> set[str]: ...


def owners(pauses: Sequence[Pause], view: AvailabilityView) -> dict[Pause, str]:
    """The configured agent each pause is a membership of; pauses of no configured agent are left out."""
    agent_of = {
        (member.queue, member.interface): agent
        for agent in view.agents
        for member in view.memberships_of(agent)
    }
    found = ((pause, agent_of.get((pause.queue, pause.interface))) for pause in pauses)
    return {pause: agent for pause, agent in found if agent is not None}


class PauseSweep:
    """A daemon component (auxiliary: a failure is logged and it is restarted); ``sweep`` runs once."""

    name = "pause-sweep"
    essential = False

    def __init__(
        self,
        guard: QueueGuard,
        view: AvailabilityView,
        locks: CallLocksView,
        every_s: float,
    ) -> None:
        self.guard = guard
        self.view = view
        self.locks = locks
        self.every_s = every_s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await self.sweep()

    async def sweep(self) -> tuple[Pause, ...]:
        """Lift the "callback" pauses of agents in no call; returns them (an unpause AMI refused is
        logged). Whatever cannot be read (AMI or Redis down) leaves every pause until the next sweep."""
        try:
            found = owners(await self.guard.callback_pauses(), self.view)
        except AmiError as error:
            log.warning("cannot look for callback pauses to lift: %s", error)
            return ()
        if not found:
            return ()
        async with self.guard.pausing.sweeping():
            try:
                busy = await self.locks.agents_in_calls(sorted(set(found.values())))
            except RedisError as error:
                log.warning("cannot tell which agents are in calls; callback pauses stay: %s", error)
                return ()
            lifted = tuple(pause for pause, agent in found.items() if agent not in busy)
            await self.guard.release(lifted)
        if lifted:
            names = ", ".join(f"{pause.interface} in {pause.queue}" for pause in lifted)
            log.info("lifted %d callback pause(s) no callback holds: %s", len(lifted), names)
        return lifted
