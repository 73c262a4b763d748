"""Our AMI link against the lab's real Asterisk 22: seed, queue pause events, restart and reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from asterisk_cb.telephony.ami import AmiConnection, AmiError, AmiSettings, AmiSnapshot
from asterisk_cb.telephony.ami_events import AmiEvent, FullyBooted, QueueMemberEvent
from asterisk_cb.telephony.backoff import Backoff

pytestmark = pytest.mark.lab


@pytest.fixture
async def ami(lab_ami: dict[str, Any]) -> AsyncIterator[AmiConnection]:
    settings = AmiSettings(
        username=lab_ami["user"],
        secret=lab_ami["secret"],
        host=lab_ami["host"],
        port=int(lab_ami["port"]),
        backoff=Backoff(initial_s=0.2, cap_s=2.0),
    )
    connection = AmiConnection(settings)
    yield connection
    await connection.stop()


async def _until(predicate: Callable[[], Any], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the condition is set by the AMI consumer
            await asyncio.sleep(0.05)


async def test_login_seeds_phones_and_queue_members(ami: AmiConnection) -> None:
    snapshots: list[AmiSnapshot] = []
    ami.on_resync(snapshots.append)
    await ami.start()
    await ami.wait_ready(10)
    devices = {d.device: d.state for d in snapshots[0].device_states}
    assert devices["PJSIP/1001"] == "NOT_INUSE"  # the lab's phones are registered and idle
    members = {(m.queue, m.interface) for m in snapshots[0].members}
    assert {("support", "PJSIP/1001"), ("failover", "PJSIP/1003")} <= members


async def test_queue_pause_with_reason_callback_comes_back_as_event(ami: AmiConnection) -> None:
    seen: list[AmiEvent] = []
    ami.subscribe(seen.append, QueueMemberEvent)
    await ami.start()
    await ami.wait_ready(10)

    def pause_of_1002(paused: bool) -> Callable[[], bool]:
        return lambda: any(
            e.name == "QueueMemberPause" and e.member.interface == "PJSIP/1002" and e.member.paused is paused
            for e in seen
            if isinstance(e, QueueMemberEvent)
        )

    await ami.queue_pause("PJSIP/1002", True, queue="support", reason="callback")
    try:
        await _until(pause_of_1002(True), 10)
        paused = [m for m in await ami.queue_members("support") if m.interface == "PJSIP/1002"]
        assert [(m.paused, m.paused_reason) for m in paused] == [(True, "callback")]
    finally:
        await ami.queue_pause("PJSIP/1002", False, queue="support", reason="")
    await _until(pause_of_1002(False), 10)


async def test_pause_of_an_unknown_interface_is_refused(ami: AmiConnection) -> None:
    await ami.start()
    await ami.wait_ready(10)
    with pytest.raises(AmiError, match="Interface not found"):
        await ami.queue_pause("PJSIP/acb-nobody", True)


@pytest.mark.slow
async def test_asterisk_restart_reconnects_and_reseeds(
    ami: AmiConnection, pbx_lab_run: Callable[..., str]
) -> None:
    snapshots: list[AmiSnapshot] = []
    ami.on_resync(snapshots.append)
    booted: list[AmiEvent] = []
    ami.subscribe(booted.append, FullyBooted)
    await ami.start()
    await ami.wait_ready(10)
    pbx_lab_run("cli", "core restart now")
    await _until(lambda: not ami.health.connected, 15)
    await _until(lambda: ami.health.connected and len(snapshots) == 2, 60)
    assert ami.health.snapshot().reconnects == 1
    assert len(booted) >= 2
    assert any(m.queue == "support" for m in snapshots[1].members)
