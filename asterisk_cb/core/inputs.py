"""What can happen to a callback: the inputs of ``core.lifecycle.step``.

Four sources: the scheduler (``Due``, with the executor's look at the agent and at the locks other
callbacks hold), the telephony executor (leg outcomes, ``CallLost``, ``CallResumed``), people
(``Cancel``, ``Reschedule``, ``Edit``) and the contact's own inbound call (``ContactCalledIn``).
Leg outcomes carry the hangup cause, SIP code and the leg's uniqueid/linkedid when the executor knows
them, so the history can link CDRs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from asterisk_cb.core.model import Outcome

AGENT_MISSES = frozenset(
    {Outcome.AGENT_NO_ANSWER, Outcome.AGENT_REJECTED, Outcome.AGENT_BUSY, Outcome.AGENT_FAILED}
)
CONTACT_FAILURES = frozenset(
    {
        Outcome.NO_ANSWER,
        Outcome.BUSY,
        Outcome.REJECTED,
        Outcome.CONGESTION,
        Outcome.UNALLOCATED,
        Outcome.FAILED,
        Outcome.MACHINE,
    }
)
QUEUE_FAILURES = frozenset({Outcome.QUEUE_TIMEOUT, Outcome.ABANDONED})


class Waiting(StrEnum):
    """Why a due callback must wait: the executor could not take a lock (or a line) that other
    callbacks hold while their calls live, or cannot reach the PBX. The value is what the history
    says. Like the time those calls talk, the wait is not this callback's: it burns no attempt."""

    AGENT = "agent in another callback"
    CONTACT = "contact in another callback"
    CALL_LIMIT = "call limit reached"
    PBX = "PBX unreachable"  # ARI down: a call placed now could not be followed (nobody is dialled)


@dataclass(frozen=True)
class Due:
    """The scheduler claimed the callback at its ``next_at``; ``agent_available`` is the executor's view
    of the agent's devices; ``waiting`` says what other callbacks hold that this one needs (None: nothing).
    The agent matters in the agent phase only, so the queue phase ignores both about the agent.
    ``rings``: how many of the agent's devices the executor will ring at once (each gets its own
    channel id)."""

    agent_available: bool = True
    waiting: Waiting | None = None
    rings: int = 1

    def __post_init__(self) -> None:
        if self.rings < 1:
            raise ValueError(f"rings must be at least 1, not {self.rings}")


@dataclass(frozen=True)
class LegInfo:
    """What Asterisk said about a leg when it ended or answered (any part may be unknown)."""

    hangup_cause: int | None = None
    sip_code: int | None = None
    uniqueid: str | None = None
    linkedid: str | None = None


NO_INFO = LegInfo()


@dataclass(frozen=True)
class AgentAnswered:
    """The agent picked up the callback ring."""

    leg: LegInfo = NO_INFO


@dataclass(frozen=True)
class AgentMissed:
    """The agent leg ended unanswered: no answer, rejected, busy (device in use) or failed."""

    outcome: Outcome
    leg: LegInfo = NO_INFO

    def __post_init__(self) -> None:
        if self.outcome not in AGENT_MISSES:
            raise ValueError(f"{self.outcome} is not an agent-leg miss")


@dataclass(frozen=True)
class AgentHungUp:
    """The agent hung up while the contact was still ringing, or, with ``contact_dialled`` false,
    right after answering, before the contact's channel was dialled (the contact's phone never rang)."""

    leg: LegInfo = NO_INFO
    contact_dialled: bool = True


@dataclass(frozen=True)
class ContactAnswered:
    """The contact picked up."""

    leg: LegInfo = NO_INFO


@dataclass(frozen=True)
class ContactFailed:
    """The contact leg ended unanswered (no answer, busy, rejected, congestion, unallocated, failed), or
    was answered by a machine (AMD on): not reached either."""

    outcome: Outcome
    leg: LegInfo = NO_INFO

    def __post_init__(self) -> None:
        if self.outcome not in CONTACT_FAILURES:
            raise ValueError(f"{self.outcome} is not a contact-leg failure")


@dataclass(frozen=True)
class MemberAnswered:
    """Queue phase: a member of the failover queue took the waiting contact."""

    member: str
    leg: LegInfo = NO_INFO


@dataclass(frozen=True)
class QueueGaveUp:
    """Queue phase: nobody answered within queue_timeout, or the contact hung up while waiting."""

    outcome: Outcome
    leg: LegInfo = NO_INFO

    def __post_init__(self) -> None:
        if self.outcome not in QUEUE_FAILURES:
            raise ValueError(f"{self.outcome} is not a queue-phase failure")


@dataclass(frozen=True)
class CallEnded:
    """The talk is over: either side hung up after the contact answered."""

    leg: LegInfo = NO_INFO


@dataclass(frozen=True)
class CallLost:
    """The call's channels are gone and its outcome is unknown (daemon or Asterisk was down)."""


@dataclass(frozen=True)
class CallResumed:
    """After a crash or lease takeover, the recorded channels were found alive: keep following them."""


@dataclass(frozen=True)
class Cancel:
    """A person cancels the callback."""

    by: str


@dataclass(frozen=True)
class Reschedule:
    """A person moves the due time (a new promise: counters start again)."""

    due_at: datetime
    by: str


@dataclass(frozen=True)
class Edit:
    """A person changes details; ``None`` leaves a field as it is. Applies from the next attempt on."""

    by: str
    contact_number: str | None = None
    contact_name: str | None = None
    note: str | None = None
    agent: str | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class ContactCalledIn:
    """The contact called in and was bridged with ``agent`` for ``talk_s`` seconds: the matter the
    callback promised to call about was talked over. Whether this talk qualifies is the settings'
    call (``lifecycle.call_in_settles``); the lifecycle completes only a callback no call holds."""

    agent: str
    talk_s: int

    def __post_init__(self) -> None:
        if self.talk_s < 0:
            raise ValueError(f"talk_s must not be negative, not {self.talk_s}")


Input = (
    Due
    | AgentAnswered
    | AgentMissed
    | AgentHungUp
    | ContactAnswered
    | ContactFailed
    | MemberAnswered
    | QueueGaveUp
    | CallEnded
    | CallLost
    | CallResumed
    | Cancel
    | Reschedule
    | Edit
    | ContactCalledIn
)
PersonInput = Cancel | Reschedule | Edit
PERSON_INPUTS = (Cancel, Reschedule, Edit)


@dataclass(frozen=True)
class ChangeRequest:
    """A person's change of a callback whose call is live, waiting for the lease holder to apply it
    (only the holder can hang the ring up). ``id`` names the request, so its outcome can be awaited."""

    id: str
    change: PersonInput
