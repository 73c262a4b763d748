"""The contact's side of a callback call over ARI: dial the contact through the admin's outbound
context (after the agent's announcement and bridge, in the agent phase), screen an answer through
AMD, connect, and end what is left.

Plain steps on a ``CallContext``; each returns the lifecycle input a failure stands for, if any.
Why each step is shaped so (and the measurements behind it): docs/calls.md.
"""

from __future__ import annotations

import logging

from asterisk_cb.core import inputs as ev
from asterisk_cb.core.effects import Connect, DialContact, HangUp
from asterisk_cb.core.model import Callback, LegRole, Outcome, Phase
from asterisk_cb.faults import checkpoint
from asterisk_cb.telephony import answer_marks
from asterisk_cb.telephony.agent_leg import agent_request, announce, ready_agent
from asterisk_cb.telephony.ari import AriError, AriNotFound, ChannelNotInStasis
from asterisk_cb.telephony.call_context import CallContext, seconds
from asterisk_cb.telephony.call_marks import callback_variables
from asterisk_cb.telephony.call_steps import (
    all_of,
    attempt_bridge_id,
    create_in_app,
    fence_or_hang_up,
    quietly,
)
from asterisk_cb.telephony.progress import (
    Screen,
    leg_channel,
    marked_channels,
    queue_channel,
    queue_channel_id,
)

log = logging.getLogger(__name__)


async def dial_contact(call: CallContext, effect: DialContact) -> ev.Input | None:
    """Agent phase: announce (if asked), ready the agent's leg, then ring the contact into the
    attempt's bridge. Queue phase: the contact rings alone; the queue comes once it answers."""
    if effect.phase is Phase.QUEUE:
        return await _ring_contact(call, None, effect)
    attempt = call.attempt
    assert attempt is not None
    agent_channel = leg_channel(attempt, LegRole.AGENT)
    assert agent_channel is not None, "the agent phase always has an agent leg"
    bridge_id = attempt_bridge_id(effect.attempt_id)
    return (
        (await announce(call, agent_channel, effect.number) if effect.announce else None)
        or await ready_agent(call, agent_channel, bridge_id, effect)
        or await _ring_contact(call, agent_channel, effect)
    )


async def _ring_contact(call: CallContext, agent_channel: str | None, effect: DialContact) -> ev.Input | None:
    """Create the contact's Local channel in the app (agent phase: while the agent joins the bridge),
    bridge it with the agent (while the fence is passed and the agent hears ringback), then dial it.
    Only what needs the step before waits for it: the contact is dialled after two rounds of requests
    sent at once instead of five requests in a row (docs/calls.md)."""
    ari = call.ari
    try:
        if agent_channel is None:
            await _create_contact(call, None, effect)
            deadline = await fence_or_hang_up(call, effect.channel_id)
        else:
            bridge_id = attempt_bridge_id(effect.attempt_id)
            joined, _ = await all_of(
                agent_request(call, ari.add_channel(bridge_id, agent_channel), "joining the bridge"),
                _create_contact(call, agent_channel, effect),
            )
            if joined is not None:
                return joined
            deadline, *_ = await all_of(
                fence_or_hang_up(call, effect.channel_id),
                ari.add_channel(bridge_id, effect.channel_id),
                quietly(ari.ring(agent_channel)),  # ringback while the contact rings
            )
        checkpoint(f"dial:{effect.phase.value}:contact")
        await ari.dial(effect.channel_id, timeout_s=seconds(effect.timeout), deadline=deadline)
    except (AriError, TimeoutError) as error:
        log.warning("callback %s: dialling the contact failed: %r", call.callback.id, error)
        return ev.ContactFailed(Outcome.FAILED)
    return None


async def _create_contact(call: CallContext, agent_channel: str | None, effect: DialContact) -> None:
    """The contact's Local channel, created in the app (not dialled): with the agent leg as its
    originator, so the whole call has one linkedid and the CDR/CEL rows link up."""
    variables = callback_variables(
        call.callback,
        effect.attempt_id,
        LegRole.CONTACT,
        call.options.cdr_mark,
        party_b=agent_channel is not None,
    )
    await create_in_app(
        call.ari,
        call.events,
        f"Local/{effect.number}@{call.options.outbound_context}/n",
        effect.channel_id,
        other_channel_id=effect.local_peer_id,
        app_args="contact",
        originator=agent_channel,
        variables=variables | answer_recorded(call, effect.channel_id) | _amd_return(call),
    )


