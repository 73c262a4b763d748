"""ARI building blocks of a callback call: request sequences with the wait each needs, and no callback
state. The executor decides what a call needs next; these only talk to Asterisk.

* ``create_in_app``: a channel created in our Stasis app is usable (bridged, dialled) only once its
  StasisStart came; the create request returns before that.
* ``play_until_over``: one sound, until it finished or something the caller waits for happened
  (a key, the agent gone).
* ``announcement``: what the agent hears before the contact is dialled.
* ``attempt_bridge_id``: the attempt's mixing bridge, named so a resumer finds it.
* ``quietly``: a best-effort request (a hang-up, a ringback stop) whose failure changes nothing.
* ``fence_or_hang_up``: the dial fence for a channel created, not yet dialled.
* ``all_of``: independent requests at once, none left in flight when one fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from asterisk_cb.core.model import ARI_ID_PREFIX
from asterisk_cb.store import LeaseLost
from asterisk_cb.telephony.ari import AriClient, AriError, AriNotFound
from asterisk_cb.telephony.ari_events import (
    AriEvent,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from asterisk_cb.telephony.ari_stream import AriEventStream
from asterisk_cb.telephony.call_context import CallContext

log = logging.getLogger(__name__)

ENTER_APP_TIMEOUT_S = 5.0  # a created channel enters our Stasis app within milliseconds
ANNOUNCE_TIMEOUT_S = 60.0  # a beep and up to 20 digits take about 15 s; a stuck playback is not waited on


async def create_in_app(
    ari: AriClient,
    events: AriEventStream,
    endpoint: str,
    channel_id: str,
    *,
    other_channel_id: str,
    app_args: str,
    originator: str | None,
    variables: dict[str, str],
) -> None:
    """Create a channel in our app and wait until it is there (the create request returns before
    the channel enters the app; bridging it earlier fails)."""
    entered = events.expect(lambda event: isinstance(event, StasisStart) and event.channel.id == channel_id)
    try:
        await ari.create_channel(
            endpoint,
            channel_id=channel_id,
            other_channel_id=other_channel_id,
            app_args=app_args,
            originator=originator,
            variables=variables,
        )
        async with asyncio.timeout(ENTER_APP_TIMEOUT_S):
            await entered
    finally:
        entered.cancel()  # stops listening if it never came


async def play_until_over(
    ari: AriClient,
    events: AriEventStream,
    channel: str,
    media: str,
    playback_id: str,
    *stops: asyncio.Future[AriEvent],
) -> None:
    """Play one sound and return when it finished or one of ``stops`` happened."""
    finished = events.expect(
        lambda event: isinstance(event, PlaybackFinished) and event.playback.id == playback_id
    )
    try:
        await ari.play(channel, media, playback_id=playback_id)
        await asyncio.wait((finished, *stops), return_when=asyncio.FIRST_COMPLETED)
    finally:
        finished.cancel()


def announcement(number: str) -> list[str]:
    """What the agent hears before the contact is dialled, one ARI play each: a beep, then the
    number's digits (a leading + is not read)."""
    return ["sound:beep", *(f"sound:digits/{digit}" for digit in number if digit.isdigit())]


def is_key(event: AriEvent, agent_channel: str) -> bool:
    return isinstance(event, ChannelDtmfReceived) and event.channel.id == agent_channel


def agent_gone(event: AriEvent, agent_channel: str) -> bool:
    ends = ChannelHangupRequest | StasisEnd | ChannelDestroyed
    return isinstance(event, ends) and event.channel.id == agent_channel


def attempt_bridge_id(attempt_id: str) -> str:
    return f"{ARI_ID_PREFIX}{attempt_id}-bridge"


async def quietly(request: Awaitable[None]) -> None:
    """A best-effort ARI request: gone channels and a lost link are logged, not raised."""
    try:
        await request
    except AriNotFound:
        pass
    except AriError as error:
        log.info("best-effort ARI request failed: %s", error)


async def fence_or_hang_up(call: CallContext, channel_id: str) -> float:
    """The dial fence (``runner.ClaimRunner.dial_fence``) for a channel created but not dialled: the
    deadline of its dial. Passed only once the channel exists, so a resumer can find it; refused,
    the channel goes and nobody is dialled (``LeaseLost`` ends the run)."""
    try:
        return await call.fence()
    except LeaseLost:
        log.warning(
            "callback %s: lease lost before %s was dialled: not dialling", call.callback.id, channel_id
        )
        await quietly(call.ari.hangup(channel_id))
        raise


async def all_of(*requests: Awaitable[Any]) -> list[Any]:
    """Run independent requests at once; their results in order. Every one has ended before a
    failure is raised (the first in argument order: put the one whose failure must win first), so
    none is still in flight when the caller handles it: a channel created after the attempt's
    hang-up would stay up."""
    results = await asyncio.gather(*requests, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
