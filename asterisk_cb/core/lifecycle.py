"""The callback lifecycle as a pure state machine: ``step(callback, input, now, settings) -> Transition``.

No IO and no clock: ``now`` and the effective ``settings`` are arguments, and ids are derived from the
callback id and the attempt number, so the same input always gives the same transition (and a resumer
can recompute which channels an attempt used). The outcome table is in docs/lifecycle.md; the rules in
short:

* due -> held while paused/disabled; agent unavailable -> re-check after ``reschedule_delay`` until
  ``max_agent_wait`` past the due time, then failover; outside calling hours -> the next opening;
  otherwise ring the agent (agent phase) or dial the contact for the queue (queue phase).
* agent no answer / rejected / failed / lost: not a contact attempt, but counted in
  ``missed_agent_rings`` and capped; agent busy counts like unavailable.
* every contact-leg failure (including the agent hanging up while the contact rings, and a call lost
  while the contact rings or waits in the queue) is a counted attempt: max attempts bounds how often a
  contact's phone rings. An unallocated number finishes at once (exhausted).
* a lost call during the talk is completed: the contact was reached; dialling again would duplicate.
* people may cancel, reschedule or edit until the contact talks; then they are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import rules
from asterisk_cb.core.effects import (
    Connect,
    DialContact,
    Effect,
    EnterQueue,
    HangUp,
    RingAgent,
    WaitUntil,
    WatchCall,
)
from asterisk_cb.core.model import (
    Attempt,
    Callback,
    Event,
    EventKind,
    FinishReason,
    Leg,
    LegRole,
    Outcome,
    Phase,
    Source,
    State,
)
from asterisk_cb.core.settings import Settings


class LifecycleError(Exception):
    """Base of the lifecycle's refusals."""


class IllegalTransition(LifecycleError):
    """The input cannot happen in the callback's state (a bug or a stale message): nothing changes."""

    def __init__(self, callback: Callback, happening: object, reason: str = "") -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(
            f"callback {callback.id} in state {callback.state.value} ({callback.phase.value} phase) "
            f"cannot take {type(happening).__name__}{detail}"
        )
        self.state = callback.state
        self.happening = happening


class ChangeRefused(IllegalTransition):
    """A person tried to cancel, reschedule or edit a callback that is in progress or finished."""


@dataclass(frozen=True)
class Transition:
    """The new callback (version + 1), the events to append, the effects to perform in order."""

    callback: Callback
    events: tuple[Event, ...]
    effects: tuple[Effect, ...]


@dataclass(frozen=True)
class NewCallback:
    """A request to schedule a callback, as every way in (API, feature code, CLI) hands it over."""

    contact_number: str
    agent: str
    due_at: datetime
    created_by: str
    timezone: str | None = None  # None: the settings' default_timezone
    contact_name: str = ""
    queue: str | None = None
    origin_uniqueid: str | None = None
    origin_linkedid: str | None = None
    source: Source = Source.HISTORY
    note: str = ""


class _Step:
    """Accumulates one transition: callback changes, events and effects."""

    def __init__(self, callback: Callback, now: datetime) -> None:
        self.callback = callback
        self.now = now
        self._events: list[tuple[EventKind, dict[str, str]]] = []
        self._effects: list[Effect] = []

    def update(self, **changes: Any) -> None:
        self.callback = replace(self.callback, **changes)

    def emit(self, kind: EventKind, **attributes: object) -> None:
        self._events.append(
            (kind, {key: str(value) for key, value in attributes.items() if value is not None})
        )

    def do(self, effect: Effect) -> None:
        self._effects.append(effect)

    def result(self, first: bool = False) -> Transition:
        version = self.callback.version if first else self.callback.version + 1
        callback = replace(self.callback, version=version, updated_at=self.now)
        events = tuple(Event(callback.id, kind, self.now, version, attrs) for kind, attrs in self._events)
        return Transition(callback, events, tuple(self._effects))


# ---- creation -----------------------------------------------------------------------------------


