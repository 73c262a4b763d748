"""announce_to_agent: the answered agent hears a beep and the contact's number before the contact is
dialled; any key skips the rest; hanging up meanwhile dials nobody. Against the fake ARI (the
real-PBX proof is in tests/e2e/test_callback_announce.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ari_fake import FakeAri
from test_executor_failures import SETTINGS, RecordingStore, _claim, _executor

from asterisk_cb.core.model import Outcome, State
from asterisk_cb.telephony.ari import AriClient
from asterisk_cb.telephony.ari_stream import AriEventStream
from asterisk_cb.telephony.call_steps import announcement

ANNOUNCING = dataclasses.replace(SETTINGS, announce_to_agent=True, max_attempts=1, failover_queue=None)
NUMBER = "0612345678"  # the contact of test_executor_failures._claim
AGENT_CHANNEL = "acb-acb-u1-1-agent"
APP = {"application": "asterisk-cb", "timestamp": "t"}


def test_the_announcement_is_a_beep_then_each_digit() -> None:
    assert announcement("+3361") == [
        "sound:beep",
        "sound:digits/3",
        "sound:digits/3",
        "sound:digits/6",
        "sound:digits/1",
    ]


def _playback(n: int) -> str:
    return f"{AGENT_CHANNEL}-announce-{n}"


def _plays(fake_ari: FakeAri) -> list[tuple[str, str]]:
    """(playback id, media) of every play on the agent's channel, in order."""
    prefix = f"/ari/channels/{AGENT_CHANNEL}/play/"
    return [(p.removeprefix(prefix), q["media"]) for m, p, q, _ in fake_ari.requests if p.startswith(prefix)]


async def _until(condition: Any) -> None:
    async with asyncio.timeout(3):
        while not condition():  # noqa: ASYNC110 - the fake records requests as they come
            await asyncio.sleep(0.01)


async def _answered(
    fake_ari: FakeAri,
    store: RecordingStore,
    events: AriEventStream,
    ari_client: AriClient,
    announce: bool = True,
) -> asyncio.Task[None]:
    executor = _executor(
        ari_client, events, store, settings=dataclasses.replace(ANNOUNCING, announce_to_agent=announce)
    )
    running = asyncio.create_task(executor.execute(_claim()))
    await _until(lambda: AGENT_CHANNEL in fake_ari.channels)
    agent = dict(fake_ari.channels[AGENT_CHANNEL], state="Up")
    await fake_ari.push({"type": "StasisStart", **APP, "channel": agent})
    return running


async def _finish(fake_ari: FakeAri, n: int) -> None:
    """Playback n is over (it is the n-th play request): what Asterisk sends when a sound ends."""
    await _until(lambda: len(_plays(fake_ari)) > n)
    playback = {"id": _playback(n), "target_uri": f"channel:{AGENT_CHANNEL}", "state": "done"}
    await fake_ari.push({"type": "PlaybackFinished", **APP, "playback": playback})


def _contact_dials(fake_ari: FakeAri) -> int:
    return sum(1 for m, p, _, _ in fake_ari.requests if (m, p) == ("POST", "/ari/channels/create"))


def _stops(fake_ari: FakeAri) -> list[str]:
    return [p.rsplit("/", 1)[1] for m, p, _, _ in fake_ari.requests if m == "DELETE" and "/playbacks/" in p]


async def test_each_sound_plays_after_the_last_and_then_the_contact_is_dialled(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    running = await _answered(fake_ari, RecordingStore(), events, ari_client)
    sounds = announcement(NUMBER)
    for n in range(len(sounds)):
        await _finish(fake_ari, n)
        if n + 1 < len(sounds):
            await _until(lambda n=n: len(_plays(fake_ari)) == n + 2)  # the next starts once this ended
            assert _contact_dials(fake_ari) == 0
    await _until(lambda: _contact_dials(fake_ari) == 1)
    running.cancel()
    assert _plays(fake_ari) == [(_playback(n), media) for n, media in enumerate(sounds)]
    assert _stops(fake_ari) == []  # played to the end: nothing to stop


async def test_a_key_stops_the_sound_playing_and_skips_the_rest(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    running = await _answered(fake_ari, RecordingStore(), events, ari_client)
    await _finish(fake_ari, 0)  # the beep
    await _until(lambda: len(_plays(fake_ari)) == 2)  # the first digit plays
    agent = fake_ari.channels[AGENT_CHANNEL]
    await fake_ari.push({"type": "ChannelDtmfReceived", **APP, "channel": agent, "digit": "5"})
    await _until(lambda: _contact_dials(fake_ari) == 1)
    running.cancel()
    assert len(_plays(fake_ari)) == 2
    assert _stops(fake_ari) == [_playback(1)]


async def test_the_agent_hanging_up_during_the_announcement_dials_nobody(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    store = RecordingStore()
    running = await _answered(fake_ari, store, events, ari_client)
    await _until(lambda: len(_plays(fake_ari)) == 1)
    agent = fake_ari.channels.pop(AGENT_CHANNEL)
    await fake_ari.push({"type": "ChannelDestroyed", **APP, "channel": agent, "cause": 16})
    await asyncio.wait_for(running, 3)

    # the contact was never dialled: a missed ring of the agent's, no contact attempt (max_attempts = 1)
    last = store.committed[-1]
    assert (last.state, last.agent_attempts, last.missed_agent_rings) == (State.SCHEDULED, 0, 1)
    assert last.attempts[-1].outcome is Outcome.AGENT_HUNG_UP
    assert _contact_dials(fake_ari) == 0
    played = next(i for i, (_, path, _, _) in enumerate(fake_ari.requests) if "/play/" in path)
    after = {method for method, _, _, _ in fake_ari.requests[played + 1 :]}
    assert after <= {"DELETE"}  # nothing prepared for the contact; only what is left is hung up


async def test_without_the_setting_nothing_is_played(
    fake_ari: FakeAri, ari_client: AriClient, events: AriEventStream
) -> None:
    running = await _answered(fake_ari, RecordingStore(), events, ari_client, announce=False)
    await _until(lambda: _contact_dials(fake_ari) == 1)
    running.cancel()
    assert _plays(fake_ari) == []
