"""End-to-end wiring: the real executor and scheduler on the lab's Asterisk, SIPp phones and Redis.

The lab is the one `scripts/pbx-lab` starts with the caller's ACB_LAB_* environment (so a second
instance on other ports and another directory works the same way). Each test gets its own Redis
namespace, deleted afterwards, and its own contact numbers, so counting INVITEs per number in the
SIPp logs is exact.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from callback_lab import Lab, pbx_lab, settings_for

from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.scheduler import Scheduler, SchedulerOptions
from asterisk_cb.store import Store
from asterisk_cb.telephony.ari import AriClient, AriSettings
from asterisk_cb.telephony.ari_stream import AriEventStream, StreamSettings
from asterisk_cb.telephony.availability import AgentSpec, AvailabilityView
from asterisk_cb.telephony.availability_feed import feed_from_ari
from asterisk_cb.telephony.executor import CallbackExecutor, ExecutorOptions


@pytest.fixture(scope="session")
def lab_phones(lab_info: dict[str, Any]) -> dict[str, Any]:
    pbx_lab("up")
    return lab_info


@pytest.fixture
async def lab(lab_phones: dict[str, Any]) -> AsyncIterator[Lab]:
    """The executor under a real scheduler, on a fresh namespace; agents 1001 and 1002 configured."""
    info = lab_phones
    ari_info = info["ari"]
    ari = AriClient(AriSettings(ari_info["url"], ari_info["user"], ari_info["password"], ari_info["app"]))
    agents = [AgentSpec(agent, devices=(f"PJSIP/{agent}",)) for agent in ("1001", "1002")]
    view = AvailabilityView.of(agents)
    events = AriEventStream(ari, StreamSettings(owned_prefix="acb-"), watched_devices=view.watched_devices)
    feed_from_ari(view, events)
    redis = connect(info["redis"]["url"])
    store = Store(redis, Keys(f"e2e-{uuid.uuid4().hex[:8]}"))
    executor = CallbackExecutor(
        store,
        ari,
        events,
        availability=view,
        settings_for=lambda callback: settings_for(store, callback),
        options=ExecutorOptions(outbound_context=info["dialplan"]["outbound_context"]),
    )
    scheduler = Scheduler(store, executor, SchedulerOptions(lease_ms=5000, renew_every_ms=1000))
    events.start()
    await events.wait_ready(10)
    running = asyncio.create_task(scheduler.run())
    try:
        yield Lab(info, store, prefix=f"acb-{uuid.uuid4().hex[:4]}-")
    finally:
        scheduler.stop()
        await running
        await events.stop()
        await ari.close()
        await store.delete_namespace()
        await redis.aclose()
