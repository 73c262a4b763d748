"""Stateful test of the lifecycle: random settings, random telephony outcomes, random people.

Invariants after every step: the counters never pass their caps, ``next_at`` is set exactly when
SCHEDULED, a live state has exactly one open attempt, versions rise by one per transition. A finished
callback refuses every input and stays equal. At the end, the callback is driven on with time
advancing and nobody acting (only the network and the scheduler); it must finish, and within
``lifecycle.finish_bound`` of its (last) due time, not counting time held and talk time.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle as lc
from asterisk_cb.core import rules
from asterisk_cb.core.model import Callback, FinishReason, LegRole, Outcome, Phase, State
from asterisk_cb.core.settings import Settings, parse_calling_hours

SECOND = timedelta(seconds=1)
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
HOURS = [
    "always",
    "mon-fri 09:00-18:00",
    "daily 08:00-12:00 14:00-20:00",
    "sun 10:00-11:00",
    "daily 02:00-03:00",
]
STARTS = [
    datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # Europe spring-forward night
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # Europe fall-back night
    datetime(2026, 4, 4, 14, 0, tzinfo=UTC),  # Lord Howe half-hour DST change
]


def seconds(low: int, high: int) -> st.SearchStrategy[timedelta]:
    return st.integers(low, high).map(lambda count: count * SECOND)


setting_values = st.builds(
    Settings,
    reschedule_delay=seconds(1, 900),
    max_agent_wait=seconds(0, 4 * 3600),
    retry_interval=seconds(1, 3600),
    max_attempts=st.integers(1, 4),
    max_missed_agent_rings=st.integers(1, 4),
    failover_queue=st.sampled_from([None, "overflow"]),
    queue_max_attempts=st.integers(1, 3),
    queue_timeout=seconds(1, 600),
    agent_ring_timeout=seconds(1, 60),
    contact_ring_timeout=seconds(1, 90),
    calling_hours=st.sampled_from(HOURS).map(parse_calling_hours),
)

AGENT_RING = [ev.AgentAnswered(), ev.CallLost(), ev.CallResumed()] + [
    ev.AgentMissed(o) for o in sorted(ev.AGENT_MISSES)
]
CONTACT_RING = [ev.ContactAnswered(), ev.CallLost(), ev.CallResumed()] + [
    ev.ContactFailed(o) for o in sorted(ev.CONTACT_FAILURES)
]
QUEUED = [ev.MemberAnswered("PJSIP/2001"), ev.CallLost(), ev.CallResumed()] + [
    ev.QueueGaveUp(o) for o in sorted(ev.QUEUE_FAILURES)
]
TALK = [ev.CallEnded(), ev.CallLost(), ev.CallResumed()]


class Lifecycle(RuleBasedStateMachine):
    """One callback, driven by the scheduler, the network and (sometimes) people."""

    @initialize(
        config=setting_values, zone=st.sampled_from(ZONES), start=st.sampled_from(STARTS), seed=st.integers()
    )
    def create(self, config: Settings, zone: str, start: datetime, seed: int) -> None:
        self.settings = config
        self.rng = random.Random(seed)
        self.now = start
        tz = rules.zone(zone)
        due = config.calling_hours.next_opening(start + 10 * 60 * SECOND, tz)
        request = lc.NewCallback("+4930123456", "1001", due, "agent:1001", timezone=zone)
        self.callback = lc.create(request, "cb", start, config).callback
        self.talk = timedelta(0)
        self.live_until: datetime | None = None

    # ---- the world acting -------------------------------------------------------------------------

    def choose_system_input(self, pick: random.Random) -> tuple[ev.Input, datetime]:
        """What the scheduler or the network does next, and when (live states end within their timeout)."""
        callback, config = self.callback, self.settings
        if callback.state is State.SCHEDULED:
            assert callback.next_at is not None
            waiting = pick.choice([None, None, None, *ev.Waiting])  # other callbacks' calls hold it
            due = ev.Due(pick.random() < 0.5, waiting, rings=pick.randint(1, 3))
            return due, max(self.now, callback.next_at)
        if callback.state is State.IN_PROGRESS:
            talk = pick.randint(0, 3600) * SECOND
            self.talk += talk
            return pick.choice(TALK), self.now + talk
        if self.live_until is None:
            timeout = {
                State.AGENT_RINGING: config.agent_ring_timeout,
                State.CONTACT_RINGING: config.contact_ring_timeout,
                State.QUEUED: config.queue_timeout,
            }[callback.state]
            self.live_until = self.now + timeout
        options = {State.AGENT_RINGING: AGENT_RING, State.QUEUED: QUEUED}.get(callback.state, CONTACT_RING)
        if callback.state is State.CONTACT_RINGING and callback.phase is Phase.AGENT:
            options = [*options, ev.AgentHungUp(), ev.AgentHungUp(contact_dialled=False)]
        span = max(0, int((self.live_until - self.now).total_seconds()))
        return pick.choice(options), self.now + pick.randint(0, span) * SECOND

    def apply(self, happening: ev.Input, at: datetime) -> None:
        before = self.callback
        self.now = at
        transition = lc.step(before, happening, at, self.settings)
        after = transition.callback
        assert after.version == before.version + 1
        assert transition.events and all(e.version == after.version for e in transition.events)
        if after.state is not before.state or not after.state.is_live:
            self.live_until = None
        self.callback = after

    @precondition(lambda self: not self.callback.state.is_finished)
    @rule(data=st.data())
    def world_acts(self, data: st.DataObject) -> None:
        pick = random.Random(data.draw(st.integers(), label="pick"))
        self.apply(*self.choose_system_input(pick))

    @precondition(lambda self: not self.callback.state.is_finished)
    @rule(
        kind=st.sampled_from(["cancel", "reschedule", "edit", "reassign"]),
        ahead=st.integers(0, 3 * 86400),
        zone=st.sampled_from(ZONES),
    )
    def person_acts(self, kind: str, ahead: int, zone: str) -> None:
        happening: ev.Input = {
            "cancel": ev.Cancel("boss"),
            "reschedule": ev.Reschedule(self.now + ahead * SECOND, "boss"),
            "edit": ev.Edit("boss", note=f"edited {ahead}", timezone=zone),  # calling hours move with it
            "reassign": ev.Edit("boss", agent=self.rng.choice(["1001", "1002"])),
        }[kind]
        before = self.callback
        try:
            self.apply(happening, self.now)
        except lc.ChangeRefused:
            connected = before.state is State.QUEUED and kind in {"cancel", "reschedule"}
            assert before.state is State.IN_PROGRESS or connected
            return
        except rules.ValidationError as error:
            assert kind == "reschedule" and error.field == "due_at"  # outside calling hours
            return
        if kind == "reschedule":
            self.talk = timedelta(0)
        self.check_ring_stopped(before, self.callback, new_promise=kind == "reschedule")

    @staticmethod
    def check_ring_stopped(before: Callback, after: Callback, *, new_promise: bool) -> None:
        """A change that ends a ring ends it uncounted; nothing else touches a live call. A reschedule
        is a new promise (its counters start again), even to the due time it already had."""
        stopped = before.state.is_live and not after.state.is_live
        if stopped:
            assert after.attempts[-1].outcome is Outcome.CANCELLED
            assert before.state in {State.AGENT_RINGING, State.CONTACT_RINGING}
        elif before.state.is_live:
            assert after.state is before.state
        counters = ("agent_attempts", "queue_attempts", "missed_agent_rings")
        if after.state is not State.SCHEDULED or not new_promise:
            assert [getattr(after, c) for c in counters] == [getattr(before, c) for c in counters]

    @precondition(lambda self: not self.callback.state.is_finished)
    @rule(agent=st.sampled_from(["1001", "1002"]), talk_s=st.integers(0, 3600))
    def contact_calls_in(self, agent: str, talk_s: int) -> None:
        """Settles a scheduled callback at once; a callback whose call lives is never touched."""
        before = self.callback
        try:
            self.apply(ev.ContactCalledIn(agent, talk_s), self.now)
        except lc.IllegalTransition as refused:
            assert before.state.is_live and not isinstance(refused, lc.ChangeRefused)
            assert self.callback == before
            return
        assert before.state is State.SCHEDULED
        assert self.callback.finish_reason is FinishReason.CONTACT_CALLED_IN

    @rule(paused=st.booleans())
    def admin_pauses(self, paused: bool) -> None:
        self.settings = replace(self.settings, paused=paused)

    @precondition(lambda self: self.callback.state.is_finished)
    @rule(
        happening=st.sampled_from(
            [
                ev.Due(),
                *AGENT_RING,
                *CONTACT_RING,
                *QUEUED,
                *TALK,
                ev.Cancel("x"),
                ev.ContactCalledIn("1001", 60),
            ]
        )
    )
    def finished_stays_finished(self, happening: ev.Input) -> None:
        before = self.callback
        try:
            lc.step(before, happening, self.now + SECOND, self.settings)
        except lc.IllegalTransition:
            assert self.callback == before
        else:
            raise AssertionError(f"a finished callback took {happening}")

    # ---- invariants -------------------------------------------------------------------------------

    @invariant()
    def counters_within_caps(self) -> None:
        callback, config = self.callback, self.settings
        assert callback.agent_attempts <= config.max_attempts
        assert callback.queue_attempts <= config.queue_max_attempts
        assert callback.missed_agent_rings <= config.max_missed_agent_rings
        assert callback.phase is Phase.AGENT or config.failover_queue is not None

    @invariant()
    def record_is_consistent(self) -> None:
        callback = self.callback
        assert (callback.next_at is not None) == (callback.state is State.SCHEDULED)
        if callback.waiting_for_agent:  # only a scheduled look at the agent may be brought forward
            assert (callback.state, callback.phase) == (State.SCHEDULED, Phase.AGENT)
        open_attempts = [attempt for attempt in callback.attempts if attempt.outcome is None]
        assert len(open_attempts) == (1 if callback.state.is_live else 0)
        assert callback.state.is_live == (callback.current_attempt is not None)
        assert callback.state.is_finished == (callback.finished_at is not None)
        attempt = callback.current_attempt
        if attempt is not None and callback.state is not State.AGENT_RINGING:  # answered on one device
            assert len(attempt.legs_of(LegRole.AGENT)) <= 1
        for each in callback.attempts:
            assert len(set(each.channel_ids)) == len(each.channel_ids)

    def teardown(self) -> None:
        """Nobody acts any more: the callback finishes within the stated bound."""
        if not hasattr(self, "callback"):
            return
        self.settings = replace(self.settings, paused=False)
        for _ in range(100_000):
            if self.callback.state.is_finished:
                break
            self.apply(*self.choose_system_input(self.rng))
        callback = self.callback
        assert callback.state.is_finished, f"not finished after 100000 steps: {callback}"
        assert callback.finished_at is not None
        spent = callback.finished_at - callback.due_at - callback.held_seconds * SECOND - self.talk
        assert spent <= lc.finish_bound(self.settings), (spent, lc.finish_bound(self.settings))


Lifecycle.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestLifecycle = Lifecycle.TestCase
