"""The queue guard: which memberships a callback pauses and unpauses, and what a resume takes over."""

from __future__ import annotations

import asyncio

from asterisk_cb.telephony.ami import AmiUnavailable
from asterisk_cb.telephony.ami_events import QueueMember
from asterisk_cb.telephony.queue_guard import PAUSE_REASON, Pause, PauseGate, QueueGuard, leftovers, to_pause


def member(queue: str, paused: bool = False, reason: str = "", interface: str = "PJSIP/1001") -> QueueMember:
    return QueueMember(queue, interface, interface, "", "NOT_INUSE", paused, reason)


class FakeAmi:
    """Records QueuePause actions; ``failing`` interfaces are refused as by a lost AMI link."""

    def __init__(self, members: list[QueueMember], failing: tuple[str, ...] = ()) -> None:
        self.members = members
        self.failing = failing
        self.actions: list[tuple[str, str, bool, str]] = []

    async def queue_pause(self, interface: str, paused: bool, *, queue: str = "", reason: str = "") -> None:
        if interface in self.failing:
            raise AmiUnavailable("not logged in")
        self.actions.append((queue, interface, paused, reason))

    async def queue_members(self, queue: str = "") -> list[QueueMember]:
        return [m for m in self.members if m.queue == queue or not queue]


def test_only_memberships_nobody_paused_are_paused() -> None:
    members = [member("support"), member("sales", paused=True, reason="lunch"), member("failover")]
    assert to_pause(members) == (Pause("support", "PJSIP/1001"), Pause("failover", "PJSIP/1001"))


def test_leftovers_are_the_callback_pauses_only() -> None:
    members = [
        member("support", paused=True, reason=PAUSE_REASON),
        member("sales", paused=True, reason="lunch"),
    ]
    members.append(member("failover", paused=False, reason=PAUSE_REASON))  # unpaused already
    assert leftovers(members) == (Pause("support", "PJSIP/1001"),)


async def test_hold_then_release_lifts_exactly_what_was_paused() -> None:
    ami = FakeAmi([])
    guard = QueueGuard(ami)
    held = await guard.hold([member("support"), member("sales", paused=True, reason="lunch")])
    await guard.release(held)
    assert ami.actions == [
        ("support", "PJSIP/1001", True, PAUSE_REASON),
        ("support", "PJSIP/1001", False, ""),
    ]


async def test_a_pause_ami_refused_is_not_released_later() -> None:
    ami = FakeAmi([], failing=("PJSIP/1002",))
    guard = QueueGuard(ami)
    held = await guard.hold([member("support"), member("support", interface="PJSIP/1002")])
    assert held == (Pause("support", "PJSIP/1001"),)


async def test_a_resumed_callback_takes_over_its_previous_holders_pauses() -> None:
    ami = FakeAmi([])
    members = [
        member("support", paused=True, reason=PAUSE_REASON),
        member("sales"),
        member("x", True, "lunch"),
    ]
    live = await QueueGuard(ami).take_over(members, live=True)
    lost = await QueueGuard(ami).take_over(members, live=False)
    assert live == (Pause("support", "PJSIP/1001"), Pause("sales", "PJSIP/1001"))
    assert lost == (Pause("support", "PJSIP/1001"),)  # lifted when the run ends; nothing new paused
    assert ami.actions == [("sales", "PJSIP/1001", True, PAUSE_REASON)]


async def test_runs_pause_together_and_the_sweep_waits_for_them() -> None:
    """``PauseGate``: runs of one daemon pausing at once do not wait for each other (a plain lock made
    10 callbacks due at once ring one after another); the sweep's check-and-lift waits for them."""
    gate, journal = PauseGate(), []

    async def run(name: str) -> None:
        async with gate.holding():
            journal.append(f"{name} in")
            await asyncio.sleep(0.05)
            journal.append(f"{name} out")

    async def sweep() -> None:
        await asyncio.sleep(0.01)  # the runs are inside by now
        async with gate.sweeping():
            journal.append("sweep")

    await asyncio.gather(run("a"), run("b"), sweep())
    assert journal[:2] == ["a in", "b in"]  # together
    assert journal[-1] == "sweep"  # after both were out


class SlowAmi(FakeAmi):
    """Each QueuePause takes a while; notes how many were in flight at once."""

    def __init__(self, members: list[QueueMember]) -> None:
        super().__init__(members)
        self.in_flight = self.most_in_flight = 0

    async def queue_pause(self, interface: str, paused: bool, *, queue: str = "", reason: str = "") -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.02)
        self.in_flight -= 1
        await super().queue_pause(interface, paused, queue=queue, reason=reason)


async def test_an_agent_s_memberships_are_paused_and_lifted_at_once_not_one_after_another() -> None:
    """The pauses all precede the agent's ring (``hold`` returns once every answer came), but the
    ring waits for one AMI round trip, not one per queue the agent is in."""
    ami = SlowAmi([])
    guard = QueueGuard(ami)
    held = await guard.hold([member("support"), member("sales"), member("failover")])
    assert (len(held), ami.most_in_flight, ami.in_flight) == (3, 3, 0)
    ami.most_in_flight = 0
    await guard.release(held)
    assert (ami.most_in_flight, len(ami.actions)) == (3, 6)
