"""Two daemons on one Redis never ring one agent, or one contact number, for two callbacks at once.

Each daemon works on one callback at a time (``pair_lab``), so two callbacks due at the same instant
are claimed one by each daemon, within milliseconds: both see the agent's device free. Counted on the
phones (the SIPp INVITE logs with their times) and in the callbacks' records (each attempt's span).
"""

from __future__ import annotations

import asyncio

import pytest
from callback_lab import Lab, unique_number

from asterisk_cb.core.model import Callback, Event, EventKind, State

pytestmark = pytest.mark.lab

AGENT, OTHER_AGENT = "1001", "1002"


async def _finished(lab: Lab, scheduled: list[Callback]) -> list[Callback]:
    return list(
        await asyncio.gather(
            *(lab.wait_for(cb.id, lambda cb: cb.state.is_finished, timeout_s=60) for cb in scheduled)
        )
    )


def _one_after_the_other(done: list[Callback], invites: list[float]) -> None:
    """Both completed with one attempt each; the second call (record and phone) began after the first
    ended."""
    assert [(cb.state, len(cb.attempts)) for cb in done] == [(State.COMPLETED, 1)] * 2
    first, second = sorted((cb.attempts[0] for cb in done), key=lambda attempt: attempt.started_at)
    assert first.ended_at is not None and second.started_at >= first.ended_at
    assert len(invites) == 2 and invites[1] >= first.ended_at.timestamp()


def _waited(histories: list[list[Event]], kind: EventKind, reason: str) -> bool:
    return any(event.kind is kind and event.attributes.get("reason") == reason for h in histories for event in h)


async def test_two_callbacks_of_one_agent_each_taken_by_a_daemon_ring_it_one_after_the_other(
    pair_lab: Lab,
) -> None:
    lab = pair_lab
    lab.phone(AGENT, "answer")
    await lab.set(reschedule_delay="1s")
    numbers = [unique_number("20103"), unique_number("20103")]  # each contact talks 3 s
    rings_before = len(lab.agent_invites(AGENT).times(AGENT))

    scheduled = [await lab.schedule(number, AGENT, in_s=1.5) for number in numbers]
    done = await _finished(lab, scheduled)

    rings = sorted(lab.agent_invites(AGENT).times(AGENT))[rings_before:]
    _one_after_the_other(done, rings)
    assert [len(lab.contact_invites().times(number)) for number in numbers] == [1, 1]
    histories = [await lab.events(cb.id) for cb in scheduled]
    assert _waited(histories, EventKind.AGENT_UNAVAILABLE, "agent in another callback")


async def test_one_contact_in_two_callbacks_of_two_agents_is_never_rung_twice_at_once(pair_lab: Lab) -> None:
    lab = pair_lab
    for agent in (AGENT, OTHER_AGENT):
        lab.phone(agent, "answer")
    await lab.set(reschedule_delay="1s")
    number = unique_number("20103")

    scheduled = [await lab.schedule(number, agent, in_s=1.5) for agent in (AGENT, OTHER_AGENT)]
    done = await _finished(lab, scheduled)

    _one_after_the_other(done, sorted(lab.contact_invites().times(number)))
    histories = [await lab.events(cb.id) for cb in scheduled]
    assert _waited(histories, EventKind.HELD, "contact in another callback")
