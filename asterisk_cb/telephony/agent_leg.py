"""The agent's side of a callback call over ARI: ring its ready devices, end the rings it did not take,
announce the number, and put the answered leg into the attempt's bridge.

Plain steps on a ``CallContext``; each returns the lifecycle input a failure stands for, if any.
Why each step is shaped so (and the measurements behind it): docs/calls.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping

from asterisk_cb.core import inputs as ev
from asterisk_cb.core.effects import DialContact, RingAgent, StopRinging
from asterisk_cb.core.model import LegRole, Outcome
from asterisk_cb.faults import checkpoint
from asterisk_cb.telephony.ari import AriConflict, AriError, AriNotFound, ChannelNotInStasis
from asterisk_cb.telephony.call_context import CallContext, Prepared, seconds
from asterisk_cb.telephony.call_marks import agent_caller_id, callback_variables, presented_caller_id
from asterisk_cb.telephony.call_steps import (
    ANNOUNCE_TIMEOUT_S,
    agent_gone,
    announcement,
    attempt_bridge_id,
    is_key,
    play_until_over,
    quietly,
)
from asterisk_cb.telephony.progress import LegWatch

log = logging.getLogger(__name__)


async def ring_agent(
    call: CallContext,
    effect: RingAgent,
    devices: tuple[str, ...],
    states: Mapping[str, str],
    watch: LegWatch,
) -> ev.Input | None:
    """Ring every ready device, each with its recorded channel id; a device that cannot be rung ends
    its own ring only (the agent's ring is over when every ring is). While they ring, the attempt's
    bridge is made, so the answer has less to wait for (``Prepared``).

    The originates go out one after the other in the recorded order, not concurrently: Asterisk 22
    refuses (409) an originate whose channelId is a prefix of a live channel's id (measured:
    ``-agent`` while ``-agent-2`` rings), so the shorter id must come first. Each answers as soon as
    its dial has started, a few milliseconds: the phones still ring together."""
    if len(devices) != len(effect.channel_ids):  # never: Due.rings came from them
        return ev.AgentMissed(Outcome.AGENT_FAILED)
    over: ev.Input | None = None
    deadline = await call.fence()  # LeaseLost: another daemon may hold the callback now, ring nothing
    checkpoint("dial:agent")
    rung = False
    for device, channel_id in zip(devices, effect.channel_ids, strict=True):
        watch.device_state_before[channel_id] = states.get(device)
        if await _ring_device(call, effect, device, channel_id, deadline):
            rung = True
        else:
            over = watch.ring_failed(call.callback, channel_id)  # the last failure of all ends it
    if rung:
        await _prepare_bridge(call, effect.attempt_id)
    return over


async def _ring_device(
    call: CallContext, effect: RingAgent, device: str, channel_id: str, deadline: float
) -> bool:
    variables = callback_variables(call.callback, effect.attempt_id, LegRole.AGENT, call.options.cdr_mark)
    try:
        await call.ari.originate(
            device,
            channel_id=channel_id,
            app_args="agent",
            caller_id=agent_caller_id(effect.contact_name, effect.contact_number),
            timeout_s=seconds(effect.timeout),
            variables=variables | presented_caller_id(call.settings.caller_id),
            deadline=deadline,
        )
    except AriError as error:  # e.g. 500 for a device that just went unreachable
        log.warning("callback %s: ringing %s failed: %s", call.callback.id, device, error)
        return False
    return True


async def _prepare_bridge(call: CallContext, attempt_id: str) -> None:
    """The attempt's bridge, made while the agent's phones ring. Every end of the attempt destroys it
    (``HangUp``), answered or not; failing here only moves its making to after the answer."""
    bridge_id = attempt_bridge_id(attempt_id)
    try:
        await _make_bridge(call, bridge_id)
    except AriError as error:
        log.info("callback %s: bridge not made while ringing: %s", call.callback.id, error)
        return
    call.prepared = Prepared(bridge_id, call.settings.caller_id)


async def stop_ringing(call: CallContext, effect: StopRinging) -> None:
    """The agent answered on another device: end the other rings with cause 26 (answered
    elsewhere), which PJSIP sends in the CANCEL's Reason header so phones log no missed call."""
    for channel_id in effect.channel_ids:
        await quietly(call.ari.hangup(channel_id, reason="answered_elsewhere"))