def create(request: NewCallback, callback_id: str, now: datetime, settings: Settings) -> Transition:
    """Validate a request and make the new callback (version 1, SCHEDULED at its due time)."""
    if not settings.enabled:
        raise rules.ValidationError("agent", "callbacks are turned off for this agent or queue")
    tz_name = request.timezone or settings.default_timezone
    tz = rules.zone(tz_name)
    callback = Callback(
        id=rules.identifier(callback_id, "id"),
        contact_number=rules.contact_number(request.contact_number),
        agent=rules.identifier(request.agent, "agent"),
        due_at=rules.check_due(request.due_at, tz, now, settings.due_limits),
        timezone=tz.key,
        created_by=rules.safe_text(request.created_by, "created_by", 64),
        created_at=now,
        contact_name=rules.contact_name(request.contact_name),
        queue=rules.identifier(request.queue, "queue") if request.queue else None,
        origin_uniqueid=_optional_text(request.origin_uniqueid, "origin_uniqueid"),
        origin_linkedid=_optional_text(request.origin_linkedid, "origin_linkedid"),
        source=request.source,
        note=rules.note(request.note),
    )
    step = _Step(callback, now)
    step.update(next_at=callback.due_at)
    step.emit(
        EventKind.CREATED, agent=callback.agent, queue=callback.queue, due_at=callback.due_at.isoformat()
    )
    return step.result(first=True)


def _optional_text(text: str | None, field: str) -> str | None:
    return rules.safe_text(text, field, 150) or None if text else None


# ---- dispatch -----------------------------------------------------------------------------------

Handler = Callable[[_Step, Settings, Any], None]


def step(callback: Callback, happening: ev.Input, now: datetime, settings: Settings) -> Transition:
    """Apply one input. Raises ``IllegalTransition`` (or ``ChangeRefused`` for a person's change)."""
    person = isinstance(happening, ev.PERSON_INPUTS)
    if callback.state.is_finished:
        error = ChangeRefused if person else IllegalTransition
        raise error(callback, happening, "the callback is finished")
    if person and callback.state is State.IN_PROGRESS:
        raise ChangeRefused(callback, happening, "the contact is already talking")
    handler = _HANDLERS.get((callback.state, callback.phase, type(happening)))
    if handler is None:
        raise IllegalTransition(callback, happening)
    current = _Step(callback, now)
    handler(current, settings, happening)
    return current.result()


# ---- helpers ------------------------------------------------------------------------------------


def agent_wait_deadline(callback: Callback, settings: Settings) -> datetime:
    """When waiting for the agent ends: due time + max_agent_wait + time held while paused/disabled."""
    return callback.due_at + settings.max_agent_wait + timedelta(seconds=callback.held_seconds)


def _schedule(step: _Step, at: datetime) -> None:
    step.update(state=State.SCHEDULED, next_at=at)
    step.do(WaitUntil(at))


def _retry_at(step: _Step, settings: Settings) -> datetime:
    """After a failed attempt: retry_interval later, moved into the contact's calling hours."""
    tz = rules.zone(step.callback.timezone)
    return settings.calling_hours.next_opening(step.now + settings.retry_interval, tz)


def _attempt_id(callback: Callback) -> str:
    return f"{callback.id}-{len(callback.attempts) + 1}"


def _start_attempt(step: _Step, phase: Phase, state: State) -> Attempt:
    """Record a new attempt with its channel ids chosen now, before anything is originated."""
    attempt_id = _attempt_id(step.callback)
    contact = Leg(LegRole.CONTACT, f"{attempt_id}-contact", local_peer_id=f"{attempt_id}-contact-2")
    legs = (Leg(LegRole.AGENT, f"{attempt_id}-agent"), contact) if phase is Phase.AGENT else (contact,)
    attempt = Attempt(attempt_id, phase, step.now, legs)
    step.update(state=state, next_at=None, attempts=(*step.callback.attempts, attempt))
    return attempt


def _current(step: _Step) -> Attempt:
    return step.callback.attempts[-1]


def _with_leg_info(attempt: Attempt, role: LegRole, info: ev.LegInfo, endpoint: str | None = None) -> Attempt:
    """Fill in what Asterisk told about a leg (ids, cause, SIP code); adds a member leg when new."""
    legs = list(attempt.legs)
    existing = attempt.leg(role)
    base = existing or Leg(role, info.uniqueid)
    updated = replace(
        base,
        uniqueid=info.uniqueid or base.uniqueid,
        linkedid=info.linkedid or base.linkedid,
        endpoint=endpoint or base.endpoint,
    )
    if existing is None:
        legs.append(updated)
    else:
        legs[legs.index(existing)] = updated
    return replace(
        attempt,
        legs=tuple(legs),
        hangup_cause=info.hangup_cause if info.hangup_cause is not None else attempt.hangup_cause,
        sip_code=info.sip_code if info.sip_code is not None else attempt.sip_code,
    )


