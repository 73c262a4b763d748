"""What the executor must do after a transition: plain data, performed in order.

The transition's callback is persisted first (with the attempt id and channel ids already in its
history), then the effects are carried out, so a crash in between leaves enough on record for the
resumer to find the channels instead of dialling again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from asterisk_cb.core.model import Phase
from asterisk_cb.core.settings import CallerId


@dataclass(frozen=True)
class RingAgent:
    """Originate the agent's ready devices into the Stasis app at once, one per id of ``channel_ids``
    (as many as ``Due.rings`` said; the first is ``<attempt>-agent``, then ``-agent-2``...)."""

    attempt_id: str
    agent: str
    channel_ids: tuple[str, ...]
    timeout: timedelta
    contact_number: str
    contact_name: str


@dataclass(frozen=True)
class StopRinging:
    """The agent answered on one device: end the rings of its other devices (answered elsewhere)."""

    attempt_id: str
    channel_ids: tuple[str, ...]


@dataclass(frozen=True)
class DialContact:
    """Originate ``Local/<number>@<outbound context>`` with ``channel_id``/``local_peer_id``.

    Agent phase: bridge it with the agent leg as soon as it exists so the agent hears progress; with
    ``announce``, first play the agent a beep and ``number`` digit by digit (any key skips). Queue
    phase: on answer it is placed in the failover queue (``EnterQueue`` follows ``ContactAnswered``).
    """

    attempt_id: str
    phase: Phase
    number: str
    channel_id: str
    local_peer_id: str
    timeout: timedelta
    caller_id: CallerId
    announce: bool = False


@dataclass(frozen=True)
class Connect:
    """Agent phase: the contact answered; make sure agent and contact share one bridge."""

    attempt_id: str
    channel_ids: tuple[str, ...]


@dataclass(frozen=True)
class EnterQueue:
    """Queue phase: the contact answered; send it into ``queue`` to wait at most ``timeout`` for a member.

    ``priority`` is the Queue() entry priority (QUEUE_PRIO): 0 queues the contact behind callers
    already waiting; a higher value lets callbacks go first when the admin wants that.
    """

    attempt_id: str
    queue: str
    channel_id: str
    timeout: timedelta
    priority: int = 0


@dataclass(frozen=True)
class HangUp:
    """End whatever is left of the attempt's channels (a channel already gone is not an error)."""

    attempt_id: str
    channel_ids: tuple[str, ...]


@dataclass(frozen=True)
class WatchCall:
    """Resume following a live call found after a crash; nothing is dialled."""

    attempt_id: str
    channel_ids: tuple[str, ...]


@dataclass(frozen=True)
class WaitUntil:
    """Nothing to dial now: the scheduler hands the callback back at ``at`` (its ``next_at``)."""

    at: datetime


Effect = RingAgent | StopRinging | DialContact | Connect | EnterQueue | HangUp | WatchCall | WaitUntil
