"""What every ARI step of one callback's call works with: the links, the deployment's dialplan
contexts, the callback's settings and its record as last committed."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

from asterisk_cb.core.cdr_marks import CdrMark
from asterisk_cb.core.model import Attempt, Callback
from asterisk_cb.core.settings import CallerId, Settings
from asterisk_cb.runner import DialFence
from asterisk_cb.store import LinePool
from asterisk_cb.telephony.ari import AriClient
from asterisk_cb.telephony.ari_stream import AriEventStream


@dataclasses.dataclass(frozen=True)
class ExecutorOptions:
    """``outbound_context``: the admin's dialplan context the contact is dialled through;
    ``recheck_s``: how long a live call may go without any event before its channels are looked up;
    ``queue_context``: the dialplan context whose extension <queue> puts a caller into that queue;
    ``amd_context``: the context whose extension ``s`` runs AMD() and returns into our app;
    ``lines``: the cap on simultaneous callback calls shared by every daemon (``context_max_calls``);
    ``cdr_mark``: what every channel of a callback's calls writes into its CDR (``core.cdr_marks``)."""

    outbound_context: str
    recheck_s: float = 30.0
    queue_context: str = "callback-queue"  # runs Queue(${EXTEN}) for the failover phase (dialplan/)
    amd_context: str = "callback-amd"  # AMD() for the setting amd (dialplan/callback-amd.conf)
    lines: LinePool | None = None  # every call takes a line of it (None: no cap across daemons)
    cdr_mark: CdrMark = dataclasses.field(default_factory=CdrMark)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What ``agent_leg.ring_agent`` readied for the contact's dial while the agent's phones rang:
    the attempt's bridge, and the caller ID the rung channels carry for the contact. A run that did
    not ring (a resumer) has none and does both after the answer."""

    bridge_id: str
    caller_id: CallerId


@dataclasses.dataclass
class CallContext:
    """The links and settings of one run; ``callback`` is replaced by the port after every commit,
    so every step reads attempt and channel ids from the record. ``fence``: the runner's dial fence,
    called right before every request that rings someone (its deadline goes with the request)."""

    ari: AriClient
    events: AriEventStream
    options: ExecutorOptions
    settings: Settings
    callback: Callback
    fence: DialFence
    prepared: Prepared | None = None
    # Channels this run saw destroyed (their ChannelDestroyed event): hanging up is not asked of them.
    destroyed: set[str] = dataclasses.field(default_factory=set)

    @property
    def attempt(self) -> Attempt | None:
        return self.callback.current_attempt


def seconds(span: timedelta) -> int:
    """ARI takes whole seconds; a timeout is never rounded down to nothing."""
    return max(1, math.ceil(span.total_seconds()))
