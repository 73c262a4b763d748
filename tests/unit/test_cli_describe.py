"""How ``asterisk-cb show`` and ``list`` word a callback's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from asterisk_cb.cli import describe_state
from asterisk_cb.core import lifecycle
from asterisk_cb.core.inputs import Cancel, ContactCalledIn
from asterisk_cb.core.model import Callback
from asterisk_cb.core.settings import Settings

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def scheduled() -> Callback:
    request = lifecycle.NewCallback("+4930123456", "1001", T0 + timedelta(hours=1), "1001")
    return lifecycle.create(request, "cb1", T0, Settings()).callback


def test_a_callback_settled_by_the_contacts_call_says_who_and_how_long() -> None:
    done = lifecycle.step(scheduled(), ContactCalledIn("1001", 25), T0, Settings()).callback
    assert describe_state(done) == "completed: contact called in (talked to 1001 for 25 s)"


def test_other_states_name_their_reason_or_phase() -> None:
    assert describe_state(scheduled()) == "scheduled (agent phase)"
    cancelled = lifecycle.step(scheduled(), Cancel("1001"), T0, Settings()).callback
    assert describe_state(cancelled) == "cancelled (cancelled)"
