"""The queue phase's events (the executor's pure half): the contact waits in the failover queue,
bridged with a Local channel that is answered when a member takes the call."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle
from asterisk_cb.core.model import Callback, FinishReason, LegRole, Outcome, Phase, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.telephony.ari_events import AriEvent, Channel, parse_event
from asterisk_cb.telephony.progress import (
    LegWatch,
    marked_channels,
    queue_channel_id,
    reconcile,
    resume_inputs,
    watched_channels,
)

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SETTINGS = Settings(failover_queue="failover")


def _queued(*more: ev.Input) -> Callback:
    """A callback in the queue phase whose contact answered and waits in the queue."""
    request = lifecycle.NewCallback("0612345678", "1001", NOW + timedelta(minutes=1), "test")
    callback = dataclasses.replace(
        lifecycle.create(request, "acb-q1", NOW, SETTINGS).callback, phase=Phase.QUEUE
    )
    for happening in (ev.Due(), ev.ContactAnswered(), *more):
        callback = lifecycle.step(callback, happening, NOW + timedelta(minutes=1), SETTINGS).callback
    return callback


def _event(kind: str, channel_id: str, state: str = "Up", **extra: Any) -> AriEvent:
    channel = {"id": channel_id, "name": f"Local/x-{channel_id}", "state": state}
    return parse_event(
        {"type": kind, "application": "asterisk-cb", "timestamp": "t", "channel": channel, **extra}
    )


def _channels(callback: Callback) -> dict[LegRole, str]:
    attempt = callback.current_attempt
    assert attempt is not None
    return {role: channel for channel, role in watched_channels(attempt).items()}


def test_the_queue_channel_is_followed_in_the_queue_phase_only() -> None:
    callback = _queued()
    assert callback.state is State.QUEUED
    attempt = callback.current_attempt
    assert attempt is not None
    assert _channels(callback)[LegRole.MEMBER] == queue_channel_id(attempt.id)
    agent_phase = dataclasses.replace(attempt, phase=Phase.AGENT)
    assert LegRole.MEMBER not in watched_channels(agent_phase).values()


def test_the_queue_channel_turning_up_is_a_member_answering() -> None:
    callback = _queued()
    waiting = _channels(callback)[LegRole.MEMBER]
    answered = LegWatch().interpret(callback, _event("ChannelStateChange", waiting))
    assert answered == ev.MemberAnswered("", ev.LegInfo(uniqueid=waiting))  # who: the executor asks ARI


def test_the_queue_giving_up_and_the_contact_hanging_up_are_queue_failures() -> None:
    callback = _queued()
    legs = _channels(callback)
    timed_out = LegWatch().interpret(callback, _event("ChannelDestroyed", legs[LegRole.MEMBER], cause=19))
    abandoned = LegWatch().interpret(callback, _event("ChannelDestroyed", legs[LegRole.CONTACT], cause=16))
    assert isinstance(timed_out, ev.QueueGaveUp) and timed_out.outcome is Outcome.QUEUE_TIMEOUT
    assert isinstance(abandoned, ev.QueueGaveUp) and abandoned.outcome is Outcome.ABANDONED


def test_after_a_member_answered_either_end_ends_the_call() -> None:
    callback = _queued(ev.MemberAnswered("1003"))
    assert callback.state is State.IN_PROGRESS
    for channel in _channels(callback).values():
        ended = LegWatch().interpret(callback, _event("ChannelDestroyed", channel, cause=16))
        assert isinstance(ended, ev.CallEnded)


def test_a_member_who_answered_while_nobody_watched_is_seen_on_the_next_look() -> None:
    callback = _queued()
    legs = _channels(callback)
    alive = {
        legs[LegRole.CONTACT]: Channel(legs[LegRole.CONTACT], "Local/x;1", "Up"),
        legs[LegRole.MEMBER]: Channel(legs[LegRole.MEMBER], "Local/failover@callback-queue;1", "Up"),
    }
    assert resume_inputs(callback, alive) == (ev.CallResumed(),)
    assert reconcile(callback, alive) == ev.MemberAnswered("", ev.LegInfo(uniqueid=legs[LegRole.MEMBER]))
    still_waiting = alive | {legs[LegRole.MEMBER]: Channel(legs[LegRole.MEMBER], "Local/q;1", "Down")}
    assert reconcile(callback, still_waiting) is None


def test_the_queue_channel_gone_unseen_while_the_contact_waits_ends_that_queue_attempt() -> None:
    """Queue() gave up while nobody watched (or the holder died before creating its channel): the
    contact, alone in our bridge, would wait in silence; the attempt is over and counted."""
    callback = _queued()
    legs = _channels(callback)
    contact_only = {legs[LegRole.CONTACT]: Channel(legs[LegRole.CONTACT], "Local/x;1", "Up")}
    gave_up = reconcile(callback, contact_only)
    assert gave_up == ev.QueueGaveUp(Outcome.QUEUE_TIMEOUT)
    after = lifecycle.step(callback, gave_up, NOW, SETTINGS).callback
    assert (after.state, after.queue_attempts) == (State.SCHEDULED, 1)


def test_a_member_answer_asterisk_recorded_while_nobody_watched_completes_the_callback() -> None:
    """The queue's Local channel carries the record: a member took the contact, the talk is over."""
    callback = _queued()
    legs = _channels(callback)
    attempt = callback.current_attempt
    assert attempt is not None
    assert marked_channels(attempt) == {legs[LegRole.MEMBER]: LegRole.MEMBER}
    inputs = resume_inputs(callback, {}, answered={legs[LegRole.MEMBER]})
    assert inputs == (ev.MemberAnswered("", ev.LegInfo(uniqueid=legs[LegRole.MEMBER])), ev.CallEnded())
    for happening in inputs:
        callback = lifecycle.step(callback, happening, NOW, SETTINGS).callback
    assert (callback.state, callback.finish_reason, callback.queue_attempts) == (
        State.COMPLETED,
        FinishReason.TALKED,
        0,
    )
    assert resume_inputs(_queued(), {}) == (ev.CallLost(),)  # no record: a counted queue attempt
