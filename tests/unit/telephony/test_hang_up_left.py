"""Which channels the end of an attempt still asks Asterisk to hang up (``contact_leg.left_up``).

A request for a channel known gone costs the daemon and Asterisk a round trip each (three per
callback, measured: the contact's two Local halves and an agent-phase attempt's queue channel, all
404). The callbacks are brought to their end by the real lifecycle."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle
from asterisk_cb.core.effects import HangUp
from asterisk_cb.core.model import Callback, LegRole, Phase
from asterisk_cb.core.settings import Settings
from asterisk_cb.telephony.contact_leg import left_up
from asterisk_cb.telephony.progress import queue_channel_id

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SETTINGS = Settings(failover_queue="failover")


def _ended(*path: ev.Input, phase: Phase = Phase.AGENT) -> tuple[Callback, HangUp]:
    request = lifecycle.NewCallback("0612345678", "1001", NOW + timedelta(minutes=1), "test")
    callback = dataclasses.replace(lifecycle.create(request, "acb-h1", NOW, SETTINGS).callback, phase=phase)
    effects: tuple[object, ...] = ()
    for happening in path:
        step = lifecycle.step(callback, happening, NOW + timedelta(minutes=1), SETTINGS)
        callback, effects = step.callback, step.effects
    [hang_up] = [effect for effect in effects if isinstance(effect, HangUp)]
    return callback, hang_up


def _leg(callback: Callback, role: LegRole) -> tuple[str, str | None]:
    attempt = callback.attempts[-1]
    leg = attempt.leg(role)
    assert leg is not None and leg.channel_id is not None
    return leg.channel_id, leg.local_peer_id


TALKED = (ev.Due(), ev.AgentAnswered(), ev.ContactAnswered(), ev.CallEnded())


def test_after_the_contact_hung_up_only_the_agent_is_left() -> None:
    callback, effect = _ended(*TALKED)
    agent, _ = _leg(callback, LegRole.AGENT)
    contact, contact_far_half = _leg(callback, LegRole.CONTACT)
    assert contact_far_half is not None  # a Local channel: its ;2 ends with its ;1

    assert left_up(callback, {contact}, effect) == [agent]


def test_a_run_that_saw_nothing_asks_for_every_channel_but_no_queue_channel_of_an_agent_attempt() -> None:
    callback, effect = _ended(*TALKED)
    assert left_up(callback, set(), effect) == list(effect.channel_ids)
    assert queue_channel_id(effect.attempt_id) not in effect.channel_ids


def test_after_the_agent_hung_up_the_contact_is_left_both_halves() -> None:
    callback, effect = _ended(*TALKED)
    agent, _ = _leg(callback, LegRole.AGENT)
    contact, contact_far_half = _leg(callback, LegRole.CONTACT)
    assert left_up(callback, {agent}, effect) == [contact, contact_far_half]


def test_a_queue_attempt_asks_for_its_queue_channel_unless_seen_destroyed() -> None:
    path = (ev.Due(), ev.ContactAnswered(), ev.MemberAnswered("PJSIP/1003"), ev.CallEnded())
    callback, effect = _ended(*path, phase=Phase.QUEUE)
    waiting = queue_channel_id(effect.attempt_id)
    assert left_up(callback, set(), effect)[-1] == waiting
    assert waiting not in left_up(callback, {waiting}, effect)
