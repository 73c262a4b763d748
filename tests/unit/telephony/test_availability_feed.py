"""The view kept current through the real AMI adapter: a fake AMI replaying recordings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ami_fake import FakeAmi, recorded_reply, unsolicited_events

from asterisk_cb.telephony.ami import AmiConnection, AmiSettings
from asterisk_cb.telephony.availability import AgentSpec, AvailabilityView, Reason
from asterisk_cb.telephony.availability_feed import feed_from_ami
from asterisk_cb.telephony.backoff import Backoff

NOW = 1_800_000_000.0


async def _until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the condition is set by other tasks
            await asyncio.sleep(0.01)


async def test_ami_seeds_memberships_and_agent_logins_then_follows_queue_events() -> None:
    fake = FakeAmi()
    fake.reply("DeviceStateList", recorded_reply("ami_seed.txt", "seed-0"))
    fake.reply("QueueStatus", recorded_reply("ami_seed.txt", "seed-1"))
    fake.reply("Agents", recorded_reply("ami_agents.txt", "agents-0"))
    await fake.start()
    view = AvailabilityView.of(
        [
            AgentSpec("1001", devices=("PJSIP/1001",)),
            AgentSpec("2001", member_name="agent-2001"),
            AgentSpec("alice", pool_agent="1001"),
        ]
    )
    ami = AmiConnection(
        AmiSettings(
            username="acb", secret="acb-lab-ami", port=fake.port, agent_pool=True, backoff=Backoff(0.05)
        )
    )
    feed_from_ami(view, ami)
    await ami.start()
    try:
        await ami.wait_ready(5)
        assert ("support", "PJSIP/1001") in view.members
        assert view.check("1001", NOW).detail == "no device ready (PJSIP/1001 UNAVAILABLE)"
        assert view.watched_devices() == ["Local/agentlogin@acb-rec", "PJSIP/1001"]
        added_then_paused = unsolicited_events("ami_queue.txt", "QueueMemberAdded", "QueueMemberPause")[:2]
        await fake.push(added_then_paused)
        await _until(lambda: view.check("2001", NOW).reason is Reason.PAUSED)
    finally:
        await ami.stop()
        await fake.stop_listening()
