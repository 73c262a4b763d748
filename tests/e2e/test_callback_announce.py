"""announce_to_agent on the real lab: the answered agent leg plays a beep and the contact's number,
one sound at a time (PlaybackStarted, PlaybackFinished on the agent's channel), before the contact's
phone gets its INVITE; an agent who hangs up during it is never connected to anyone: the contact is
not dialled."""

from __future__ import annotations

import time

import pytest
from callback_lab import Lab, leg_channel, unique_number, until, until_equal

from asterisk_cb.core.model import FinishReason, LegRole, Outcome, State
from asterisk_cb.telephony.ari_events import AriEvent, PlaybackFinished, PlaybackStarted
from asterisk_cb.telephony.call_steps import announcement

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"


def _record_playbacks(lab: Lab) -> list[tuple[float, AriEvent]]:
    """Playback events the daemon's app gets, with when they arrived (host clock, like SIPp's log)."""
    seen: list[tuple[float, AriEvent]] = []
    assert lab.daemon_ari_events is not None
    stream = lab.daemon_ari_events()
    stream.subscribe(lambda event: seen.append((time.time(), event)), PlaybackStarted, PlaybackFinished)
    return seen


async def test_the_agent_hears_the_number_before_the_contact_is_dialled(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(announce_to_agent="yes")
    number = unique_number("20102")
    playbacks = _record_playbacks(lab)

    scheduled = await lab.schedule(number, AGENT)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=60)

    assert (done.state, done.finish_reason) == (State.COMPLETED, FinishReason.TALKED)
    agent_leg = done.attempts[-1].leg(LegRole.AGENT)
    assert agent_leg is not None
    sounds = announcement(number)  # a beep, then each digit: one play each
    assert [(type(event), event.playback.media_uri) for _, event in playbacks] == [
        (kind, media) for media in sounds for kind in (PlaybackStarted, PlaybackFinished)
    ]
    assert {event.playback.target_uri for _, event in playbacks} == {f"channel:{agent_leg.channel_id}"}
    started_at, finished_at = playbacks[0][0], playbacks[-1][0]
    assert {event.playback.state for _, event in playbacks[1::2]} == {"done"}  # every sound was found
    [invited_at] = lab.contact_invites().times(number)
    assert started_at < finished_at < invited_at
    assert finished_at - started_at > 1.0  # a beep and 12 digits take seconds, not a failed lookup


async def test_an_agent_hanging_up_during_the_announcement_dials_nobody(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(announce_to_agent="yes", max_attempts="1", max_missed_agent_rings="1")
    number = unique_number("20102")
    playbacks = _record_playbacks(lab)

    scheduled = await lab.schedule(number, AGENT)
    await until(lambda: bool(playbacks), timeout_s=20)
    ringing = await lab.store.get(scheduled.id)
    assert ringing is not None
    await lab.ari.hangup(leg_channel(ringing, LegRole.AGENT))  # the agent hangs up while it plays
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=20)

    assert done.attempts[-1].outcome is Outcome.AGENT_HUNG_UP
    # the contact was never rung: the agent's missed callback, not a contact attempt
    assert (done.state, done.finish_reason) == (State.EXPIRED, FinishReason.AGENT_MISSED)
    assert (done.agent_attempts, done.missed_agent_rings) == (0, 1)
    assert lab.contact_invites().times(number) == []
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit
