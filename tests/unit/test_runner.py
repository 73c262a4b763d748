"""The claim runner with a fake call port and a store stand-in: the rule "commit, fenced, before
effects", follow-ups of failed effects, the call's locks, lease loss and a person's change requests.
No telephony here: the ARI port is tested against the fake ARI (tests/unit/telephony) and the lab."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle
from asterisk_cb.core.effects import Effect, RingAgent
from asterisk_cb.core.model import Callback, Event, Outcome, Phase, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.runner import FENCE_MARGIN_S, ChangeNotice, ClaimRunner
from asterisk_cb.store import CallLocks, Claim, LeaseExpired, LeaseLost, LinePool, StaleToken

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SETTINGS = Settings()
CANCEL = ev.ChangeRequest("r1", ev.Cancel("supervisor"))


class Journal:
    """What happened, in order, across the store and the port: the order is what is tested."""

    def __init__(self) -> None:
        self.lines: list[str] = []


class FakeStore:
    """The holder's side of the store: fenced commits (``lose_lease_at`` refuses the n-th), locks."""

    def __init__(self, journal: Journal, *, waiting: ev.Waiting | None = None) -> None:
        self.journal = journal
        self.waiting = waiting
        self.committed: list[Callback] = []
        self.pending: ev.ChangeRequest | None = None
        self.hand_over_at: State | None = None  # the commit into this state hands ``pending`` over
        self.lose_lease_at: int | None = None
        self.locks_released: list[CallLocks] = []
        self.renewal: Exception | None = None  # what a renewal raises (None: granted)
        self.renewed: list[int] = []

    async def commit(
        self,
        claim: Claim,
        after: Callback,
        events: Sequence[Event],
        *,
        applying: ev.ChangeRequest | None = None,
    ) -> Claim:
        if self.lose_lease_at == len(self.committed):
            raise LeaseExpired("lease ran out")
        assert after.version == claim.callback.version + 1
        self.committed.append(after)
        self.journal.lines.append(f"commit {after.state.value}" + (" applying" if applying else ""))
        if applying is not None:
            self.pending = None
        handed = self.pending if self.hand_over_at in (None, after.state) else None
        return dataclasses.replace(claim, callback=after, request=handed)

    async def renew(self, claim: Claim, lease_ms: int) -> Claim:
        if self.renewal is not None:
            raise self.renewal
        self.renewed.append(lease_ms)
        return claim

    async def settle(self, claim: Claim, request: ev.ChangeRequest, refusal: str) -> Claim:
        self.journal.lines.append(f"refused {refusal}")
        self.pending = None
        return dataclasses.replace(claim, request=None)

    async def pending_request(self, callback_id: str) -> ev.ChangeRequest | None:
        return self.pending

    async def take_call_locks(self, claim: Claim, locks: CallLocks) -> ev.Waiting | None:
        self.journal.lines.append("locks" if self.waiting is None else f"locks busy: {self.waiting.value}")
        return self.waiting

    async def release_call_locks(self, claim: Claim, locks: CallLocks) -> int:
        self.locks_released.append(locks)
        return 1


class FakePort:
    """A call port whose signals are scripted; performed effects answer from ``follow_ups``."""

    def __init__(self, journal: Journal, *, rings: int | None = 1) -> None:
        self.journal = journal
        self.rings = rings
        self.signals: list[ev.Input | ChangeNotice | None] = []
        self.follow_ups: dict[type, ev.Input] = {}
        self.resumed: tuple[ev.Input, ...] = (ev.CallResumed(),)
        self.screening = False
        self.closed = False
        self.reachable = True

    def ready_rings(self, callback: Callback) -> int | None:
        return self.rings

    async def resume(self, callback: Callback) -> tuple[ev.Input, ...]:
        self.journal.lines.append("resume")
        return self.resumed

    async def next_signal(self, callback: Callback) -> ev.Input | ChangeNotice | None:
        assert self.signals, f"the run waited for a signal in state {callback.state.value}"
        return self.signals.pop(0)

    async def committed(self, callback: Callback, happening: ev.Input) -> None:
        self.journal.lines.append(f"told {type(happening).__name__}")

    async def perform(self, callback: Callback, effect: Effect) -> ev.Input | None:
        self.journal.lines.append(f"perform {type(effect).__name__}")
        return self.follow_ups.pop(type(effect), None)

    async def close(self) -> None:
        self.closed = True


def _claim(
    *, resume: bool = False, state: State = State.SCHEDULED, request: ev.ChangeRequest | None = None
) -> Claim:
    new = lifecycle.NewCallback("0612345678", "1001", NOW + timedelta(minutes=1), "test")
    callback = lifecycle.create(new, "acb-r1", NOW - timedelta(minutes=1), SETTINGS).callback
    return Claim(dataclasses.replace(callback, state=state), 7, resume, "test", 0, request)


def _runner(store: FakeStore, port: FakePort, claim: Claim, lines: LinePool | None = None) -> ClaimRunner:
    async def settings_for(_: Callback) -> Settings:
        return SETTINGS

    return ClaimRunner(
        store,
        claim,
        settings_for=settings_for,
        open_call=lambda _callback, _settings, _fence: port,
        clock=lambda: NOW,
        lines=lines,
    )


async def _run(store: FakeStore, port: FakePort, claim: Claim, lines: LinePool | None = None) -> ClaimRunner:
    runner = _runner(store, port, claim, lines)
    try:
        await runner.run()
    finally:
        await runner.close()
    return runner


async def test_every_effect_is_performed_only_after_its_transition_is_committed() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)
    port.signals = [ev.AgentAnswered(), ev.ContactAnswered(), ev.CallEnded()]
    await _run(store, port, _claim())

    assert [callback.state for callback in store.committed] == [
        State.AGENT_RINGING,
        State.CONTACT_RINGING,
        State.IN_PROGRESS,
        State.COMPLETED,
    ]
    assert journal.lines[:6] == [
        "locks",
        "commit agent_ringing",
        "told Due",
        "perform RingAgent",
        "commit contact_ringing",
        "told AgentAnswered",
    ]
    for n, line in enumerate(journal.lines):
        if line.startswith("perform"):
            assert any(earlier.startswith("commit") for earlier in journal.lines[:n])
    assert port.closed


async def test_an_unavailable_agent_waits_without_taking_locks_or_ringing() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal, rings=None)
    await _run(store, port, _claim())

    assert [callback.state for callback in store.committed] == [State.SCHEDULED]
    assert store.committed[0].next_at == NOW + SETTINGS.reschedule_delay
    assert not [line for line in journal.lines if line.startswith(("perform Ring", "locks"))]


async def test_locks_held_by_another_call_make_it_wait_and_ring_nobody() -> None:
    journal = Journal()
    store, port = FakeStore(journal, waiting=ev.Waiting.AGENT), FakePort(journal)
    await _run(store, port, _claim())

    assert store.committed[-1].state is State.SCHEDULED
    assert "perform RingAgent" not in journal.lines
    assert store.locks_released == []  # nothing was taken


async def test_a_failed_effect_is_applied_as_its_follow_up_and_drops_what_was_pending() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)
    port.follow_ups[RingAgent] = ev.AgentMissed(Outcome.AGENT_FAILED)
    await _run(store, port, _claim())

    assert [callback.state for callback in store.committed] == [State.AGENT_RINGING, State.SCHEDULED]
    assert store.committed[-1].attempts[-1].outcome is Outcome.AGENT_FAILED
    assert store.locks_released == [CallLocks("1001", "0612345678")]


async def test_a_lost_lease_stops_the_run_before_any_effect() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)
    store.lose_lease_at = 0
    with pytest.raises(LeaseExpired):
        await _run(store, port, _claim())

    assert not [line for line in journal.lines if line.startswith("perform")]
    assert port.closed  # the call's side is let go of all the same


async def test_a_line_taken_by_the_claim_is_given_back_even_when_settings_cannot_be_read() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)

    async def unreadable(_: Callback) -> Settings:
        raise ConnectionError("Redis went away")

    lines = LinePool("trunk", 2)
    runner = ClaimRunner(
        store, _claim(), settings_for=unreadable, open_call=lambda *_: port, clock=lambda: NOW, lines=lines
    )
    with pytest.raises(ConnectionError):
        await runner.run()
    await runner.close()
    assert store.locks_released == [CallLocks("1001", "0612345678", lines)]
    assert not port.closed  # never opened


async def test_a_resumed_call_retakes_its_locks_and_follows_the_port_never_dials() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)
    ringing = lifecycle.step(_claim().callback, ev.Due(rings=1), NOW, SETTINGS).callback
    claim = dataclasses.replace(_claim(resume=True), callback=ringing)
    port.resumed = (ev.CallLost(),)
    await _run(store, port, claim)

    assert journal.lines[:3] == ["locks", "resume", "commit scheduled"]  # the lost ring, counted
    assert not [line for line in journal.lines if line.startswith(("perform Ring", "perform Dial"))]


async def test_a_cancel_noticed_while_the_agent_rings_hangs_up_and_ends_the_run() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)
    port.signals = [ChangeNotice()]
    store.pending = CANCEL
    store.hand_over_at = State.CANCELLED  # nothing handed by the first commit: the notice brings it
    await _run(store, port, _claim())

    assert [callback.state for callback in store.committed] == [State.AGENT_RINGING, State.CANCELLED]
    assert journal.lines[-2:] == ["commit cancelled applying", "perform HangUp"]


async def test_a_cancel_handed_over_by_a_commit_keeps_only_the_hang_ups_of_that_commit() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)
    port.signals = [ev.AgentAnswered()]
    store.pending, store.hand_over_at = CANCEL, State.CONTACT_RINGING
    await _run(store, port, _claim())

    assert [callback.state for callback in store.committed][-1] is State.CANCELLED
    performed = [line for line in journal.lines if line.startswith("perform")]
    assert "perform DialContact" not in performed  # the contact is never dialled once cancelled
    assert performed[-1] == "perform HangUp"


async def test_a_change_a_holder_died_before_applying_is_applied_first_and_the_run_ends() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)
    store.pending = CANCEL
    await _run(store, port, _claim(request=CANCEL))

    assert [callback.state for callback in store.committed] == [State.CANCELLED]
    assert "perform RingAgent" not in journal.lines


async def test_a_change_the_lifecycle_refuses_is_settled_with_the_reason() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)
    past = ev.ChangeRequest("r2", ev.Reschedule(due_at=NOW - timedelta(hours=1), by="supervisor"))
    store.pending = past
    await _run(store, port, _claim(request=past))

    assert store.committed == []
    assert journal.lines[0].startswith("refused ")


async def test_a_change_waits_while_the_port_screens_an_answered_contact() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)
    port.screening = True
    port.signals = [ChangeNotice(), ev.AgentAnswered(), ev.ContactAnswered(), ev.CallEnded()]
    store.pending, store.hand_over_at = CANCEL, State.COMPLETED
    await _run(store, port, _claim())

    assert not [line for line in journal.lines if "applying" in line or line.startswith("refused")]
    assert store.pending == CANCEL  # still on record for the verdict's commit


async def test_the_dial_fence_renews_the_lease_and_gives_the_requests_deadline_within_it() -> None:
    store = FakeStore(Journal())
    claim = dataclasses.replace(_claim(), lease_ms=4000)
    runner = _runner(store, FakePort(Journal()), claim)
    before = time.monotonic()
    deadline = await runner.dial_fence()
    after = time.monotonic()

    assert store.renewed == [4000]
    assert before + 4.0 - FENCE_MARGIN_S <= deadline <= after + 4.0 - FENCE_MARGIN_S


@pytest.mark.parametrize(
    "refusal",
    [StaleToken("another daemon claimed it"), LeaseExpired("ran out"), RedisConnectionError("gone")],
    ids=["taken over", "expired", "Redis unreachable"],
)
async def test_the_dial_fence_refuses_when_the_lease_cannot_be_confirmed(refusal: Exception) -> None:
    store = FakeStore(Journal())
    store.renewal = refusal
    runner = _runner(store, FakePort(Journal()), _claim())
    with pytest.raises(LeaseLost):
        await runner.dial_fence()


async def test_a_queue_phase_callback_waits_while_the_pbx_is_unreachable_and_dials_nobody() -> None:
    journal = Journal()
    store, port = FakeStore(journal), FakePort(journal)
    port.reachable = False
    claim = _claim()
    await _run(
        store,
        port,
        dataclasses.replace(claim, callback=dataclasses.replace(claim.callback, phase=Phase.QUEUE)),
    )

    [held] = store.committed
    assert (held.state, held.phase, held.queue_attempts) == (State.SCHEDULED, Phase.QUEUE, 0)
    assert not [line for line in journal.lines if line.startswith(("perform Dial", "locks"))]
