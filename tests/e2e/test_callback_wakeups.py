"""A callback waiting for its busy agent rings the agent as soon as the agent is free, not a
``reschedule_delay`` later (here its default, one minute): the AMI device state wakes it
(``agent_wakeups``), on the real lab Asterisk with SIPp phones."""

from __future__ import annotations

import itertools

import pytest
from callback_lab import Lab, device_state, pbx_lab, unique_number, until_equal

from asterisk_cb.core.model import EventKind, State

pytestmark = [pytest.mark.lab, pytest.mark.slow]

AGENT = "1001"
DEFAULT_DELAY = "1m"


async def test_a_callback_waiting_for_an_agent_on_another_call_rings_it_when_that_call_ends(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(reschedule_delay=DEFAULT_DELAY)
    pbx_lab("call", AGENT, "--hold-s", "4")  # a normal call keeps the agent busy for 4 s
    await until_equal(lambda: device_state(lab, AGENT), "INUSE")
    number = unique_number("20102")

    scheduled = await lab.schedule(number, AGENT, in_s=0.5)
    done = await lab.wait_for(scheduled.id, lambda cb: cb.state.is_finished, timeout_s=30)

    assert done.state is State.COMPLETED
    events = await lab.events(scheduled.id)
    [unavailable] = [event for event in events if event.kind is EventKind.AGENT_UNAVAILABLE]
    [rung] = [event.at for event in events if event.kind is EventKind.AGENT_RINGING]
    waited = (rung - unavailable.at).total_seconds()
    assert 1.0 < waited < 10.0, waited  # after the other call (about 3.5 s more), long before the minute
    assert len(lab.contact_invites().times(number)) == 1


async def test_callbacks_queued_for_one_agent_ring_it_one_after_the_other_without_the_delay(lab: Lab) -> None:
    lab.phone(AGENT, "answer")
    await lab.set(reschedule_delay=DEFAULT_DELAY)
    numbers = [unique_number("20102"), unique_number("20102"), unique_number("20102")]

    scheduled = [await lab.schedule(number, AGENT, in_s=1) for number in numbers]
    done = [await lab.wait_for(cb.id, lambda cb: cb.state.is_finished, timeout_s=40) for cb in scheduled]

    assert [cb.state for cb in done] == [State.COMPLETED] * 3
    assert [len(lab.contact_invites().times(number)) for number in numbers] == [1, 1, 1]
    spans = sorted((cb.attempts[-1].started_at, cb.attempts[-1].ended_at) for cb in done)
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert ended is not None and started >= ended  # never two callback calls at once
        assert (started - ended).total_seconds() < 5.0  # the next one as soon as the agent is free