def _amd_return(call: CallContext) -> dict[str, str]:
    """Where the AMD context sends the contact back (our app), given when the channel is created:
    a variable set later through ARI runs in the channel's thread, and Asterisk then refuses the
    hangup handler's AstDB write there (measured: "Dangerous function DB write blocked")."""
    return {"ACB_STASIS_APP": call.ari.settings.app} if call.settings.amd else {}


def answer_recorded(call: CallContext, channel_id: str) -> dict[str, str]:
    """The hangup handler that records the channel's answer for a resumer, where it matters."""
    attempt = call.attempt
    recorded = attempt is not None and channel_id in marked_channels(attempt)
    return answer_marks.handler(channel_id) if recorded else {}


async def screen(call: CallContext, screening: Screen) -> ev.Input | bool:
    """Send the answered contact's ``;1`` through AMD; the verdict comes back as its StasisStart.
    True: AMD listens now; False: nothing to do (the contact hung up meanwhile, or is in AMD already:
    their events follow). Any other refusal connects the contact as without AMD: keeping a person
    waiting for a verdict that cannot come is worse than reaching a machine. A missing context is not
    refused (measured: 204, then the channel hangs up at once, a failed attempt): ``doctor`` checks it."""
    channel_id = screening.leg.uniqueid
    assert channel_id is not None, "progress names the contact's channel"
    try:
        await call.ari.continue_in_dialplan(channel_id, context=call.options.amd_context, extension="s")
    except (AriNotFound, ChannelNotInStasis):
        return False
    except AriError as error:
        log.warning("callback %s: AMD not run, contact connected: %s", call.callback.id, error)
        return ev.ContactAnswered(screening.leg)
    log.info("callback %s: contact answered, AMD listening", call.callback.id)
    return True


async def connect(call: CallContext, effect: Connect) -> None:
    """Both legs were bridged before the contact rang; stop the ringback the agent hears. A contact
    back from AMD left the bridge for it: it goes back in first."""
    attempt = call.attempt
    agent_channel = leg_channel(attempt, LegRole.AGENT) if attempt else None
    contact_channel = leg_channel(attempt, LegRole.CONTACT) if attempt else None
    if call.settings.amd and contact_channel is not None:
        await quietly(call.ari.add_channel(attempt_bridge_id(effect.attempt_id), contact_channel))
    if agent_channel is not None:
        await quietly(call.ari.ring_stop(agent_channel))


async def hang_up(call: CallContext, effect: HangUp) -> None:
    """End whatever is left; a channel or bridge already gone is the normal case."""
    for channel_id in left_up(call.callback, call.destroyed, effect):
        await quietly(call.ari.hangup(channel_id))
    await quietly(call.ari.destroy_bridge(attempt_bridge_id(effect.attempt_id)))


def left_up(callback: Callback, destroyed: set[str], effect: HangUp) -> list[str]:
    """The channels of the attempt that may still be up, so the end costs no request for one known
    gone (a call usually ends by one side hanging up: its channels are destroyed before the end):
    not one this run saw destroyed, nor the ``;2`` half of a ``Local`` channel whose ``;1`` it saw
    destroyed (Asterisk ends both halves together), nor the queue's channel of an attempt that never
    entered the queue. ``destroyed``: what this run saw destroyed; a run that saw nothing (a
    resumer) asks for every one."""
    attempt = next((each for each in callback.attempts if each.id == effect.attempt_id), None)
    gone = set(destroyed)
    for leg in attempt.legs if attempt else ():
        if leg.channel_id in gone and leg.local_peer_id:
            gone.add(leg.local_peer_id)
    waiting = queue_channel(attempt) if attempt else queue_channel_id(effect.attempt_id)
    candidates = (*effect.channel_ids, *([waiting] if waiting else []))
    return [channel_id for channel_id in candidates if channel_id not in gone]