def _note_leg(step: _Step, role: LegRole, info: ev.LegInfo, endpoint: str | None = None) -> None:
    attempt = _with_leg_info(_current(step), role, info, endpoint)
    step.update(attempts=(*step.callback.attempts[:-1], attempt))


def _end_attempt(step: _Step, outcome: Outcome, role: LegRole, info: ev.LegInfo = ev.NO_INFO) -> Attempt:
    """Close the live attempt with its outcome and make sure none of its channels is left up."""
    attempt = replace(_with_leg_info(_current(step), role, info), ended_at=step.now, outcome=outcome)
    step.update(attempts=(*step.callback.attempts[:-1], attempt))
    step.do(HangUp(attempt.id, attempt.channel_ids))
    return attempt


_FINISH_KIND = {
    State.COMPLETED: EventKind.COMPLETED,
    State.CANCELLED: EventKind.CANCELLED,
    State.EXHAUSTED: EventKind.EXHAUSTED,
    State.EXPIRED: EventKind.EXPIRED,
}


def _finish(step: _Step, state: State, reason: FinishReason, by: str | None = None) -> None:
    step.update(state=state, finish_reason=reason, finished_at=step.now, next_at=None, cancelled_by=by)
    step.emit(_FINISH_KIND[state], reason=reason.value, by=by)


_AGENT_PHASE_END = {
    FinishReason.AGENT_ATTEMPTS: State.EXHAUSTED,
    FinishReason.AGENT_WAIT: State.EXPIRED,
    FinishReason.AGENT_MISSED: State.EXPIRED,
}


def _end_agent_phase(step: _Step, settings: Settings, reason: FinishReason, not_before: datetime) -> None:
    """The agent phase is over: hand over to the failover queue, or finish when none is set."""
    queue = settings.failover_queue
    if queue is None:
        _finish(step, _AGENT_PHASE_END[reason], reason)
        return
    tz = rules.zone(step.callback.timezone)
    step.update(phase=Phase.QUEUE, queue_attempts=0)
    at = settings.calling_hours.next_opening(not_before, tz)
    _schedule(step, at)
    step.emit(EventKind.FAILOVER, queue=queue, reason=reason.value, next_at=at.isoformat())


# ---- scheduler input ----------------------------------------------------------------------------


def _on_due(step: _Step, settings: Settings, due: ev.Due) -> None:
    callback = step.callback
    if not settings.dials:
        _hold(step, settings)
    elif callback.phase is Phase.AGENT and not due.agent_available:
        _agent_unavailable(step, settings, None)
    elif (opening := settings.calling_hours.next_opening(step.now, rules.zone(callback.timezone))) > step.now:
        _schedule(step, opening)
        step.emit(EventKind.OUTSIDE_HOURS, next_at=opening.isoformat())
    elif callback.phase is Phase.AGENT:
        _ring_agent(step, settings)
    elif settings.failover_queue is None:
        _finish(step, State.EXPIRED, FinishReason.NO_FAILOVER_QUEUE)
    else:
        _dial_contact(step, settings, _start_attempt(step, Phase.QUEUE, State.CONTACT_RINGING))


def _hold(step: _Step, settings: Settings) -> None:
    """Paused or disabled: dial nothing, look again later, and stop the agent-wait clock meanwhile."""
    delay = settings.reschedule_delay
    step.update(held_seconds=step.callback.held_seconds + int(delay.total_seconds()))
    _schedule(step, step.now + delay)
    step.emit(EventKind.HELD, reason="disabled" if not settings.enabled else "paused")


def _agent_unavailable(step: _Step, settings: Settings, outcome: Outcome | None) -> None:
    deadline = agent_wait_deadline(step.callback, settings)
    if step.now >= deadline:
        step.emit(EventKind.AGENT_UNAVAILABLE, outcome=outcome and outcome.value)
        _end_agent_phase(step, settings, FinishReason.AGENT_WAIT, step.now)
        return
    at = min(step.now + settings.reschedule_delay, deadline)
    _schedule(step, at)
    step.emit(EventKind.AGENT_UNAVAILABLE, outcome=outcome and outcome.value, next_at=at.isoformat())


def _ring_agent(step: _Step, settings: Settings) -> None:
    attempt = _start_attempt(step, Phase.AGENT, State.AGENT_RINGING)
    agent_leg = attempt.leg(LegRole.AGENT)
    assert agent_leg is not None and agent_leg.channel_id is not None
    callback = step.callback
    step.do(
        RingAgent(
            attempt.id,
            callback.agent,
            agent_leg.channel_id,
            settings.agent_ring_timeout,
            callback.contact_number,
            callback.contact_name,
        )
    )
    step.emit(EventKind.AGENT_RINGING, attempt=attempt.id, agent=callback.agent)


