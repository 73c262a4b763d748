"""The callback record: what a promise to call someone back is, and what happened to it so far.

Everything here is an immutable value. A change is a new ``Callback`` (``dataclasses.replace``) with a
higher ``version``, produced only by ``core.lifecycle``; the store compares versions to refuse lost
updates. Times are aware UTC datetimes; the contact's IANA zone is kept beside them for display and
calling hours, never used to store a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# Every ARI id the daemon chooses (channels, bridges) starts with this, so its own channels can be told
# from everyone else's in Asterisk: after a reconnect, the resync keeps exactly the ids with this prefix.
ARI_ID_PREFIX = "acb-"


class State(StrEnum):
    """Where a callback stands. Four live states mean a call exists; four finished states are final."""

    SCHEDULED = "scheduled"  # waiting for next_at (due time, retry or re-check), in either phase
    AGENT_RINGING = "agent_ringing"  # agent phase: the agent's device(s) ring
    CONTACT_RINGING = "contact_ringing"  # the contact is dialled (agent phase: agent on the line)
    QUEUED = "queued"  # queue phase: contact answered and waits in the failover queue for a member
    IN_PROGRESS = "in_progress"  # contact talks with the agent or a queue member
    COMPLETED = "completed"  # the contact was reached
    CANCELLED = "cancelled"  # a person (or the admin) cancelled it before it was in progress
    EXHAUSTED = "exhausted"  # every allowed attempt failed (or the number cannot be dialled)
    EXPIRED = "expired"  # the agent never took it in time and no failover queue is set

    @property
    def is_finished(self) -> bool:
        """A finished callback never changes again (the lifecycle refuses every input)."""
        return self in _FINISHED

    @property
    def is_live(self) -> bool:
        """A call exists: a crash here must be resumed (find the channels), never redialled blindly."""
        return self in _LIVE


_FINISHED = frozenset({State.COMPLETED, State.CANCELLED, State.EXHAUSTED, State.EXPIRED})
_LIVE = frozenset({State.AGENT_RINGING, State.CONTACT_RINGING, State.QUEUED, State.IN_PROGRESS})


class Phase(StrEnum):
    """Who calls: the owning agent first, then (optionally) the members of the failover queue."""

    AGENT = "agent"
    QUEUE = "queue"


class Source(StrEnum):
    """Where the request came from; kept for reports."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    DIALER = "dialer"
    HISTORY = "history"  # scheduled later from call history / the API


class FinishReason(StrEnum):
    """Why a finished callback finished; finer than the finished state it belongs to."""

    TALKED = "talked"  # completed: the contact talked to the agent or a member, then hung up
    LOST_DURING_TALK = "lost_during_talk"  # completed: Asterisk or the daemon vanished mid-talk
    CONTACT_CALLED_IN = "contact_called_in"  # completed: the contact called in and talked to an agent
    CANCELLED = "cancelled"  # cancelled: see cancelled_by
    AGENT_ATTEMPTS = "agent_attempts"  # exhausted: max attempts reached, no failover queue
    QUEUE_ATTEMPTS = "queue_attempts"  # exhausted: queue-phase max attempts reached
    UNALLOCATED = "unallocated"  # exhausted: the network says the number does not exist
    AGENT_WAIT = "agent_wait"  # expired: the agent stayed unavailable past max_agent_wait
    AGENT_MISSED = "agent_missed"  # expired: the agent missed max_missed_agent_rings rings
    NO_FAILOVER_QUEUE = "no_failover_queue"  # expired: in the queue phase, but the admin removed the queue


class Outcome(StrEnum):
    """How one attempt ended (the history's vocabulary, shared by both phases)."""

    COMPLETED = "completed"  # talked, then hung up
    AGENT_NO_ANSWER = "agent_no_answer"
    AGENT_REJECTED = "agent_rejected"
    AGENT_BUSY = "agent_busy"
    AGENT_FAILED = "agent_failed"
    AGENT_HUNG_UP = "agent_hung_up"  # the agent hung up while the contact rang, or before it was dialled
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    CONGESTION = "congestion"
    UNALLOCATED = "unallocated"
    FAILED = "failed"
    MACHINE = "answering_machine"  # answered by a machine (AMD on): not reached, retried like no answer
    QUEUE_TIMEOUT = "queue_timeout"  # no queue member answered within queue_timeout
    ABANDONED = "abandoned"  # the contact hung up while waiting in the queue
    LOST = "lost"  # daemon or Asterisk gone: the channels vanished, the outcome is unknown
    CANCELLED = "cancelled"  # a person cancelled or rescheduled during the ring


class LegRole(StrEnum):
    """Which side of an attempt a channel belongs to."""

    AGENT = "agent"
    CONTACT = "contact"
    MEMBER = "member"  # the queue member who answered (queue phase)


