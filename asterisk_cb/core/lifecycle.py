"""The callback lifecycle as a pure state machine: ``step(callback, input, now, settings) -> Transition``.

No IO and no clock: ``now`` and the effective ``settings`` are arguments, and ids are derived from the
callback id and the attempt number, so the same input always gives the same transition (and a resumer
can recompute which channels an attempt used). The outcome table is in docs/lifecycle.md; the rules in
short:

* due -> held while paused/disabled or while the contact (or the call limit) is taken by other
  callbacks' calls; agent unavailable (its devices, or another callback's call) -> re-check after
  ``reschedule_delay`` until ``max_agent_wait`` past the due time, then failover; outside calling
  hours -> the next opening; otherwise ring the agent (agent phase) or dial the contact for the
  queue (queue phase).
* agent no answer / rejected / failed / lost: not a contact attempt, but counted in
  ``missed_agent_rings`` and capped; agent busy counts like unavailable.
* every contact-leg failure (including the agent hanging up while the contact rings, a machine
  answering when AMD is on, and a call lost while the contact rings or waits in the queue) is a
  counted attempt: max attempts bounds how often a contact's phone rings. An unallocated number
  finishes at once (exhausted). The agent hanging up before the contact was dialled is no contact
  attempt but a missed ring (the contact never rang).
* a lost call during the talk is completed: the contact was reached; dialling again would duplicate.
* the contact calling in and talking to an agent completes a scheduled callback (either phase): the
  matter was talked over. A callback whose call rings or talks is never touched by it (refused).
* people may cancel, reschedule or edit until the contact is connected. A cancel, a reschedule or a
  reassignment to another agent while a leg rings hangs the ring up (the attempt ends ``cancelled``,
  nothing is counted); other edits apply to the next attempt. Once the contact talks, or waits in the
  failover queue, a cancel or reschedule is refused (``ChangeRefused``): a person's change never cuts
  a connected contact, and deferring it to the hangup would make no sense (the talk completes the
  callback; an unanswered queue wait is retried, and the person can act on it then).
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
    StopRinging,
    WaitUntil,
    WatchCall,
)
from asterisk_cb.core.model import (
    ARI_ID_PREFIX,
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
from asterisk_cb.core.settings import CallInAgent, OnCallIn, Settings


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
    """A person tried to change a callback that is finished, or whose contact is connected (talking, or
    waiting in the failover queue): the call is never cut by a change."""


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


class _Draft:
    """One transition being put together: callback changes, events and effects, in order."""

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
        queue=rules.queue_name(request.queue) if request.queue else None,
        origin_uniqueid=_optional_text(request.origin_uniqueid, "origin_uniqueid"),
        origin_linkedid=_optional_text(request.origin_linkedid, "origin_linkedid"),
        source=request.source,
        note=rules.note(request.note),
    )
    draft = _Draft(callback, now)
    draft.update(next_at=callback.due_at)
    draft.emit(
        EventKind.CREATED, agent=callback.agent, queue=callback.queue, due_at=callback.due_at.isoformat()
    )
    return draft.result(first=True)


def _optional_text(text: str | None, field: str) -> str | None:
    return (rules.safe_text(text, field, 150) or None) if text else None


# ---- dispatch -----------------------------------------------------------------------------------

Handler = Callable[[_Draft, Settings, Any], None]


def step(callback: Callback, happening: ev.Input, now: datetime, settings: Settings) -> Transition:
    """Apply one input. Raises ``IllegalTransition`` (or ``ChangeRefused`` for a person's change)."""
    person = isinstance(happening, ev.PERSON_INPUTS)
    if callback.state.is_finished:
        error = ChangeRefused if person else IllegalTransition
        raise error(callback, happening, "the callback is finished")
    handler = _HANDLERS.get((callback.state, callback.phase, type(happening)))
    if handler is None and person:
        raise ChangeRefused(callback, happening, _CONNECTED.get(callback.state, ""))
    if handler is None:
        raise IllegalTransition(callback, happening)
    current = _Draft(callback, now)
    handler(current, settings, happening)
    return current.result()


# ---- helpers ------------------------------------------------------------------------------------


def agent_wait_deadline(callback: Callback, settings: Settings) -> datetime:
    """When waiting for the agent ends: due time + max_agent_wait + time held while paused/disabled."""
    return callback.due_at + settings.max_agent_wait + timedelta(seconds=callback.held_seconds)


def _schedule(draft: _Draft, at: datetime, *, for_agent: bool = False) -> None:
    """Scheduled again at ``at``; ``for_agent``: to look at a busy agent again, which the agent
    turning free may bring forward (the executor's wake-up; ``at`` stays the safety net)."""
    draft.update(state=State.SCHEDULED, next_at=at, waiting_for_agent=for_agent)
    draft.do(WaitUntil(at))


def _retry_at(draft: _Draft, settings: Settings) -> datetime:
    """After a failed attempt: retry_interval later, moved into the contact's calling hours."""
    tz = rules.zone(draft.callback.timezone)
    return settings.calling_hours.next_opening(draft.now + settings.retry_interval, tz)


def _attempt_id(callback: Callback) -> str:
    return f"{callback.id}-{len(callback.attempts) + 1}"


def _start_attempt(draft: _Draft, phase: Phase, state: State, rings: int = 1) -> Attempt:
    """Record a new attempt with its channel ids chosen now, before anything is originated: one agent
    leg per device rung (``<attempt>-agent``, then ``-agent-2``...), so a resumer finds every ring."""
    attempt_id = _attempt_id(draft.callback)
    channel = f"{ARI_ID_PREFIX}{attempt_id}"
    contact = Leg(LegRole.CONTACT, f"{channel}-contact", local_peer_id=f"{channel}-contact-2")
    agent_ids = [f"{channel}-agent", *(f"{channel}-agent-{n}" for n in range(2, rings + 1))]
    agents = tuple(Leg(LegRole.AGENT, channel_id) for channel_id in agent_ids)
    legs = (*agents, contact) if phase is Phase.AGENT else (contact,)
    attempt = Attempt(attempt_id, phase, draft.now, legs)
    draft.update(
        state=state, next_at=None, waiting_for_agent=False, attempts=(*draft.callback.attempts, attempt)
    )
    return attempt


def _current(draft: _Draft) -> Attempt:
    return draft.callback.attempts[-1]


def _with_leg_info(attempt: Attempt, role: LegRole, info: ev.LegInfo, endpoint: str | None = None) -> Attempt:
    """Fill in what Asterisk told about a leg (ids, cause, SIP code); adds a member leg when new."""
    legs = list(attempt.legs)
    # several agent rings: the one the info is about (the executor's uniqueid is our channel id)
    same = [leg for leg in attempt.legs_of(role) if leg.channel_id and leg.channel_id == info.uniqueid]
    existing = same[0] if same else attempt.leg(role)
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


def _note_leg(draft: _Draft, role: LegRole, info: ev.LegInfo, endpoint: str | None = None) -> None:
    attempt = _with_leg_info(_current(draft), role, info, endpoint)
    draft.update(attempts=(*draft.callback.attempts[:-1], attempt))


def _end_attempt(draft: _Draft, outcome: Outcome, role: LegRole, info: ev.LegInfo = ev.NO_INFO) -> Attempt:
    """Close the live attempt with its outcome and make sure none of its channels is left up."""
    attempt = replace(_with_leg_info(_current(draft), role, info), ended_at=draft.now, outcome=outcome)
    draft.update(attempts=(*draft.callback.attempts[:-1], attempt))
    draft.do(HangUp(attempt.id, attempt.channel_ids))
    return attempt


_FINISH_KIND = {
    State.COMPLETED: EventKind.COMPLETED,
    State.CANCELLED: EventKind.CANCELLED,
    State.EXHAUSTED: EventKind.EXHAUSTED,
    State.EXPIRED: EventKind.EXPIRED,
}


def _finish(
    draft: _Draft, state: State, reason: FinishReason, by: str | None = None, **details: object
) -> None:
    """Finish with ``reason``; ``details`` go into the event beside it."""
    draft.update(
        state=state,
        finish_reason=reason,
        finished_at=draft.now,
        next_at=None,
        cancelled_by=by,
        waiting_for_agent=False,
    )
    draft.emit(_FINISH_KIND[state], reason=reason.value, by=by, **details)


_AGENT_PHASE_END = {
    FinishReason.AGENT_ATTEMPTS: State.EXHAUSTED,
    FinishReason.AGENT_WAIT: State.EXPIRED,
    FinishReason.AGENT_MISSED: State.EXPIRED,
}


def _end_agent_phase(draft: _Draft, settings: Settings, reason: FinishReason, not_before: datetime) -> None:
    """The agent phase is over: hand over to the failover queue, or finish when none is set."""
    queue = settings.failover_queue
    if queue is None:
        _finish(draft, _AGENT_PHASE_END[reason], reason)
        return
    tz = rules.zone(draft.callback.timezone)
    draft.update(phase=Phase.QUEUE, queue_attempts=0)
    at = settings.calling_hours.next_opening(not_before, tz)
    _schedule(draft, at)
    draft.emit(EventKind.FAILOVER, queue=queue, reason=reason.value, next_at=at.isoformat())


# ---- scheduler input ----------------------------------------------------------------------------


def _on_due(draft: _Draft, settings: Settings, due: ev.Due) -> None:
    callback = draft.callback
    wait = _waiting(callback, due)
    if not settings.dials:
        _hold(draft, settings)
    elif callback.phase is Phase.AGENT and (not due.agent_available or wait is ev.Waiting.AGENT):
        _agent_unavailable(draft, settings, None, wait)
    elif wait is not None:
        _hold(draft, settings, wait)
    elif (
        opening := settings.calling_hours.next_opening(draft.now, rules.zone(callback.timezone))
    ) > draft.now:
        _schedule(draft, opening)
        draft.emit(EventKind.OUTSIDE_HOURS, next_at=opening.isoformat())
    elif callback.phase is Phase.AGENT:
        _ring_agent(draft, settings, due.rings)
    elif settings.failover_queue is None:
        _finish(draft, State.EXPIRED, FinishReason.NO_FAILOVER_QUEUE)
    else:
        _dial_contact(draft, settings, _start_attempt(draft, Phase.QUEUE, State.CONTACT_RINGING))


def _waiting(callback: Callback, due: ev.Due) -> ev.Waiting | None:
    """What the callback waits for; the agent held elsewhere does not matter in the queue phase."""
    if due.waiting is ev.Waiting.AGENT and callback.phase is not Phase.AGENT:
        return None
    return due.waiting


def _hold(draft: _Draft, settings: Settings, wait: ev.Waiting | None = None) -> None:
    """Paused or disabled, or the contact (or a line) busy with other callbacks' calls: dial nothing,
    look again later, and stop the agent-wait clock meanwhile (like the time those calls talk, the
    wait is not this callback's to count)."""
    delay = settings.reschedule_delay
    draft.update(held_seconds=draft.callback.held_seconds + int(delay.total_seconds()))
    _schedule(draft, draft.now + delay)
    reason = wait.value if wait else "disabled" if not settings.enabled else "paused"
    draft.emit(EventKind.HELD, reason=reason)


def _agent_unavailable(
    draft: _Draft, settings: Settings, outcome: Outcome | None, wait: ev.Waiting | None = None
) -> None:
    """The agent is busy (its devices, or another callback's call): look again until the deadline."""
    deadline = agent_wait_deadline(draft.callback, settings)
    reason = wait and wait.value
    if draft.now >= deadline:
        draft.emit(EventKind.AGENT_UNAVAILABLE, outcome=outcome and outcome.value, reason=reason)
        _end_agent_phase(draft, settings, FinishReason.AGENT_WAIT, draft.now)
        return
    at = min(draft.now + settings.reschedule_delay, deadline)
    _schedule(draft, at, for_agent=True)
    draft.emit(
        EventKind.AGENT_UNAVAILABLE, outcome=outcome and outcome.value, reason=reason, next_at=at.isoformat()
    )


def _ring_agent(draft: _Draft, settings: Settings, rings: int) -> None:
    attempt = _start_attempt(draft, Phase.AGENT, State.AGENT_RINGING, rings)
    channel_ids = tuple(leg.channel_id for leg in attempt.legs_of(LegRole.AGENT) if leg.channel_id)
    callback = draft.callback
    draft.do(
        RingAgent(
            attempt.id,
            callback.agent,
            channel_ids,
            settings.agent_ring_timeout,
            callback.contact_number,
            callback.contact_name,
        )
    )
    draft.emit(EventKind.AGENT_RINGING, attempt=attempt.id, agent=callback.agent)


def _keep_answered_ring(draft: _Draft, answered_id: str | None) -> None:
    """Several devices rang: the one that answered (its channel id, else the first) stays the agent
    leg; the others leave the attempt, so their ends mean nothing, and stop ringing."""
    attempt = _current(draft)
    rings = attempt.legs_of(LegRole.AGENT)
    if len(rings) < 2:
        return
    kept = next((leg for leg in rings if leg.channel_id == answered_id), rings[0])
    others = tuple(leg.channel_id for leg in rings if leg is not kept and leg.channel_id)
    legs = tuple(leg for leg in attempt.legs if leg.role is not LegRole.AGENT or leg is kept)
    draft.update(attempts=(*draft.callback.attempts[:-1], replace(attempt, legs=legs)))
    draft.do(StopRinging(attempt.id, others))


def _dial_contact(draft: _Draft, settings: Settings, attempt: Attempt) -> None:
    contact_leg = attempt.leg(LegRole.CONTACT)
    assert contact_leg is not None and contact_leg.channel_id and contact_leg.local_peer_id
    draft.do(
        DialContact(
            attempt.id,
            attempt.phase,
            draft.callback.contact_number,
            contact_leg.channel_id,
            contact_leg.local_peer_id,
            settings.contact_ring_timeout,
            settings.caller_id,
            announce=settings.announce_to_agent and attempt.phase is Phase.AGENT,
        )
    )
    draft.emit(EventKind.CONTACT_RINGING, attempt=attempt.id, phase=attempt.phase.value)


# ---- agent leg ----------------------------------------------------------------------------------


def _on_agent_answered(draft: _Draft, settings: Settings, answered: ev.AgentAnswered) -> None:
    _keep_answered_ring(draft, answered.leg.uniqueid)
    _note_leg(draft, LegRole.AGENT, answered.leg)
    draft.update(state=State.CONTACT_RINGING)
    draft.emit(EventKind.AGENT_ANSWERED, attempt=_current(draft).id)
    _dial_contact(draft, settings, _current(draft))


def _on_agent_missed(draft: _Draft, settings: Settings, missed: ev.AgentMissed) -> None:
    _end_attempt(draft, missed.outcome, LegRole.AGENT, missed.leg)
    if missed.outcome is Outcome.AGENT_BUSY:
        _agent_unavailable(draft, settings, missed.outcome)
    else:
        _count_missed_ring(draft, settings, missed.outcome, missed.leg)


def _count_missed_ring(draft: _Draft, settings: Settings, outcome: Outcome, leg: ev.LegInfo) -> None:
    """No contact attempt was made, but the miss counts toward max_missed_agent_rings."""
    missed = draft.callback.missed_agent_rings + 1
    draft.update(missed_agent_rings=missed)
    draft.emit(
        EventKind.AGENT_MISSED, outcome=outcome.value, missed=missed, cause=leg.hangup_cause, sip=leg.sip_code
    )
    if missed >= settings.max_missed_agent_rings:
        _end_agent_phase(draft, settings, FinishReason.AGENT_MISSED, draft.now)
    else:  # a busy agent is looked at again when it turns free; a ring it let go, after the delay
        _schedule(draft, draft.now + settings.reschedule_delay, for_agent=outcome is Outcome.AGENT_BUSY)


def _on_agent_hung_up(draft: _Draft, settings: Settings, hung_up: ev.AgentHungUp) -> None:
    """While the contact rang, a contact attempt (their phone rang); before the contact was dialled,
    a missed ring of the agent's (counted and capped like one, so it cannot repeat forever)."""
    if hung_up.contact_dialled:
        _attempt_failed(draft, settings, Outcome.AGENT_HUNG_UP, LegRole.AGENT, hung_up.leg)
        return
    _end_attempt(draft, Outcome.AGENT_HUNG_UP, LegRole.AGENT, hung_up.leg)
    _count_missed_ring(draft, settings, Outcome.AGENT_HUNG_UP, hung_up.leg)


# ---- contact leg and queue ----------------------------------------------------------------------


def _on_contact_answered(draft: _Draft, settings: Settings, answered: ev.ContactAnswered) -> None:
    _note_leg(draft, LegRole.CONTACT, answered.leg)
    attempt = _current(draft)
    draft.emit(EventKind.CONTACT_ANSWERED, attempt=attempt.id)
    if attempt.phase is Phase.AGENT:
        draft.update(state=State.IN_PROGRESS)
        draft.do(Connect(attempt.id, attempt.channel_ids))
    elif settings.failover_queue is None:
        _end_attempt(draft, Outcome.FAILED, LegRole.CONTACT)
        _finish(draft, State.EXPIRED, FinishReason.NO_FAILOVER_QUEUE)
    else:
        contact_leg = attempt.leg(LegRole.CONTACT)
        assert contact_leg is not None and contact_leg.channel_id is not None
        draft.update(state=State.QUEUED)
        draft.do(
            EnterQueue(
                attempt.id,
                settings.failover_queue,
                contact_leg.channel_id,
                settings.queue_timeout,
                settings.queue_priority,
            )
        )
        draft.emit(EventKind.QUEUE_ENTERED, attempt=attempt.id, queue=settings.failover_queue)


def _on_contact_failed(draft: _Draft, settings: Settings, failed: ev.ContactFailed) -> None:
    _attempt_failed(draft, settings, failed.outcome, LegRole.CONTACT, failed.leg)


def _on_member_answered(draft: _Draft, settings: Settings, answered: ev.MemberAnswered) -> None:
    _note_leg(draft, LegRole.MEMBER, answered.leg, endpoint=answered.member)
    draft.update(state=State.IN_PROGRESS)
    draft.emit(EventKind.MEMBER_ANSWERED, attempt=_current(draft).id, member=answered.member)


def _on_queue_gave_up(draft: _Draft, settings: Settings, gave_up: ev.QueueGaveUp) -> None:
    _attempt_failed(draft, settings, gave_up.outcome, LegRole.CONTACT, gave_up.leg)


def _attempt_failed(
    draft: _Draft, settings: Settings, outcome: Outcome, role: LegRole, leg: ev.LegInfo
) -> None:
    """A counted contact attempt ended without a talk: retry, move on to the queue, or finish."""
    attempt = _end_attempt(draft, outcome, role, leg)
    in_agent_phase = attempt.phase is Phase.AGENT
    counter = "agent_attempts" if in_agent_phase else "queue_attempts"
    made = getattr(draft.callback, counter) + 1
    draft.update(**{counter: made})
    limit = settings.max_attempts if in_agent_phase else settings.queue_max_attempts
    retry_at = _retry_at(draft, settings)
    draft.emit(
        EventKind.ATTEMPT_FAILED,
        attempt=attempt.id,
        phase=attempt.phase.value,
        outcome=outcome.value,
        made=made,
        cause=attempt.hangup_cause,
        sip=attempt.sip_code,
    )
    if outcome is Outcome.UNALLOCATED:
        _finish(draft, State.EXHAUSTED, FinishReason.UNALLOCATED)
    elif made < limit:
        _schedule(draft, retry_at)
    elif in_agent_phase:
        _end_agent_phase(draft, settings, FinishReason.AGENT_ATTEMPTS, draft.now + settings.retry_interval)
    else:
        _finish(draft, State.EXHAUSTED, FinishReason.QUEUE_ATTEMPTS)


# ---- end of the call, crashes -------------------------------------------------------------------


def _on_call_ended(draft: _Draft, settings: Settings, ended: ev.CallEnded) -> None:
    _end_attempt(draft, Outcome.COMPLETED, LegRole.CONTACT, ended.leg)
    _finish(draft, State.COMPLETED, FinishReason.TALKED)


def _on_call_lost(draft: _Draft, settings: Settings, lost: ev.CallLost) -> None:
    """Channels gone, outcome unknown: never dial blindly again within the same ring."""
    state = draft.callback.state
    draft.emit(EventKind.CALL_LOST, attempt=_current(draft).id, state=state.value)
    if state is State.IN_PROGRESS:
        _end_attempt(draft, Outcome.LOST, LegRole.CONTACT)
        _finish(draft, State.COMPLETED, FinishReason.LOST_DURING_TALK)
    elif state is State.AGENT_RINGING:
        _end_attempt(draft, Outcome.LOST, LegRole.AGENT)
        _count_missed_ring(draft, settings, Outcome.LOST, ev.NO_INFO)
    else:
        _attempt_failed(draft, settings, Outcome.LOST, LegRole.CONTACT, ev.NO_INFO)


def _on_call_resumed(draft: _Draft, settings: Settings, resumed: ev.CallResumed) -> None:
    attempt = _current(draft)
    draft.do(WatchCall(attempt.id, attempt.channel_ids))
    draft.emit(EventKind.RESUMED, attempt=attempt.id, state=draft.callback.state.value)


# ---- the contact calls in ------------------------------------------------------------------------


def call_in_settles(callback: Callback, called_in: ev.ContactCalledIn, settings: Settings) -> bool:
    """Whether the contact's inbound talk settles ``callback`` under its settings: ``on_call_in`` is
    ``complete``, the talk lasted ``call_in_min_talk``, and it was with the owning agent (or with any
    agent, ``call_in_agent = any``). Whether the callback's state allows it is ``step``'s to say."""
    return (
        settings.on_call_in is OnCallIn.COMPLETE
        and called_in.talk_s >= settings.call_in_min_talk.total_seconds()
        and (settings.call_in_agent is CallInAgent.ANY or called_in.agent == callback.agent)
    )


def _on_contact_called_in(draft: _Draft, settings: Settings, called_in: ev.ContactCalledIn) -> None:
    """The contact talked to an agent on a call of its own: nobody needs to call it back any more."""
    agent = rules.identifier(called_in.agent, "agent")
    draft.update(called_in_agent=agent, called_in_talk_s=called_in.talk_s)
    _finish(draft, State.COMPLETED, FinishReason.CONTACT_CALLED_IN, agent=agent, talk_s=called_in.talk_s)


# ---- people -------------------------------------------------------------------------------------

# Why a person's cancel or reschedule is refused while the contact is connected (the call is not cut).
_CONNECTED = {
    State.IN_PROGRESS: "call in progress; it completes at hangup",
    State.QUEUED: "the contact is waiting in the failover queue; the call is not cut "
    "(change it once the wait is over)",
}


def _stop_live_call(draft: _Draft) -> None:
    """A ring a person's change makes pointless is hung up: the attempt ends ``cancelled``, uncounted."""
    if draft.callback.state.is_live:
        _end_attempt(draft, Outcome.CANCELLED, LegRole.CONTACT)


def _on_cancel(draft: _Draft, settings: Settings, cancel: ev.Cancel) -> None:
    _stop_live_call(draft)
    _finish(draft, State.CANCELLED, FinishReason.CANCELLED, by=rules.safe_text(cancel.by, "by", 64))


def _on_reschedule(draft: _Draft, settings: Settings, reschedule: ev.Reschedule) -> None:
    """A new promise: back to the agent phase with fresh counters (the history stays)."""
    tz = rules.zone(draft.callback.timezone)
    due_at = rules.check_due(reschedule.due_at, tz, draft.now, settings.due_limits)
    by = rules.safe_text(reschedule.by, "by", 64)
    _stop_live_call(draft)
    draft.update(
        due_at=due_at,
        phase=Phase.AGENT,
        agent_attempts=0,
        queue_attempts=0,
        missed_agent_rings=0,
        held_seconds=0,
    )
    _schedule(draft, due_at)
    draft.emit(EventKind.RESCHEDULED, due_at=due_at.isoformat(), by=by)


_EDIT_RULES: dict[str, Callable[[str], str]] = {
    "contact_number": rules.contact_number,
    "contact_name": rules.contact_name,
    "note": rules.note,
    "agent": lambda text: rules.identifier(text, "agent"),
    "timezone": lambda text: rules.zone(text).key,
}


def _on_edit(draft: _Draft, settings: Settings, edit: ev.Edit) -> None:
    """Details change for the next attempt; a call already ringing goes on as it is, except that a
    ring of the agent phase for an agent who no longer owns the callback is hung up and the callback
    is due again at once, for the new agent (no attempt counted)."""
    changes = {
        name: check(value)
        for name, check in _EDIT_RULES.items()
        if (value := getattr(edit, name)) is not None
    }
    by = rules.safe_text(edit.by, "by", 64)
    reassigned = changes.get("agent", draft.callback.agent) != draft.callback.agent
    ring_for_old_agent = reassigned and draft.callback.phase is Phase.AGENT and draft.callback.state.is_live
    if ring_for_old_agent:
        _stop_live_call(draft)
    draft.update(**changes)
    if ring_for_old_agent:
        _schedule(draft, draft.now)
    draft.emit(EventKind.EDITED, by=by, fields=",".join(sorted(changes)))


# ---- the table ----------------------------------------------------------------------------------

_PERSON: dict[type, Handler] = {ev.Cancel: _on_cancel, ev.Reschedule: _on_reschedule, ev.Edit: _on_edit}
_CALLED_IN: dict[type, Handler] = {ev.ContactCalledIn: _on_contact_called_in}
_LIVE_CALL: dict[type, Handler] = {ev.CallLost: _on_call_lost, ev.CallResumed: _on_call_resumed}

_BY_STATE: dict[tuple[State, Phase], dict[type, Handler]] = {
    (State.SCHEDULED, Phase.AGENT): {ev.Due: _on_due, **_CALLED_IN, **_PERSON},
    (State.SCHEDULED, Phase.QUEUE): {ev.Due: _on_due, **_CALLED_IN, **_PERSON},
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
        ev.Edit: _on_edit,  # details only: the waiting contact is not cut (see _CONNECTED)
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

    Not counted: time held (paused or disabled, or the contact or the lines taken by other callbacks'
    calls: it extends the agent-wait deadline by as much), talk time, and scheduler lateness per step.
    The terms, each one bounded kind of step:

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
