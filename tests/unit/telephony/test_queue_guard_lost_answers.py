"""A QueuePause whose answer is lost may have been carried out: the run's end looks it up in QueueStatus
and lifts it only when it shows paused with reason "callback"; what escapes the run is the sweep's.

On the fake AMI (real TCP, panoramisk, our AmiConnection): only a fake can lose an answer. The replies
are the lab Asterisk 22's (fixtures/ami_pause.txt): QueueStatus shows PJSIP/1001 paused "callback",
PJSIP/1002 paused "lunch" (the agent's own) and PJSIP/1003 not paused. The normal path on the lab:
tests/e2e/test_callback_queue_pause.py and test_daemon_process.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from ami_fake import FakeAmi, recorded_reply
from test_queue_guard import member

from asterisk_cb.telephony.ami import AmiConnection, AmiSettings
from asterisk_cb.telephony.availability import AgentSpec, AvailabilityView
from asterisk_cb.telephony.backoff import Backoff
from asterisk_cb.telephony.pause_sweep import PauseSweep
from asterisk_cb.telephony.queue_guard import PAUSE_REASON, Pause, QueueGuard

ANSWER_TIMEOUT_S = 0.3


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmi]:
    fake = FakeAmi()
    fake.reply("DeviceStateList", recorded_reply("ami_seed.txt", "seed-0"))
    fake.reply("QueueStatus", recorded_reply("ami_pause.txt", "status-1"))
    fake.reply("QueuePause", recorded_reply("ami_pause.txt", "pause-1"))
    await fake.start()
    yield fake
    await fake.stop_listening()


@pytest.fixture
async def ami(fake_ami: FakeAmi) -> AsyncIterator[AmiConnection]:
    settings = AmiSettings(
        "acb",
        "acb-lab-ami",
        port=fake_ami.port,
        action_timeout_s=ANSWER_TIMEOUT_S,
        backoff=Backoff(initial_s=0.05, factor=2, cap_s=0.2, jitter=0.5),
    )
    connection = AmiConnection(settings)
    await connection.start()
    await connection.wait_ready(5)
    yield connection
    await connection.stop()


def _pauses_sent(fake: FakeAmi) -> list[tuple[str, str, str]]:
    """Each QueuePause that reached "Asterisk": interface, paused, reason."""
    actions = (a for a in fake.received if a.get("Action") == "QueuePause")
    return [(a["Interface"], a["Paused"], a.get("Reason", "")) for a in actions]


def _status_reads(fake: FakeAmi) -> list[str]:
    return [a.get("Queue", "") for a in fake.received if a.get("Action") == "QueueStatus"]


async def _held_maybe(guard: QueueGuard, interface: str) -> tuple[Pause, ...]:
    held = await guard.hold([member("support", interface=interface)])
    assert held == (Pause("support", interface, sure=False),)
    return held


async def test_an_unanswered_pause_that_took_effect_is_lifted_when_the_run_ends(
    ami: AmiConnection, fake_ami: FakeAmi
) -> None:
    guard = QueueGuard(ami)
    fake_ami.lose_next("QueuePause")
    held = await _held_maybe(guard, "PJSIP/1001")
    await guard.release(held)
    assert _pauses_sent(fake_ami) == [("PJSIP/1001", "true", PAUSE_REASON), ("PJSIP/1001", "false", "")]
    assert _status_reads(fake_ami)[-1] == "support"  # looked up in its queue before the unpause


async def test_a_pause_the_agent_set_meanwhile_is_not_lifted(ami: AmiConnection, fake_ami: FakeAmi) -> None:
    guard = QueueGuard(ami)
    fake_ami.lose_next("QueuePause")
    held = await _held_maybe(guard, "PJSIP/1002")  # QueueStatus shows it paused "lunch"
    await guard.release(held)
    assert _pauses_sent(fake_ami) == [("PJSIP/1002", "true", PAUSE_REASON)]


async def test_an_unanswered_pause_that_never_took_effect_is_not_unpaused(
    ami: AmiConnection, fake_ami: FakeAmi
) -> None:
    guard = QueueGuard(ami)
    fake_ami.lose_next("QueuePause")
    held = await _held_maybe(guard, "PJSIP/1003")  # QueueStatus shows it not paused
    await guard.release(held)
    assert _pauses_sent(fake_ami) == [("PJSIP/1003", "true", PAUSE_REASON)]


async def test_a_link_dropped_after_the_pause_went_out_is_looked_up_after_the_reconnect(
    ami: AmiConnection, fake_ami: FakeAmi
) -> None:
    guard = QueueGuard(ami)
    fake_ami.lose_next("QueuePause", drop=True)
    held = await _held_maybe(guard, "PJSIP/1001")
    await ami.wait_ready(5)  # logged in and seeded again
    await guard.release(held)
    assert _pauses_sent(fake_ami) == [("PJSIP/1001", "true", PAUSE_REASON), ("PJSIP/1001", "false", "")]
    assert fake_ami.logins == 2


async def test_a_refused_pause_is_neither_held_nor_looked_up(ami: AmiConnection, fake_ami: FakeAmi) -> None:
    fake_ami.reply("QueuePause", recorded_reply("ami_pause.txt", "pause-3"))  # Interface not found
    guard = QueueGuard(ami)
    reads = len(_status_reads(fake_ami))
    held = await guard.hold([member("support", interface="PJSIP/1011")])
    await guard.release(held)
    assert held == ()
    assert len(_status_reads(fake_ami)) == reads


class NoCalls:
    """No agent holds a call lock."""

    async def agents_in_calls(self, agents: Sequence[str]) -> set[str]:
        return set()


async def test_a_pause_the_run_could_not_look_up_is_lifted_by_the_sweep_once_ami_is_back(
    ami: AmiConnection, fake_ami: FakeAmi
) -> None:
    guard = QueueGuard(ami)
    fake_ami.lose_next("QueuePause", drop=True)
    held = await _held_maybe(guard, "PJSIP/1001")
    await guard.release(held)  # AMI still reconnecting: nothing can be read, nothing is lifted
    assert _pauses_sent(fake_ami) == [("PJSIP/1001", "true", PAUSE_REASON)]

    view = AvailabilityView.of([AgentSpec("1001", devices=("PJSIP/1001",))])
    view.set_member(member("support", paused=True, reason=PAUSE_REASON, interface="PJSIP/1001"))
    await ami.wait_ready(5)
    lifted = await PauseSweep(guard, view, NoCalls(), every_s=60).sweep()
    assert lifted == (Pause("support", "PJSIP/1001"),)
    assert _pauses_sent(fake_ami)[-1] == ("PJSIP/1001", "false", "")
