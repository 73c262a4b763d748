"""Stateful property test of the store against the lab's real Redis: random sequences of creations,
claims, holder commits, releases and a person's edits and cancellations; after every step Redis must
hold exactly what a plain in-memory model says (records, due set, leases, every index).

It guards the Lua scripts' bookkeeping: a forgotten index update or a lease left behind shows up here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from asterisk_cb.core.codec import time_to_ms
from asterisk_cb.core.model import Attempt, Callback, Leg, LegRole, Phase, State
from asterisk_cb.core.numbers import NumberPlan
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.store import CallbackLive, Claim, Store

pytestmark = pytest.mark.lab

T = TypeVar("T")
AGENTS = ["1001", "1002"]
# Entries -> the line each stands for under the German plan (three forms of one line, an extension).
LINES = {
    "+4930111": "+4930111",
    "004930111": "+4930111",
    "030111": "+4930111",
    "+4930222": "+4930222",
    "1001": "1001",
}
NUMBERS = list(LINES)
CALLS = [None, "1795690000.1", "1795690000.2"]


class StoreModel(RuleBasedStateMachine):
    redis_url = ""
    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        # Each run's own "now": "due in 600 s or more" must not already be due when a long suite ran first.
        self.now = datetime.now(UTC)
        self.loop = asyncio.new_event_loop()
        self.redis = connect(self.redis_url)
        self.store = Store(self.redis, Keys("test-" + uuid.uuid4().hex[:12], NumberPlan("49")))
        self.callbacks: dict[str, Callback] = {}
        self.claims: dict[str, Claim] = {}  # the current holder's claim, by callback id
        self.counter = 0

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.store.delete_namespace())
        self.run(self.redis.aclose())
        self.loop.close()

    @initialize()
    def start_empty(self) -> None:
        assert self.run(self.redis.exists(self.store.keys.due)) == 0

    # --- a person ------------------------------------------------------------------------------------

    @rule(
        target=ids,
        due_in=st.one_of(st.integers(-60, -1), st.integers(600, 3600)),  # due, or surely not during the run
        agent=st.sampled_from(AGENTS),
        number=st.sampled_from(NUMBERS),
        call=st.sampled_from(CALLS),
    )
    def create(self, due_in: int, agent: str, number: str, call: str | None) -> str:
        self.counter += 1
        callback = Callback(
            id=f"c{self.counter}",
            contact_number=number,
            agent=agent,
            due_at=self.now + timedelta(seconds=due_in),
            timezone="UTC",
            created_by="test",
            created_at=self.now,
            origin_uniqueid=call,
            origin_linkedid=CALLS[1],
        )
        self.run(self.store.create(callback, []))
        self.callbacks[callback.id] = callback
        return callback.id

    @rule(
        callback_id=ids, agent=st.sampled_from(AGENTS), number=st.sampled_from(NUMBERS), cancel=st.booleans()
    )
    def person_changes(self, callback_id: str, agent: str, number: str, cancel: bool) -> None:
        before = self.callbacks[callback_id]
        if before.state.is_finished:
            return  # the lifecycle refuses this before it reaches the store
        after = self.next(before, agent=agent, contact_number=number)
        if cancel:
            after = dataclasses.replace(after, state=State.CANCELLED, finished_at=self.now)
        if before.state.is_live:
            with pytest.raises(CallbackLive):
                self.run(self.store.edit(before, after, []))
            return
        self.run(self.store.edit(before, after, []))
        self.callbacks[callback_id] = after
        self.claims.pop(callback_id, None)  # a claim that was not live yet is revoked

    # --- a scheduler --------------------------------------------------------------------------------

    @rule(limit=st.integers(1, 3))
    def claim(self, limit: int) -> None:
        batch = self.run(self.store.claim(limit, "model", lease_ms=600_000))
        due = sorted(
            (time_to_ms(c.next_at or c.due_at), c.id)
            for c in self.callbacks.values()
            if c.state is State.SCHEDULED
            and c.id not in self.claims
            and time_to_ms(c.next_at or c.due_at) <= batch.server_now_ms
        )
        assert [claim.callback.id for claim in batch.claims] == [
            callback_id for _, callback_id in due[:limit]
        ]
        for claim in batch.claims:
            assert claim.callback == self.callbacks[claim.callback.id] and not claim.resume
            self.claims[claim.callback.id] = claim

    @rule(data=st.data(), outcome=st.sampled_from(["live", "retry_now", "retry_later", "finish", "release"]))
    def holder_acts(self, data: st.DataObject, outcome: str) -> None:
        if not self.claims:
            return
        claim = self.claims[data.draw(st.sampled_from(sorted(self.claims)))]
        if outcome == "release":
            assert self.run(self.store.release(claim)) is not claim.callback.state.is_live
            if not claim.callback.state.is_live:
                del self.claims[claim.callback.id]
            return
        after = self.holder_transition(claim.callback, outcome)
        self.claims[claim.callback.id] = self.run(self.store.commit(claim, after, []))
        self.callbacks[after.id] = after
        if not after.state.is_live:
            del self.claims[after.id]

    def holder_transition(self, before: Callback, outcome: str) -> Callback:
        if outcome == "live":
            leg = Leg(LegRole.AGENT, f"{before.id}-ch")
            attempt = Attempt(f"{before.id}-a", Phase.AGENT, self.now, (leg,))
            return self.next(before, state=State.AGENT_RINGING, attempts=(*before.attempts, attempt))
        if outcome == "finish":
            return self.next(before, state=State.COMPLETED, finished_at=self.now)
        retry_now = outcome == "retry_now"
        next_at = self.now - timedelta(seconds=1) if retry_now else self.now + timedelta(minutes=5)
        return self.next(before, state=State.SCHEDULED, next_at=next_at)

    @staticmethod
    def next(callback: Callback, **changes: Any) -> Callback:
        return dataclasses.replace(callback, version=callback.version + 1, **changes)

    # --- what Redis must hold ------------------------------------------------------------------------

    @invariant()
    def redis_matches_the_model(self) -> None:
        store, keys = self.store, self.store.keys
        ids = list(self.callbacks)
        assert self.run(store.get_many(ids)) == list(self.callbacks.values())
        due = {
            c.id for c in self.callbacks.values() if c.state is State.SCHEDULED and c.id not in self.claims
        }
        assert set(self.run(self.redis.zrange(keys.due, 0, -1))) == due
        assert set(self.run(self.redis.zrange(keys.leases, 0, -1))) == set(self.claims)
        self.check_indexes()

    def check_indexes(self) -> None:
        by_state: dict[State, set[str]] = defaultdict(set)
        by_agent: dict[str, set[str]] = defaultdict(set)
        by_line: dict[str, set[str]] = defaultdict(set)
        by_call: dict[str, set[str]] = defaultdict(set)
        for callback in self.callbacks.values():
            by_state[callback.state].add(callback.id)
            by_agent[callback.agent].add(callback.id)
            if not callback.state.is_finished:  # the contact index lists pending ones only
                by_line[LINES[callback.contact_number]].add(callback.id)
            for call in {callback.origin_uniqueid, callback.origin_linkedid} - {None}:
                assert call is not None
                by_call[call].add(callback.id)
        for state in State:
            assert self.run(self.store.ids_in_state(state)) == by_state[state]
        for agent in AGENTS:
            assert self.run(self.store.ids_for_agent(agent)) == by_agent[agent]
        for number in NUMBERS:
            assert self.run(self.store.ids_for_contact(number)) == by_line[LINES[number]]
        for call in CALLS[1:]:
            assert call is not None
            assert self.run(self.store.ids_for_call(call)) == by_call[call]
        stored_lines = set(self.run(self.redis.hkeys(self.store.keys.contact_index)))
        assert stored_lines == {line for line, found in by_line.items() if found}


def test_store_matches_a_plain_model(lab_redis_url: str) -> None:
    StoreModel.redis_url = lab_redis_url
    run_state_machine_as_test(
        StoreModel,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
