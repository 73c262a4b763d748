"""announce_to_agent: the answered agent hears a beep and the contact's number before the contact is
dialled; any key skips it; hanging up meanwhile dials nobody. Against the fake ARI (the real-PBX
proof is in tests/e2e/test_callback_announce.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ari_fake import FakeAri
from test_executor_failures import SETTINGS, RecordingStore, _claim, _executor

from asterisk_cb.core.model import Outcome, State
from asterisk_cb.telephony.ari import AriClient
from asterisk_cb.telephony.ari_stream import AriEventStream
from asterisk_cb.telephony.executor import announcement

ANNOUNCING = dataclasses.replace(SETTINGS, announce_to_agent=True, max_attempts=1, failover_queue=None)
AGENT_CHANNEL = "acb-acb-u1-1-agent"
PLAYBACK = f"{AGENT_CHANNEL}-announce"
APP = {"application": "asterisk-cb", "timestamp": "t"}


def test_the_announcement_is_a_beep_then_the_digits() -> None:
    assert announcement("+33612345678") == "sound:beep,digits:33612345678"
    assert announcement("0612345678") == "sound:beep,digits:0612345678"


async def _answered_and_announcing(
    fake_ari: FakeAri, store: RecordingStore, events: AriEventStream, ari_client: AriClient
) -> asyncio.Task[None]:
    executor = _executor(ari_client, events, store, settings=ANNOUNCING)
    running = asyncio.create_task(executor.execute(_claim()))
    async with asyncio.timeout(3):
        while AGENT_CHANNEL not in fake_ari.channels:  # noqa: ASYNC110 - the fake records the originate
            await asyncio.sleep(0.01)
    agent = dict(fake_ari.channels[AGENT_CHANNEL], state="Up")
    await fake_ari.push({"type": "StasisStart", **APP, "channel": agent})
    async with asyncio.timeout(3):
        while not _requests(fake_ari, "POST", f"/ari/channels/{AGENT_CHANNEL}/play/{PLAYBACK}"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return running


def _requests(fake_ari: FakeAri, method: str, path: str) -> list[dict[str, str]]:
    return [query for m, p, query, _ in fake_ari.requests if (m, p) == (method, path)]


def _contact_dials(fake_ari: FakeAri) -> int:
    return len(_requests(fake_ari, "POST", "/ari/channels/create"))


async def _finished(fake_ari: FakeAri) -> None:
    playback: dict[str, Any] = {"id": PLAYBACK, "target_uri": f"channel:{AGENT_CHANNEL}", "state": "done"}
    await fake_ari.push({"type": "PlaybackFinished", **APP, "playback": playback})


async def _until_contact_dialled(fake_ari: FakeAri) -> None:
    async with asyncio.timeout(3):
        while not _contact_dials(fake_ari):  # noqa: ASYNC110 - the fake records the request
            await asyncio.sleep(0.01)


async def test_the_contact_is_dialled_only_once_the_announcement_played(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    running = await _answered_and_announcing(fake_ari, store, events, ari_client)
    [play] = _requests(fake_ari, "POST", f"/ari/channels/{AGENT_CHANNEL}/play/{PLAYBACK}")
    assert play["media"] == "sound:beep,digits:0612345678"
    await asyncio.sleep(0.2)
    assert _contact_dials(fake_ari) == 0  # still announcing
    await _finished(fake_ari)
    await _until_contact_dialled(fake_ari)
    running.cancel()
    assert _requests(fake_ari, "DELETE", f"/ari/playbacks/{PLAYBACK}") == []


async def test_any_key_skips_the_announcement(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    running = await _answered_and_announcing(fake_ari, store, events, ari_client)
    agent = fake_ari.channels[AGENT_CHANNEL]
    await fake_ari.push({"type": "ChannelDtmfReceived", **APP, "channel": agent, "digit": "5"})
    await _until_contact_dialled(fake_ari)
    running.cancel()
    assert len(_requests(fake_ari, "DELETE", f"/ari/playbacks/{PLAYBACK}")) == 1


async def test_the_agent_hanging_up_during_the_announcement_dials_nobody(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    running = await _answered_and_announcing(fake_ari, store, events, ari_client)
    agent = fake_ari.channels.pop(AGENT_CHANNEL)
    await fake_ari.push({"type": "ChannelDestroyed", **APP, "channel": agent, "cause": 16})
    await asyncio.wait_for(running, 3)

    assert [cb.state for cb in store.committed][-1] is State.EXHAUSTED  # max_attempts = 1
    assert store.committed[-1].attempts[-1].outcome is Outcome.AGENT_HUNG_UP
    assert _contact_dials(fake_ari) == 0
    played = next(i for i, (_, path, _, _) in enumerate(fake_ari.requests) if "/play/" in path)
    after = {method for method, _, _, _ in fake_ari.requests[played + 1 :]}
    assert after <= {"DELETE"}  # nothing prepared for the contact; only what is left is hung up


async def test_without_the_setting_nothing_is_played(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    settings = dataclasses.replace(ANNOUNCING, announce_to_agent=False)
    running = asyncio.create_task(_executor(ari_client, events, store, settings=settings).execute(_claim()))
    async with asyncio.timeout(3):
        while AGENT_CHANNEL not in fake_ari.channels:  # noqa: ASYNC110 - the fake records the originate
            await asyncio.sleep(0.01)
    answered = dict(fake_ari.channels[AGENT_CHANNEL], state="Up")
    await fake_ari.push({"type": "StasisStart", **APP, "channel": answered})
    await _until_contact_dialled(fake_ari)
    running.cancel()
    assert not any("/play" in path for _, path, _, _ in fake_ari.requests)
