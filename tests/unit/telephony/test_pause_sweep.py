"""The pause sweep: which "callback" pauses it lifts (agents holding no call lock), in which order it
reads, and that a run of this daemon cannot pause between its lock check and its lift."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.exceptions import ConnectionError as RedisConnectionError
from test_queue_guard import FakeAmi, member

from asterisk_cb.telephony.ami import AmiUnavailable
from asterisk_cb.telephony.ami_events import QueueMember
from asterisk_cb.telephony.availability import AgentSpec, AvailabilityView
from asterisk_cb.telephony.pause_sweep import PauseSweep
from asterisk_cb.telephony.queue_guard import PAUSE_REASON, Pause, QueueGuard

AGENTS = [AgentSpec(agent, devices=(f"PJSIP/{agent}",)) for agent in ("1001", "1002", "1003")]


def ours(queue: str, interface: str) -> QueueMember:
    return member(queue, paused=True, reason=PAUSE_REASON, interface=interface)


class Locks:
    """The agents whose call lock holds; logs each read into ``log`` (shared with the AMI's)."""

    def __init__(self, log: list[str], busy: set[str] | None = None, *, down: bool = False) -> None:
        self.log = log
        self.busy = busy or set()
        self.down = down
        self.asked: list[list[str]] = []

    async def agents_in_calls(self, agents: Sequence[str]) -> set[str]:
        self.log.append("locks")
        self.asked.append(list(agents))
        if self.down:
            raise RedisConnectionError("Redis down")
        return self.busy & set(agents)


class LoggingAmi(FakeAmi):
    def __init__(self, members: list[QueueMember], log: list[str]) -> None:
        super().__init__(members)
        self.log = log

    async def queue_members(self, queue: str = "") -> list[QueueMember]:
        self.log.append("queuestatus")
        return await super().queue_members(queue)

    async def queue_pause(self, interface: str, paused: bool, *, queue: str = "", reason: str = "") -> None:
        self.log.append(f"{'pause' if paused else 'unpause'} {interface}")
        await super().queue_pause(interface, paused, queue=queue, reason=reason)


def _sweep(members: list[QueueMember], locks: Locks) -> tuple[PauseSweep, LoggingAmi]:
    ami = LoggingAmi(members, locks.log)
    view = AvailabilityView.of(AGENTS)
    view.replace_members(members)
    return PauseSweep(QueueGuard(ami), view, locks, every_s=60), ami


async def test_lifts_the_callback_pauses_of_agents_in_no_call_only() -> None:
    members = [
        ours("support", "PJSIP/1001"),  # its callback is live: stays
        ours("support", "PJSIP/1002"),  # nobody's: lifted
        ours("sales", "PJSIP/1002"),
        member("support", paused=True, reason="lunch", interface="PJSIP/1003"),  # the agent's own
        ours("support", "PJSIP/9999"),  # of no configured agent: its lock cannot be asked
    ]
    sweep, ami = _sweep(members, Locks([], busy={"1001"}))
    lifted = await sweep.sweep()
    assert lifted == (Pause("support", "PJSIP/1002"), Pause("sales", "PJSIP/1002"))
    assert ami.actions == [("support", "PJSIP/1002", False, ""), ("sales", "PJSIP/1002", False, "")]


async def test_reads_queuestatus_before_the_locks_and_only_the_owners_locks() -> None:
    log: list[str] = []
    locks = Locks(log)
    sweep, _ = _sweep([ours("support", "PJSIP/1002"), member("support", interface="PJSIP/1001")], locks)
    await sweep.sweep()
    assert log == ["queuestatus", "locks", "unpause PJSIP/1002"]
    assert locks.asked == [["1002"]]


async def test_nothing_to_lift_asks_redis_nothing() -> None:
    locks = Locks([])
    sweep, ami = _sweep([member("support", paused=True, reason="lunch", interface="PJSIP/1001")], locks)
    assert await sweep.sweep() == ()
    assert (locks.asked, ami.actions) == ([], [])


async def test_redis_or_ami_down_lifts_nothing_and_does_not_raise() -> None:
    redis_down, ami = _sweep([ours("support", "PJSIP/1002")], Locks([], down=True))
    assert await redis_down.sweep() == ()
    assert ami.actions == []

    class DownAmi(LoggingAmi):
        async def queue_members(self, queue: str = "") -> list[QueueMember]:
            raise AmiUnavailable("not logged in")

    view = AvailabilityView.of(AGENTS)
    assert await PauseSweep(QueueGuard(DownAmi([], [])), view, Locks([]), every_s=60).sweep() == ()


async def test_a_run_of_this_daemon_cannot_pause_between_the_lock_check_and_the_lift() -> None:
    """The earlier call on 1002 just ended (its membership shows unpaused to the next run); the sweep
    read its "callback" pause before that and the lock as free. A run that takes 1002's lock now
    pauses after the sweep's lift, so its pause stays."""
    log: list[str] = []
    checking, go_on = asyncio.Event(), asyncio.Event()

    class SlowLocks(Locks):
        async def agents_in_calls(self, agents: Sequence[str]) -> set[str]:
            checking.set()
            await go_on.wait()
            return await super().agents_in_calls(agents)

    sweep, _ = _sweep([ours("support", "PJSIP/1002")], SlowLocks(log))
    sweeping = asyncio.create_task(sweep.sweep())
    await checking.wait()
    holding = asyncio.create_task(sweep.guard.hold([member("support", interface="PJSIP/1002")]))
    await asyncio.sleep(0.01)
    go_on.set()
    await asyncio.gather(sweeping, holding)
    assert log == ["queuestatus", "locks", "unpause PJSIP/1002", "pause PJSIP/1002"]


async def test_runs_every_interval_as_a_component() -> None:
    members = [ours("support", "PJSIP/1002")]
    sweep, ami = _sweep(members, Locks([]))
    sweep.every_s = 0.01
    running = asyncio.create_task(sweep.run())
    try:
        async with asyncio.timeout(2):
            while len(ami.actions) < 2:  # noqa: ASYNC110 - the sweep runs on its own task
                await asyncio.sleep(0.01)
    finally:
        running.cancel()
    assert ami.actions[:2] == [("support", "PJSIP/1002", False, "")] * 2  # the fake keeps it paused
    assert (sweep.name, sweep.essential) == ("pause-sweep", False)
