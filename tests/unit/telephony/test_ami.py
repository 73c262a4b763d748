"""AMI against transcripts recorded off the lab's Asterisk 22: parsing, login, seeding, reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
from ami_fake import FakeAmi, block_headers, recorded_reply, transcript_blocks, unsolicited_events

from asterisk_cb.telephony.ami import AmiConnection, AmiError, AmiSettings, AmiSnapshot, AmiUnavailable
from asterisk_cb.telephony.ami_events import (
    AgentLogin,
    AgentLogoff,
    AmiEvent,
    DeviceStateChange,
    FullyBooted,
    QueueMemberEvent,
    QueueMemberRemoved,
    parse_ami_event,
)
from asterisk_cb.telephony.backoff import Backoff


def _parsed(transcript: str) -> list[AmiEvent]:
    events = (parse_ami_event(block_headers(block)) for block in transcript_blocks(transcript))
    return [event for event in events if event is not None]


async def _until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the condition is set by other tasks
            await asyncio.sleep(0.01)


# --- parsing ---------------------------------------------------------------------------------------


def test_queue_member_pause_carries_reason_and_state_interface() -> None:
    pauses = [e for e in _parsed("ami_queue.txt") if e.name == "QueueMemberPause"]
    assert isinstance(pauses[0], QueueMemberEvent)
    member = pauses[0].member
    assert (member.queue, member.interface, member.state_interface, member.member_name) == (
        "support",
        "Local/2001@acb-rec/n",
        "Custom:acb-agent2001",
        "agent-2001",
    )
    assert (member.paused, member.paused_reason, member.device_state) == (True, "callback", "NOT_INUSE")
    assert not pauses[1].member.paused


def test_queue_member_status_maps_the_numeric_status_to_a_state_word() -> None:
    statuses = [e.member.device_state for e in _parsed("ami_queue.txt") if e.name == "QueueMemberStatus"]
    assert statuses == ["NOT_INUSE", "INUSE"]


def test_every_event_kind_we_use_is_in_the_recordings() -> None:
    names = {
        e.name for e in _parsed("ami_queue.txt") + _parsed("ami_agent_pool.txt") + _parsed("ami_seed.txt")
    }
    assert names >= {
        "DeviceStateChange",
        "QueueMemberAdded",
        "QueueMemberStatus",
        "QueueMemberPause",
        "QueueMemberRemoved",
        "QueueMember",
        "FullyBooted",
        "AgentLogin",
        "AgentLogoff",
    }
    removed = next(e for e in _parsed("ami_queue.txt") if isinstance(e, QueueMemberRemoved))
    assert (removed.queue, removed.interface) == ("support", "Local/2001@acb-rec/n")


def test_agent_pool_login_and_logoff() -> None:
    """app_agent_pool is not loaded in the lab by default; this transcript was recorded with it loaded."""
    login = next(e for e in _parsed("ami_agent_pool.txt") if isinstance(e, AgentLogin))
    logoff = next(e for e in _parsed("ami_agent_pool.txt") if isinstance(e, AgentLogoff))
    assert (login.agent, login.device) == ("1001", "Local/agentlogin@acb-rec")
    assert logoff.agent == "1001"


def test_events_we_do_not_use_are_ignored() -> None:
    assert parse_ami_event({"Event": "Newchannel", "Channel": "PJSIP/1001-00000001"}) is None


# --- connection ------------------------------------------------------------------------------------


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmi]:
    fake = FakeAmi()
    fake.reply("DeviceStateList", recorded_reply("ami_seed.txt", "seed-0"))
    fake.reply("QueueStatus", recorded_reply("ami_seed.txt", "seed-1"))
    fake.reply("QueuePause", recorded_reply("ami_queue.txt", "queue-2"))
    await fake.start()
    yield fake
    await fake.stop_listening()


def _settings(fake: FakeAmi, secret: str = "acb-lab-ami") -> AmiSettings:
    return AmiSettings(
        username="acb",
        secret=secret,
        port=fake.port,
        action_timeout_s=2,
        backoff=Backoff(initial_s=0.05, factor=2, cap_s=0.2, jitter=0.5),
    )


@pytest.fixture
async def ami(fake_ami: FakeAmi) -> AsyncIterator[AmiConnection]:
    connection = AmiConnection(_settings(fake_ami))
    yield connection
    await connection.stop()


async def test_login_seeds_device_states_and_queue_members(ami: AmiConnection) -> None:
    snapshots: list[AmiSnapshot] = []
    ami.on_resync(snapshots.append)
    await ami.start()
    await ami.wait_ready(5)
    [snapshot] = snapshots
    devices = {d.device: d.state for d in snapshot.device_states}
    assert devices["PJSIP/lab-caller"] == "UNAVAILABLE"
    assert len(devices) == len(recorded_reply("ami_seed.txt", "seed-0")) - 2  # minus the ack and Complete
    memberships = {(m.queue, m.interface) for m in snapshot.members}
    assert ("failover", "PJSIP/1003") in memberships
    assert ("support", "PJSIP/1001") in memberships
    assert ami.health.snapshot().connected


async def test_queue_names_are_every_queue_of_a_recorded_queuestatus(ami: AmiConnection) -> None:
    await ami.start()
    await ami.wait_ready(5)
    assert await ami.queue_names() == ["failover", "support"]


async def _first_seed(ami: AmiConnection) -> AmiSnapshot:
    """Log in, take the seed, log out."""
    snapshots: list[AmiSnapshot] = []
    ami.on_resync(snapshots.append)
    await ami.start()
    try:
        await ami.wait_ready(5)
    finally:
        await ami.stop()
    return snapshots[0]


async def test_a_watched_device_the_cache_lacks_is_read_with_getvar(fake_ami: FakeAmi) -> None:
    """DeviceStateList reads Asterisk's cache, which lacks a device that never changed state since
    Asterisk started: the seed asks DEVICE_STATE() for each such device an agent rings, and only those."""
    fake_ami.reply("Getvar", recorded_reply("ami_getvar.txt", "state-1"))
    ami = AmiConnection(_settings(fake_ami), watched_devices=lambda: ["PJSIP/1001", "IAX2/nosuch"])
    devices = {d.device: d.state for d in (await _first_seed(ami)).device_states}
    assert devices["IAX2/nosuch"] == "INVALID"
    assert devices["PJSIP/1001"] == "UNAVAILABLE"  # from the cache, not asked again
    asked = [a["Variable"] for a in fake_ami.received if a["Action"] == "Getvar"]
    assert asked == ["DEVICE_STATE(IAX2/nosuch)"]


async def test_agent_pool_logins_are_seeded_only_when_the_admin_uses_it(fake_ami: FakeAmi) -> None:
    """Recorded with app_agent_pool loaded: agent 1001 logged in on a Local channel, 1002 logged off."""
    fake_ami.reply("Agents", recorded_reply("ami_agents.txt", "agents-0"))
    for agent_pool, expected in ((False, None), (True, {"1001": "Local/agentlogin@acb-rec"})):
        ami = AmiConnection(replace(_settings(fake_ami), agent_pool=agent_pool))
        assert (await _first_seed(ami)).agent_logins == expected
    assert [a["Action"] for a in fake_ami.received].count("Agents") == 1


async def test_seed_waits_for_fully_booted_when_asterisk_is_still_booting(
    ami: AmiConnection, fake_ami: FakeAmi
) -> None:
    fake_ami.booted = False
    await ami.start()
    await _until(lambda: fake_ami.logins == 1)
    await asyncio.sleep(0.2)
    assert not ami.health.connected
    assert [a["Action"] for a in fake_ami.received] == ["Login"]
    await fake_ami.push(unsolicited_events("ami_seed.txt", "FullyBooted"))
    await ami.wait_ready(5)
    assert [a["Action"] for a in fake_ami.received] == ["Login", "DeviceStateList", "QueueStatus"]


async def test_events_that_race_the_seed_are_dispatched_after_it(
    ami: AmiConnection, fake_ami: FakeAmi
) -> None:
    racing = unsolicited_events("ami_queue.txt", "QueueMemberPause")[:1]
    fake_ami.reply("DeviceStateList", racing + recorded_reply("ami_seed.txt", "seed-0"))
    order: list[str] = []
    ami.on_resync(lambda _snapshot: order.append("resync"))
    ami.subscribe(lambda event: order.append(event.name), QueueMemberEvent)
    await ami.start()
    await _until(lambda: len(order) == 2)
    assert order == ["resync", "QueueMemberPause"]


async def test_pushed_events_arrive_typed_and_in_order(ami: AmiConnection, fake_ami: FakeAmi) -> None:
    seen: list[AmiEvent] = []
    ami.subscribe(seen.append, QueueMemberEvent, QueueMemberRemoved, DeviceStateChange)
    await ami.start()
    await ami.wait_ready(5)
    seen.clear()
    blocks = unsolicited_events("ami_queue.txt", "QueueMemberAdded", "QueueMemberPause", "QueueMemberRemoved")
    await fake_ami.push(blocks)
    await _until(lambda: len(seen) == 4)
    assert [e.name for e in seen] == [
        "QueueMemberAdded",
        "QueueMemberPause",
        "QueueMemberPause",
        "QueueMemberRemoved",
    ]


async def test_queue_pause_sends_reason_callback(ami: AmiConnection, fake_ami: FakeAmi) -> None:
    await ami.start()
    await ami.wait_ready(5)
    await ami.queue_pause("PJSIP/1001", True, queue="support")
    sent = fake_ami.received[-1]
    assert {k: sent[k] for k in ("Action", "Interface", "Paused", "Queue", "Reason")} == {
        "Action": "QueuePause",
        "Interface": "PJSIP/1001",
        "Paused": "true",
        "Queue": "support",
        "Reason": "callback",
    }


async def test_refused_action_is_an_ami_error_with_asterisks_message(
    ami: AmiConnection, fake_ami: FakeAmi
) -> None:
    fake_ami.reply("QueuePause", recorded_reply("ami_queue.txt", "queue-5"))
    await ami.start()
    await ami.wait_ready(5)
    with pytest.raises(AmiError, match="Interface not found"):
        await ami.queue_pause("PJSIP/9999", True)


async def test_action_while_not_logged_in_fails_fast(ami: AmiConnection) -> None:
    with pytest.raises(AmiUnavailable, match="not logged in"):
        await ami.queue_pause("PJSIP/1001", True)


async def test_restart_reconnects_logs_in_again_and_reseeds(ami: AmiConnection, fake_ami: FakeAmi) -> None:
    snapshots: list[AmiSnapshot] = []
    ami.on_resync(snapshots.append)
    booted: list[AmiEvent] = []
    ami.subscribe(booted.append, FullyBooted)
    await ami.start()
    await ami.wait_ready(5)
    port = fake_ami.port
    await fake_ami.stop_listening()
    await _until(lambda: not ami.health.connected)
    await asyncio.sleep(0.3)  # a few refused attempts while "Asterisk" is down
    await fake_ami.start(port)
    await _until(lambda: len(snapshots) == 2)
    health = ami.health.snapshot()
    assert (health.connected, health.reconnects, fake_ami.logins) == (True, 1, 2)
    assert len(booted) == 2


async def test_asterisk_restart_shutdown_event_is_named_in_health(
    ami: AmiConnection, fake_ami: FakeAmi
) -> None:
    await ami.start()
    await ami.wait_ready(5)
    await fake_ami.push(unsolicited_events("ami_shutdown.txt", "Shutdown"))
    await _until(lambda: not ami.health.connected)
    assert ami.health.snapshot().last_error == "Asterisk restarting"
    await _until(lambda: ami.health.connected)  # and it came back on its own


async def test_a_silent_link_is_dropped_after_an_unanswered_ping(fake_ami: FakeAmi) -> None:
    fake_ami.reply("Ping", recorded_reply("ami_ping.txt", "ping-0"))
    settings = replace(_settings(fake_ami), ping_interval_s=1, action_timeout_s=0.5)
    ami = AmiConnection(settings)
    await ami.start()
    try:
        await ami.wait_ready(5)
        await _until(lambda: any(a["Action"] == "Ping" for a in fake_ami.received), 3)
        assert ami.health.connected  # answered pings keep it up
        fake_ami.silent = True
        await _until(lambda: not ami.health.connected, 5)
        assert (ami.health.snapshot().last_error or "").startswith("no answer to Ping")
        fake_ami.silent = False
        await _until(lambda: ami.health.connected, 5)
    finally:
        await ami.stop()


async def test_wrong_secret_is_reported_and_retried(fake_ami: FakeAmi) -> None:
    ami = AmiConnection(_settings(fake_ami, secret="wrong"))
    await ami.start()
    try:
        await _until(lambda: sum(a.get("Action") == "Login" for a in fake_ami.received) >= 2)
        health = ami.health.snapshot()
        assert not health.connected
        assert health.last_error == "login refused: Authentication failed"
    finally:
        await ami.stop()
