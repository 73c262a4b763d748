"""Two daemons on one Redis never ring one agent, or one contact number, for two callbacks at once,
and share a cap on simultaneous calls.

Each daemon works on one callback at a time (``pair_lab``), so two callbacks due at the same instant
are claimed one by each daemon, within milliseconds: both see the agent's device free. Counted on the
phones (the SIPp INVITE logs with their times) and in the callbacks' records (each attempt's span).
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from callback_lab import Lab, unique_number

from asterisk_cb.core import inputs as ev
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


def _waited(histories: list[list[Event]], kind: EventKind, reason: str | None) -> bool:
    said = {(event.kind, event.attributes.get("reason")) for history in histories for event in history}
    return (kind, reason) in said


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
    # Which guard turned the second one away is a race: usually the first one's call lock (both saw
    # the device free), sometimes the device state, when its RINGING reached that daemon first.
    assert _waited(histories, EventKind.AGENT_UNAVAILABLE, "agent in another callback") or _waited(
        histories, EventKind.AGENT_UNAVAILABLE, None
    )


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


async def test_one_line_for_two_daemons_places_one_call_at_a_time_oldest_due_first(
    one_line_pair_lab: Lab,
) -> None:
    lab = one_line_pair_lab
    agents = ("1001", "1002", "1003")
    for agent in agents:
        lab.phone(agent, "answer")
    numbers = [unique_number("20102") for _ in agents]  # each contact talks 2 s
    # created newest first: the order of creation must not matter, the due time does
    scheduled = [
        await lab.schedule(number, agent, in_s=1.5 + 0.3 * n)
        for n, (number, agent) in reversed(list(enumerate(zip(numbers, agents, strict=True))))
    ]
    done = await _finished(lab, scheduled)

    assert [(cb.state, len(cb.attempts)) for cb in done] == [(State.COMPLETED, 1)] * 3
    spans = [(cb.due_at, cb.attempts[0].started_at, cb.attempts[0].ended_at) for cb in done]
    spans.sort(key=lambda span: span[1])  # in the order they rang
    assert [due for due, _, _ in spans] == sorted(due for due, _, _ in spans)  # oldest due first
    for (_, _, ended), (_, started, _) in itertools.pairwise(spans):
        assert ended is not None and started >= ended  # never two callback calls at once
    histories = [await lab.events(cb.id) for cb in scheduled]
    assert not _waited(histories, EventKind.HELD, ev.Waiting.CALL_LIMIT.value)  # they kept their place