def _dial_contact(step: _Step, settings: Settings, attempt: Attempt) -> None:
    contact_leg = attempt.leg(LegRole.CONTACT)
    assert contact_leg is not None and contact_leg.channel_id and contact_leg.local_peer_id
    step.do(
        DialContact(
            attempt.id,
            attempt.phase,
            step.callback.contact_number,
            contact_leg.channel_id,
            contact_leg.local_peer_id,
            settings.contact_ring_timeout,
            settings.caller_id,
        )
    )
    step.emit(EventKind.CONTACT_RINGING, attempt=attempt.id, phase=attempt.phase.value)


# ---- agent leg ----------------------------------------------------------------------------------


def _on_agent_answered(step: _Step, settings: Settings, answered: ev.AgentAnswered) -> None:
    _note_leg(step, LegRole.AGENT, answered.leg)
    step.update(state=State.CONTACT_RINGING)
    step.emit(EventKind.AGENT_ANSWERED, attempt=_current(step).id)
    _dial_contact(step, settings, _current(step))


def _on_agent_missed(step: _Step, settings: Settings, missed: ev.AgentMissed) -> None:
    _end_attempt(step, missed.outcome, LegRole.AGENT, missed.leg)
    if missed.outcome is Outcome.AGENT_BUSY:
        _agent_unavailable(step, settings, missed.outcome)
    else:
        _count_missed_ring(step, settings, missed.outcome, missed.leg)


def _count_missed_ring(step: _Step, settings: Settings, outcome: Outcome, leg: ev.LegInfo) -> None:
    """No contact attempt was made, but the miss counts toward max_missed_agent_rings."""
    missed = step.callback.missed_agent_rings + 1
    step.update(missed_agent_rings=missed)
    step.emit(
        EventKind.AGENT_MISSED, outcome=outcome.value, missed=missed, cause=leg.hangup_cause, sip=leg.sip_code
    )
    if missed >= settings.max_missed_agent_rings:
        _end_agent_phase(step, settings, FinishReason.AGENT_MISSED, step.now)
    else:
        _schedule(step, step.now + settings.reschedule_delay)


def _on_agent_hung_up(step: _Step, settings: Settings, hung_up: ev.AgentHungUp) -> None:
    _attempt_failed(step, settings, Outcome.AGENT_HUNG_UP, LegRole.AGENT, hung_up.leg)


# ---- contact leg and queue ----------------------------------------------------------------------


def _on_contact_answered(step: _Step, settings: Settings, answered: ev.ContactAnswered) -> None:
    _note_leg(step, LegRole.CONTACT, answered.leg)
    attempt = _current(step)
    step.emit(EventKind.CONTACT_ANSWERED, attempt=attempt.id)
    if attempt.phase is Phase.AGENT:
        step.update(state=State.IN_PROGRESS)
        step.do(Connect(attempt.id, attempt.channel_ids))
    elif settings.failover_queue is None:
        _end_attempt(step, Outcome.FAILED, LegRole.CONTACT)
        _finish(step, State.EXPIRED, FinishReason.NO_FAILOVER_QUEUE)
    else:
        contact_leg = attempt.leg(LegRole.CONTACT)
        assert contact_leg is not None and contact_leg.channel_id is not None
        step.update(state=State.QUEUED)
        step.do(
            EnterQueue(attempt.id, settings.failover_queue, contact_leg.channel_id, settings.queue_timeout)
        )
        step.emit(EventKind.QUEUE_ENTERED, attempt=attempt.id, queue=settings.failover_queue)


def _on_contact_failed(step: _Step, settings: Settings, failed: ev.ContactFailed) -> None:
    _attempt_failed(step, settings, failed.outcome, LegRole.CONTACT, failed.leg)


def _on_member_answered(step: _Step, settings: Settings, answered: ev.MemberAnswered) -> None:
    _note_leg(step, LegRole.MEMBER, answered.leg, endpoint=answered.member)
    step.update(state=State.IN_PROGRESS)
    step.emit(EventKind.MEMBER_ANSWERED, attempt=_current(step).id, member=answered.member)


def _on_queue_gave_up(step: _Step, settings: Settings, gave_up: ev.QueueGaveUp) -> None:
    _attempt_failed(step, settings, gave_up.outcome, LegRole.CONTACT, gave_up.leg)


