"""Many callbacks due at the same instant on the real lab: each is carried through, no agent ever has
two callback calls at once, no contact is dialled twice."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from datetime import datetime

import pytest
from callback_lab import AGENTS, Lab, unique_number, until_equal

from asterisk_cb.core.model import State

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PER_AGENT = 3


async def test_callbacks_due_together_are_all_completed_one_call_per_agent_at_a_time(lab: Lab) -> None:
    for agent in AGENTS:
        lab.phone(agent, "answer")
    await lab.set(reschedule_delay="1s")
    numbers = {agent: [unique_number("20101") for _ in range(PER_AGENT)] for agent in AGENTS}

    scheduled = [await lab.schedule(number, agent, in_s=1) for agent in AGENTS for number in numbers[agent]]
    done = await asyncio.gather(
        *(lab.wait_for(cb.id, lambda cb: cb.state.is_finished, timeout_s=60) for cb in scheduled)
    )

    assert [cb.state for cb in done] == [State.COMPLETED] * len(scheduled)
    for agent in AGENTS:
        assert [len(lab.contact_invites().times(number)) for number in numbers[agent]] == [1] * PER_AGENT
    spans: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for cb in done:
        spans[cb.agent].extend((attempt.started_at, attempt.ended_at) for attempt in cb.attempts)
    for agent_spans in spans.values():
        ordered = sorted(agent_spans)
        for (_, end), (next_start, _) in itertools.pairwise(ordered):
            assert end is not None and next_start >= end  # never two callback calls at once
    await until_equal(lab.our_channels, [])  # the end's hang-ups follow its commit
