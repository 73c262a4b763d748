"""How a leg ended, in the lifecycle's words: Q.850 cause, Dial status and SIP code -> ``Outcome``.

Pure. Asterisk reports one failure in up to three ways, and they disagree: a 603 Decline on an agent
phone ends with cause 21 (rejected) but Dial status NOANSWER; a ring that ARI itself times out ends
with cause 19 and no final Dial status at all. Measured on the lab's Asterisk 22 (ARI originate to
PJSIP, and Local/<number>@callback-outbound whose dialplan ends with ``Hangup(${HANGUPCAUSE})``):

    far end          agent leg (PJSIP)                 contact leg (Local ;1)
    ring timeout     cause 19, no final dialstatus     cause 19, no final dialstatus
    486 Busy         cause 17, dialstatus BUSY         cause 17
    603 Decline      cause 21, dialstatus NOANSWER     cause 21
    404 Not Found    -                                 cause 1
    unregistered     originate answers HTTP 500        -

So the cause decides when it is specific, then the SIP code (when a caller could read it), then the
Dial status; anything left is FAILED.

An agent phone's "reject" key sends 486 Busy on many phones, so for the agent leg a cause 17 is a busy
agent only if the device was already on a call before we rang it; from an idle device it is a decline.
"""

from __future__ import annotations

from dataclasses import dataclass

from asterisk_cb.core.model import Outcome
from asterisk_cb.telephony.availability import ON_A_CALL

# Q.850 causes (Asterisk's AST_CAUSE_*).
CAUSE_UNALLOCATED = 1
CAUSE_NORMAL_CLEARING = 16
CAUSE_BUSY = 17
CAUSE_NO_USER_RESPONSE = 18
CAUSE_NO_ANSWER = 19
CAUSE_SUBSCRIBER_ABSENT = 20
CAUSE_REJECTED = 21
CAUSE_NUMBER_CHANGED = 22
CAUSE_INVALID_NUMBER_FORMAT = 28

_CONTACT_BY_CAUSE: dict[int, Outcome] = {
    CAUSE_UNALLOCATED: Outcome.UNALLOCATED,
    CAUSE_NUMBER_CHANGED: Outcome.UNALLOCATED,
    CAUSE_INVALID_NUMBER_FORMAT: Outcome.UNALLOCATED,
    CAUSE_BUSY: Outcome.BUSY,
    CAUSE_NO_USER_RESPONSE: Outcome.NO_ANSWER,
    CAUSE_NO_ANSWER: Outcome.NO_ANSWER,
    CAUSE_SUBSCRIBER_ABSENT: Outcome.NO_ANSWER,  # phone off or out of coverage: try again later
    CAUSE_REJECTED: Outcome.REJECTED,
    34: Outcome.CONGESTION,  # no circuit/channel available
    38: Outcome.CONGESTION,  # network out of order
    41: Outcome.CONGESTION,  # temporary failure
    42: Outcome.CONGESTION,  # switching equipment congestion
    44: Outcome.CONGESTION,  # requested channel not available
    47: Outcome.CONGESTION,  # resource unavailable
}

_CONTACT_BY_SIP: dict[int, Outcome] = {
    404: Outcome.UNALLOCATED,
    484: Outcome.UNALLOCATED,
    604: Outcome.UNALLOCATED,
    486: Outcome.BUSY,
    600: Outcome.BUSY,
    408: Outcome.NO_ANSWER,
    480: Outcome.NO_ANSWER,
    603: Outcome.REJECTED,
    500: Outcome.CONGESTION,
    502: Outcome.CONGESTION,
    503: Outcome.CONGESTION,
}

_CONTACT_BY_DIALSTATUS: dict[str, Outcome] = {
    "BUSY": Outcome.BUSY,
    "NOANSWER": Outcome.NO_ANSWER,
    "CONGESTION": Outcome.CONGESTION,
    "CHANUNAVAIL": Outcome.FAILED,
}

# Contact outcome -> agent-leg outcome. Busy needs the device state (see agent_outcome).
_AGENT_BY_CONTACT_OUTCOME: dict[Outcome, Outcome] = {
    Outcome.NO_ANSWER: Outcome.AGENT_NO_ANSWER,
    Outcome.REJECTED: Outcome.AGENT_REJECTED,
}


@dataclass(frozen=True)
class LegEnd:
    """What Asterisk said when a leg ended: ``cause`` from ChannelDestroyed, the last non-empty Dial
    status seen for the channel, the SIP code when one was read (e.g. HANGUPCAUSE on a PJSIP leg)."""

    cause: int | None = None
    dialstatus: str = ""
    sip_code: int | None = None


def contact_outcome(end: LegEnd) -> Outcome:
    """The lifecycle outcome of a contact leg that ended without being answered."""
    if end.cause in _CONTACT_BY_CAUSE:
        return _CONTACT_BY_CAUSE[end.cause]
    if end.sip_code in _CONTACT_BY_SIP:
        return _CONTACT_BY_SIP[end.sip_code]
    return _CONTACT_BY_DIALSTATUS.get(end.dialstatus.upper(), Outcome.FAILED)


def agent_outcome(end: LegEnd, device_state_before: str | None) -> Outcome:
    """The lifecycle outcome of an agent ring that ended unanswered.

    ``device_state_before``: the agent device's state just before we rang it (None when unknown, in
    which case a busy signal is taken at its word: busy only re-checks later, it burns nothing).
    """
    outcome = contact_outcome(end)
    if outcome is Outcome.BUSY:
        idle_before = device_state_before is not None and device_state_before not in ON_A_CALL
        return Outcome.AGENT_REJECTED if idle_before else Outcome.AGENT_BUSY
    return _AGENT_BY_CONTACT_OUTCOME.get(outcome, Outcome.AGENT_FAILED)