def _attempt_failed(
    step: _Step, settings: Settings, outcome: Outcome, role: LegRole, leg: ev.LegInfo
) -> None:
    """A counted contact attempt ended without a talk: retry, move on to the queue, or finish."""
    attempt = _end_attempt(step, outcome, role, leg)
    in_agent_phase = attempt.phase is Phase.AGENT
    counter = "agent_attempts" if in_agent_phase else "queue_attempts"
    made = getattr(step.callback, counter) + 1
    step.update(**{counter: made})
    limit = settings.max_attempts if in_agent_phase else settings.queue_max_attempts
    retry_at = _retry_at(step, settings)
    step.emit(
        EventKind.ATTEMPT_FAILED,
        attempt=attempt.id,
        phase=attempt.phase.value,
        outcome=outcome.value,
        made=made,
        cause=attempt.hangup_cause,
        sip=attempt.sip_code,
    )
    if outcome is Outcome.UNALLOCATED:
        _finish(step, State.EXHAUSTED, FinishReason.UNALLOCATED)
    elif made < limit:
        _schedule(step, retry_at)
    elif in_agent_phase:
        _end_agent_phase(step, settings, FinishReason.AGENT_ATTEMPTS, step.now + settings.retry_interval)
    else:
        _finish(step, State.EXHAUSTED, FinishReason.QUEUE_ATTEMPTS)


# ---- end of the call, crashes -------------------------------------------------------------------


def _on_call_ended(step: _Step, settings: Settings, ended: ev.CallEnded) -> None:
    _end_attempt(step, Outcome.COMPLETED, LegRole.CONTACT, ended.leg)
    _finish(step, State.COMPLETED, FinishReason.TALKED)


def _on_call_lost(step: _Step, settings: Settings, lost: ev.CallLost) -> None:
    """Channels gone, outcome unknown: never dial blindly again within the same ring."""
    state = step.callback.state
    step.emit(EventKind.CALL_LOST, attempt=_current(step).id, state=state.value)
    if state is State.IN_PROGRESS:
        _end_attempt(step, Outcome.LOST, LegRole.CONTACT)
        _finish(step, State.COMPLETED, FinishReason.LOST_DURING_TALK)
    elif state is State.AGENT_RINGING:
        _end_attempt(step, Outcome.LOST, LegRole.AGENT)
        _count_missed_ring(step, settings, Outcome.LOST, ev.NO_INFO)
    else:
        _attempt_failed(step, settings, Outcome.LOST, LegRole.CONTACT, ev.NO_INFO)


def _on_call_resumed(step: _Step, settings: Settings, resumed: ev.CallResumed) -> None:
    attempt = _current(step)
    step.do(WatchCall(attempt.id, attempt.channel_ids))
    step.emit(EventKind.RESUMED, attempt=attempt.id, state=step.callback.state.value)


# ---- people -------------------------------------------------------------------------------------


def _stop_live_call(step: _Step) -> None:
    if step.callback.state.is_live:
        _end_attempt(step, Outcome.CANCELLED, LegRole.CONTACT)


def _on_cancel(step: _Step, settings: Settings, cancel: ev.Cancel) -> None:
    _stop_live_call(step)
    _finish(step, State.CANCELLED, FinishReason.CANCELLED, by=rules.safe_text(cancel.by, "by", 64))


def _on_reschedule(step: _Step, settings: Settings, reschedule: ev.Reschedule) -> None:
    """A new promise: back to the agent phase with fresh counters (the history stays)."""
    tz = rules.zone(step.callback.timezone)
    due_at = rules.check_due(reschedule.due_at, tz, step.now, settings.due_limits)
    by = rules.safe_text(reschedule.by, "by", 64)
    _stop_live_call(step)
    step.update(
        due_at=due_at,
        phase=Phase.AGENT,
        agent_attempts=0,
        queue_attempts=0,
        missed_agent_rings=0,
        held_seconds=0,
    )
    _schedule(step, due_at)
    step.emit(EventKind.RESCHEDULED, due_at=due_at.isoformat(), by=by)


_EDIT_RULES: dict[str, Callable[[str], str]] = {
    "contact_number": rules.contact_number,
    "contact_name": rules.contact_name,
    "note": rules.note,
    "agent": lambda text: rules.identifier(text, "agent"),
    "timezone": lambda text: rules.zone(text).key,
}