async def announce(call: CallContext, agent_channel: str, number: str) -> ev.Input | None:
    """Play the answered agent a beep and the contact's number, digit by digit, before the contact
    is dialled; any key skips the rest. The agent hanging up meanwhile is ``AgentHungUp``: the
    contact is never dialled, so it is a missed ring, not a contact attempt. A playback Asterisk
    refuses only costs the announcement.

    One ARI play per sound, not one play of several media: measured on Asterisk 22, neither a
    ``digits:`` playback nor a playback of several media can be stopped (DELETE answers 500, or
    204 and it plays on), so a key could not cut them short."""
    events = call.events
    key = events.expect(lambda event: is_key(event, agent_channel))
    gone = events.expect(lambda event: agent_gone(event, agent_channel))
    playback_id, played_all = "", False
    try:
        async with asyncio.timeout(ANNOUNCE_TIMEOUT_S):
            for n, media in enumerate(announcement(number)):
                playback_id = f"{agent_channel}-announce-{n}"
                await play_until_over(call.ari, events, agent_channel, media, playback_id, key, gone)
                if key.done() or gone.done():
                    break
            else:
                played_all = True
    except (AriNotFound, ChannelNotInStasis):  # the agent hung up right after answering
        return ev.AgentHungUp(contact_dialled=False)
    except (AriError, TimeoutError) as error:
        log.warning("callback %s: announcing to the agent failed: %r", call.callback.id, error)
    finally:
        key.cancel()  # a no-op on what already happened: done() tells below
        gone.cancel()
    if gone.done() and not gone.cancelled():
        return ev.AgentHungUp(contact_dialled=False)
    if not played_all:  # skipped, or stuck: that sound stops now
        await quietly(call.ari.stop_playback(playback_id))
    return None


async def ready_agent(
    call: CallContext, agent_channel: str, bridge_id: str, effect: DialContact
) -> ev.Input | None:
    """What ``ring_agent`` could not prepare while the phones rang (a resumer's run): the answered
    leg's caller ID for the contact, and the attempt's bridge."""
    prepared = call.prepared
    if prepared is None or prepared.caller_id != effect.caller_id:
        failed = await agent_request(call, _present_caller_id(call, agent_channel, effect), "caller ID")
        if failed is not None:
            return failed
    if prepared is None or prepared.bridge_id != bridge_id:
        return await agent_request(call, _make_bridge(call, bridge_id), "the bridge")
    return None


async def _make_bridge(call: CallContext, bridge_id: str) -> None:
    """The attempt's bridge; already there (409) when a holder that vanished made it while the
    agent's phones rang, which is as good."""
    with contextlib.suppress(AriConflict):
        await call.ari.create_bridge(bridge_id, name=f"callback {call.callback.id}")


async def agent_request(call: CallContext, request: Awaitable[object], what: str) -> ev.Input | None:
    """A request on the answered agent leg, as the lifecycle sees its failure: the channel gone is the
    agent hanging up right after answering (the contact never dialled); anything else fails the try."""
    try:
        await request
    except (AriNotFound, ChannelNotInStasis):
        return ev.AgentHungUp(contact_dialled=False)
    except AriError as error:
        log.warning("callback %s: preparing the agent leg (%s) failed: %s", call.callback.id, what, error)
        return ev.ContactFailed(Outcome.FAILED)
    return None


async def _present_caller_id(call: CallContext, agent_channel: str, effect: DialContact) -> None:
    """Give the answered agent leg the caller ID the contact must see (``call_marks.presented_caller_id``
    says why the agent leg's caller is what the contact is shown)."""
    for name, value in presented_caller_id(effect.caller_id).items():
        await call.ari.set_variable(agent_channel, name, value)