@dataclass(frozen=True)
class Leg:
    """One channel of an attempt.

    ``channel_id`` is chosen before originating (ARI ``channelId``) and recorded first, so whoever
    resumes after a crash can look the channel up instead of dialling again. ``local_peer_id`` is the
    ``otherChannelId`` of a Local channel pair. ``uniqueid``/``linkedid`` are what CDR/CEL rows carry.
    """

    role: LegRole
    channel_id: str | None  # None only for a queue member's channel, which Queue() creates, not us
    local_peer_id: str | None = None
    uniqueid: str | None = None
    linkedid: str | None = None
    endpoint: str | None = None  # the device or queue member that answered, e.g. PJSIP/1001


@dataclass(frozen=True)
class Attempt:
    """One try at reaching the contact (or the agent). ``outcome`` is None while the call lives."""

    id: str
    phase: Phase
    started_at: datetime
    legs: tuple[Leg, ...]
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    hangup_cause: int | None = None
    sip_code: int | None = None

    def leg(self, role: LegRole) -> Leg | None:
        """The leg playing ``role`` in this attempt, if one was placed (the first, while several of the
        agent's devices ring; the one that answered, after)."""
        return next((leg for leg in self.legs if leg.role is role), None)

    def legs_of(self, role: LegRole) -> tuple[Leg, ...]:
        """Every leg playing ``role``: several agent legs while all the agent's devices ring."""
        return tuple(leg for leg in self.legs if leg.role is role)

    @property
    def channel_ids(self) -> tuple[str, ...]:
        """Every channel id this attempt may have created (what resume looks up, what hang-up ends)."""
        ids: list[str] = []
        for leg in self.legs:
            ids.extend(channel for channel in (leg.channel_id, leg.local_peer_id) if channel)
        return tuple(ids)


@dataclass(frozen=True)
class Callback:
    """A scheduled callback.

    ``due_at`` is the time promised to the contact (a person may move it); ``next_at`` is when the
    scheduler must next act (the due time, a retry, an availability re-check or the next calling-hours
    opening). ``next_at`` is set only in the SCHEDULED state: a live callback is held by a lease, a
    finished one is never looked at again.
    """

    id: str
    contact_number: str
    agent: str
    due_at: datetime
    timezone: str
    created_by: str
    created_at: datetime
    contact_name: str = ""
    queue: str | None = None
    origin_uniqueid: str | None = None
    origin_linkedid: str | None = None
    source: Source = Source.HISTORY
    note: str = ""
    state: State = State.SCHEDULED
    phase: Phase = Phase.AGENT
    next_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    finish_reason: FinishReason | None = None
    cancelled_by: str | None = None
    called_in_agent: str | None = None  # CONTACT_CALLED_IN: the agent the contact talked to on its call
    called_in_talk_s: int = 0  # CONTACT_CALLED_IN: how long that talk was bridged, in seconds
    agent_attempts: int = 0  # contact attempts made in the agent phase
    queue_attempts: int = 0  # contact attempts made in the queue phase
    missed_agent_rings: int = 0  # agent rings not answered/rejected/failed (no contact attempt)
    held_seconds: int = 0  # time spent held (paused/disabled): added to the agent-wait deadline
    waiting_for_agent: bool = False  # scheduled to look at a busy agent again: a free agent wakes it
    attempts: tuple[Attempt, ...] = ()
    version: int = 1

    @property
    def current_attempt(self) -> Attempt | None:
        """The attempt whose call is live, if any."""
        if self.state.is_live and self.attempts:
            return self.attempts[-1]
        return None


class EventKind(StrEnum):
    """What a lifecycle event reports. Every transition emits at least one."""

    CREATED = "created"
    EDITED = "edited"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    HELD = "held"  # due while paused or disabled: nothing dialled, checked again later
    OUTSIDE_HOURS = "outside_hours"  # due outside calling hours: moved to the next opening
    AGENT_UNAVAILABLE = "agent_unavailable"  # due but the agent is busy/away: checked again later
    AGENT_RINGING = "agent_ringing"
    AGENT_ANSWERED = "agent_answered"
    AGENT_MISSED = "agent_missed"  # no answer / rejected / failed: counted, not a contact attempt
    CONTACT_RINGING = "contact_ringing"
    CONTACT_ANSWERED = "contact_answered"
    QUEUE_ENTERED = "queue_entered"
    MEMBER_ANSWERED = "member_answered"
    ATTEMPT_FAILED = "attempt_failed"  # a contact attempt ended without a talk
    CALL_LOST = "call_lost"
    RESUMED = "resumed"
    FAILOVER = "failover"  # the agent phase is over: the failover queue takes it
    COMPLETED = "completed"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Event:
    """One entry of the callbacks' event stream (read by the CEL/CDR writer and the live API feed).

    ``version`` is the callback's version after the transition, so a reader can drop duplicates and
    order events of one callback without trusting stream ids across a failover.
    """

    callback_id: str
    kind: EventKind
    at: datetime
    version: int
    attributes: dict[str, str] = field(default_factory=dict)