def _on_edit(step: _Step, settings: Settings, edit: ev.Edit) -> None:
    """Details change for the next attempt; a call already ringing goes on as it is."""
    changes = {
        name: check(value)
        for name, check in _EDIT_RULES.items()
        if (value := getattr(edit, name)) is not None
    }
    step.update(**changes)
    step.emit(EventKind.EDITED, by=rules.safe_text(edit.by, "by", 64), fields=",".join(sorted(changes)))


# ---- the table ----------------------------------------------------------------------------------

_PERSON: dict[type, Handler] = {ev.Cancel: _on_cancel, ev.Reschedule: _on_reschedule, ev.Edit: _on_edit}
_LIVE_CALL: dict[type, Handler] = {ev.CallLost: _on_call_lost, ev.CallResumed: _on_call_resumed}

_BY_STATE: dict[tuple[State, Phase], dict[type, Handler]] = {
    (State.SCHEDULED, Phase.AGENT): {ev.Due: _on_due, **_PERSON},
    (State.SCHEDULED, Phase.QUEUE): {ev.Due: _on_due, **_PERSON},
    (State.AGENT_RINGING, Phase.AGENT): {
        ev.AgentAnswered: _on_agent_answered,
        ev.AgentMissed: _on_agent_missed,
        **_LIVE_CALL,
        **_PERSON,
    },
    (State.CONTACT_RINGING, Phase.AGENT): {
        ev.ContactAnswered: _on_contact_answered,
        ev.ContactFailed: _on_contact_failed,
        ev.AgentHungUp: _on_agent_hung_up,
        **_LIVE_CALL,
        **_PERSON,
    },
    (State.CONTACT_RINGING, Phase.QUEUE): {
        ev.ContactAnswered: _on_contact_answered,
        ev.ContactFailed: _on_contact_failed,
        **_LIVE_CALL,
        **_PERSON,
    },
    (State.QUEUED, Phase.QUEUE): {
        ev.MemberAnswered: _on_member_answered,
        ev.QueueGaveUp: _on_queue_gave_up,
        **_LIVE_CALL,
        **_PERSON,
    },
    (State.IN_PROGRESS, Phase.AGENT): {ev.CallEnded: _on_call_ended, **_LIVE_CALL},
    (State.IN_PROGRESS, Phase.QUEUE): {ev.CallEnded: _on_call_ended, **_LIVE_CALL},
}
_HANDLERS: dict[tuple[State, Phase, type], Handler] = {
    (state, phase, kind): handler
    for (state, phase), handlers in _BY_STATE.items()
    for kind, handler in handlers.items()
}


def accepts(callback: Callback) -> frozenset[type]:
    """The input types the callback's state takes (what the API may offer, what the table tests)."""
    return frozenset(
        kind for (state, phase, kind) in _HANDLERS if (state, phase) == (callback.state, callback.phase)
    )


# ---- the bound ----------------------------------------------------------------------------------


def finish_bound(settings: Settings) -> timedelta:
    """How long after its due time a callback may stay unfinished when nobody acts.

    Not counted: time held while paused or disabled (it extends the agent-wait deadline by as much),
    talk time, and scheduler lateness per step. The terms, each one bounded kind of step:

    * waiting for the agent: re-checks are capped at the deadline ``max_agent_wait`` after the due
      time, so those waits fit before it, plus the one wait that straddles it (a re-check or a
      calling-hours closure) and one closure after it before the check that fails over;
    * rings that find the agent's device busy: re-checks are ``reschedule_delay`` apart before the
      deadline and the first one at or after it fails over: ceil(wait / delay) + 1 rings;
    * each missed agent ring: its ring, the re-check delay, one closure;
    * each contact attempt (agent phase): both rings, the retry interval, one closure;
    * each queue attempt: the contact ring, the queue wait, the retry interval, one closure (the
      last attempt needs no retry, which pays for the wait before the first).
    """
    ring_agent, ring_contact = settings.agent_ring_timeout, settings.contact_ring_timeout
    closure = settings.calling_hours.longest_closure()
    recheck, retry = settings.reschedule_delay, settings.retry_interval
    busy_rings = math.ceil(settings.max_agent_wait / recheck) + 1
    agent_phase = (
        settings.max_agent_wait
        + max(recheck, closure)
        + closure
        + busy_rings * ring_agent
        + settings.max_missed_agent_rings * (ring_agent + recheck + closure)
        + settings.max_attempts * (ring_agent + ring_contact + retry + closure)
    )
    if settings.failover_queue is None:
        return agent_phase
    queue_attempt = ring_contact + settings.queue_timeout + retry + closure
    return agent_phase + settings.queue_max_attempts * queue_attempt
