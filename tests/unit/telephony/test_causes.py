"""Cause mapping: what the lab's Asterisk reported for each far-end behaviour -> lifecycle outcome."""

from __future__ import annotations

import pytest

from asterisk_cb.core.inputs import AGENT_MISSES, CONTACT_FAILURES
from asterisk_cb.core.model import Outcome
from asterisk_cb.telephony.legs import LegEnd, agent_outcome, contact_outcome


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        # measured on the lab (Local/<number>@callback-outbound, see the module docstring)
        (LegEnd(cause=19), Outcome.NO_ANSWER),  # ARI dial timeout, no final Dial status
        (LegEnd(cause=17), Outcome.BUSY),
        (LegEnd(cause=21), Outcome.REJECTED),
        (LegEnd(cause=1), Outcome.UNALLOCATED),
        # other causes a carrier sends
        (LegEnd(cause=18), Outcome.NO_ANSWER),
        (LegEnd(cause=20), Outcome.NO_ANSWER),
        (LegEnd(cause=22), Outcome.UNALLOCATED),
        (LegEnd(cause=28), Outcome.UNALLOCATED),
        (LegEnd(cause=34), Outcome.CONGESTION),
        (LegEnd(cause=42), Outcome.CONGESTION),
        (LegEnd(cause=38), Outcome.CONGESTION),
        # the cause wins over a disagreeing Dial status (603 Decline gives NOANSWER + 21)
        (LegEnd(cause=21, dialstatus="NOANSWER"), Outcome.REJECTED),
        # an unspecific cause: SIP code, then Dial status decide
        (LegEnd(cause=16, sip_code=486), Outcome.BUSY),
        (LegEnd(cause=16, sip_code=404), Outcome.UNALLOCATED),
        (LegEnd(cause=16, sip_code=603), Outcome.REJECTED),
        (LegEnd(cause=16, sip_code=503), Outcome.CONGESTION),
        (LegEnd(cause=16, dialstatus="BUSY"), Outcome.BUSY),
        (LegEnd(cause=16, dialstatus="noanswer"), Outcome.NO_ANSWER),
        (LegEnd(cause=0, dialstatus="CONGESTION"), Outcome.CONGESTION),
        (LegEnd(cause=0, dialstatus="CHANUNAVAIL"), Outcome.FAILED),
        (LegEnd(cause=16), Outcome.FAILED),
        (LegEnd(), Outcome.FAILED),
    ],
)
def test_contact_outcome(end: LegEnd, expected: Outcome) -> None:
    assert contact_outcome(end) is expected


@pytest.mark.parametrize(
    ("end", "state_before", "expected"),
    [
        (LegEnd(cause=19), "NOT_INUSE", Outcome.AGENT_NO_ANSWER),
        (LegEnd(cause=21, dialstatus="NOANSWER"), "NOT_INUSE", Outcome.AGENT_REJECTED),
        # 486 from an idle phone is its reject key; from a phone already on a call it is busy
        (LegEnd(cause=17, dialstatus="BUSY"), "NOT_INUSE", Outcome.AGENT_REJECTED),
        (LegEnd(cause=17, dialstatus="BUSY"), "INUSE", Outcome.AGENT_BUSY),
        (LegEnd(cause=17), "ONHOLD", Outcome.AGENT_BUSY),
        (LegEnd(cause=17), None, Outcome.AGENT_BUSY),
        (LegEnd(cause=20), "NOT_INUSE", Outcome.AGENT_NO_ANSWER),
        (LegEnd(cause=34), "NOT_INUSE", Outcome.AGENT_FAILED),
        (LegEnd(cause=1), "NOT_INUSE", Outcome.AGENT_FAILED),
        (LegEnd(), None, Outcome.AGENT_FAILED),
    ],
)
def test_agent_outcome(end: LegEnd, state_before: str | None, expected: Outcome) -> None:
    assert agent_outcome(end, state_before) is expected


@pytest.mark.parametrize("cause", range(128))
@pytest.mark.parametrize("dialstatus", ["", "BUSY", "NOANSWER", "CONGESTION", "CHANUNAVAIL", "CANCEL"])
def test_every_cause_maps_to_an_outcome_the_lifecycle_takes(cause: int, dialstatus: str) -> None:
    """The lifecycle refuses an outcome that is not a leg failure: no cause may produce one."""
    end = LegEnd(cause=cause, dialstatus=dialstatus)
    assert contact_outcome(end) in CONTACT_FAILURES
    assert agent_outcome(end, "NOT_INUSE") in AGENT_MISSES
    assert agent_outcome(end, "INUSE") in AGENT_MISSES
