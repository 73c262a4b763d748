"""The failover queue's side of a callback call over ARI: the answered contact waits in the queue
through a Local channel running Queue(), a resumer finishes an entry its holder left half done, and
the member who took the call is named.

Plain steps on a ``CallContext``. Why each step is shaped so: docs/calls.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from asterisk_cb.core import inputs as ev
from asterisk_cb.core.effects import EnterQueue
from asterisk_cb.core.model import LegRole, Outcome
from asterisk_cb.telephony.ami_events import device_of_channel
from asterisk_cb.telephony.ari import AriError, AriNotFound, ChannelNotInStasis
from asterisk_cb.telephony.call_context import CallContext, seconds
from asterisk_cb.telephony.call_marks import callback_variables
from asterisk_cb.telephony.call_steps import attempt_bridge_id, create_in_app, fence_or_hang_up
from asterisk_cb.telephony.contact_leg import answer_recorded
from asterisk_cb.telephony.progress import queue_channel_id

log = logging.getLogger(__name__)

MEMBER_LOOKUPS, MEMBER_LOOKUP_PAUSE_S = 10, 0.1  # BRIDGEPEER comes within milliseconds of the answer


async def enter_queue(call: CallContext, effect: EnterQueue) -> ev.Input | None:
    """The answered contact waits in the failover queue: bridged with a Local channel whose dialplan
    half runs Queue() in ``queue_context``; that channel is answered when a member takes the call.

    Queue() reads its entry priority from QUEUE_PRIO and the wait from ACB_QUEUE_TIMEOUT; ARI's
    dial timeout is the same wait, so a dialplan without the timeout argument cannot wait longer."""
    ari = call.ari
    waiting = queue_channel_id(effect.attempt_id)
    bridge_id = attempt_bridge_id(effect.attempt_id)
    mark = call.options.cdr_mark
    variables = callback_variables(call.callback, effect.attempt_id, LegRole.MEMBER, mark, party_b=True)
    variables |= {"QUEUE_PRIO": str(effect.priority), "ACB_QUEUE_TIMEOUT": str(seconds(effect.timeout))}
    variables |= answer_recorded(call, waiting)
    try:
        await ari.create_bridge(bridge_id, name=f"callback {call.callback.id}")
        await ari.add_channel(bridge_id, effect.channel_id)
        await create_in_app(
            ari,
            call.events,
            f"Local/{effect.queue}@{call.options.queue_context}/n",
            waiting,
            other_channel_id=f"{waiting}-2",  # the half running Queue(): see with_member
            app_args="queue",
            originator=effect.channel_id,
            variables=variables,
        )
        # Dialled before it is bridged: the dialplan half copies the channel's variables when
        # dialled, and a BRIDGEPEER from our bridge would then misname the member (with_member).
        deadline = await fence_or_hang_up(call, waiting)
        await ari.dial(waiting, timeout_s=seconds(effect.timeout), deadline=deadline)
        await ari.add_channel(bridge_id, waiting)
    except (AriNotFound, ChannelNotInStasis):  # the contact hung up right after answering
        return ev.QueueGaveUp(Outcome.ABANDONED)
    except (AriError, TimeoutError) as error:
        log.warning("callback %s: entering queue %s failed: %r", call.callback.id, effect.queue, error)
        return ev.QueueGaveUp(Outcome.QUEUE_TIMEOUT)
    return None


async def finish_entering_queue(call: CallContext) -> None:
    """A holder that died inside ``enter_queue`` left the contact answered, waiting in silence. Its
    last two steps are done here if they were not: the queue's Local channel dialled (until then its
    dialplan half runs no application, Queue() after; so no member has rung) and put into the
    contact's bridge (else a member who answers would not hear the contact). A queue channel never
    created counts as a queue attempt over (``progress.reconcile``)."""
    attempt = call.attempt
    assert attempt is not None, "a queued callback has its attempt"
    waiting, bridge_id = queue_channel_id(attempt.id), attempt_bridge_id(attempt.id)
    ari = call.ari
    try:
        if not (await ari.get_channel(f"{waiting}-2")).app_name:
            deadline = await call.fence()  # the resumer may stall too: its dial is fenced alike
            await ari.dial(waiting, timeout_s=seconds(call.settings.queue_timeout), deadline=deadline)
            log.info("callback %s: dialled the queue channel its holder had not", call.callback.id)
        if waiting not in (await ari.get_bridge(bridge_id)).channels:
            await ari.add_channel(bridge_id, waiting)
    except AriError as error:  # never created, gone since, Asterisk away: the look that follows tells
        log.info("callback %s: queue entry not finished: %s", call.callback.id, error)


async def with_member(call: CallContext, happening: ev.Input) -> ev.Input:
    """Who took the call from the queue: the queue's Local half ``;2`` is in a two-party bridge with
    the member's channel, so its BRIDGEPEER names it (set by the bridging core, nothing needed in the
    admin's queue). It is set as the bridge forms, just after the answer: wait a little for it."""
    if not isinstance(happening, ev.MemberAnswered) or not happening.leg.uniqueid:
        return happening
    waiting_half = f"{happening.leg.uniqueid}-2"
    peer: str | None = None
    with contextlib.suppress(AriError):
        for _ in range(MEMBER_LOOKUPS):
            if peer := await call.ari.get_variable(waiting_half, "BRIDGEPEER"):
                break
            await asyncio.sleep(MEMBER_LOOKUP_PAUSE_S)
    if not peer:
        log.info("callback %s: the member who answered is unknown", call.callback.id)
        return happening
    return dataclasses.replace(happening, member=device_of_channel(peer))
