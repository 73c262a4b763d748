"""The CDR mark and the acb_* values of each leg: what a report filters on and reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from asterisk_cb.core.cdr_marks import COLUMNS, DEFAULT_TEXT, CdrMark, MarkField, leg_values
from asterisk_cb.core.model import Attempt, Callback, LegRole, Phase

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def callback(origin_linkedid: str | None = "1765098000.42") -> Callback:
    """Two agent-phase attempts (the first a ring the agent missed counts too), then a queue one."""
    attempts = tuple(
        Attempt(f"cb-7-{n}", phase, NOW, legs=())
        for n, phase in enumerate((Phase.AGENT, Phase.AGENT, Phase.QUEUE), start=1)
    )
    return Callback(
        "cb-7", "+33612345678", "1001", NOW, "Europe/Paris", "e2e", NOW,
        origin_linkedid=origin_linkedid, attempts=attempts,
    )  # fmt: skip


def test_by_default_the_userfield_says_scheduled_callback() -> None:
    assert CdrMark() == CdrMark(MarkField.USERFIELD, "scheduled-callback") == CdrMark.parse("", "")
    assert DEFAULT_TEXT == "scheduled-callback"


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        ("accountcode", "callbacks", CdrMark(MarkField.ACCOUNTCODE, "callbacks")),
        (" UserField ", " cb:2026 ", CdrMark(MarkField.USERFIELD, "cb:2026")),
        ("none", "", CdrMark(MarkField.NONE, DEFAULT_TEXT)),
    ],
)
def test_the_admin_chooses_field_and_text(field: str, text: str, expected: CdrMark) -> None:
    assert CdrMark.parse(field, text) == expected


@pytest.mark.parametrize(
    ("field", "text", "refused"),
    [
        ("dcontext", "x", r"cdr_mark_field: 'dcontext' is not one of userfield, accountcode, none"),
        ("userfield", "scheduled callback", r"cdr_mark_text: 'scheduled callback' is not 1-80"),
        ("userfield", "a;b", r"cdr_mark_text: 'a;b'"),  # Asterisk joins two parties' userfields with ";"
        ("userfield", "x)", r"cdr_mark_text: 'x\)'"),  # the dialplan's Set() would read it as syntax
        ("accountcode", "x" * 81, r"cdr_mark_text: 'x{81}'"),  # an accountcode holds 80
    ],
)
def test_a_field_or_text_the_cdr_cannot_carry_is_refused_by_name(field: str, text: str, refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        CdrMark.parse(field, text)


@pytest.mark.parametrize(
    ("attempt", "role", "number", "phase"),
    [
        ("cb-7-2", LegRole.AGENT, "2", "agent"),
        ("cb-7-2", LegRole.CONTACT, "2", "agent"),
        ("cb-7-3", LegRole.CONTACT, "3", "queue"),
        ("cb-7-3", LegRole.MEMBER, "3", "queue"),
    ],
)
def test_each_leg_says_which_callback_attempt_phase_and_leg(
    attempt: str, role: LegRole, number: str, phase: str
) -> None:
    assert leg_values(CdrMark(), callback(), attempt, role) == {
        "userfield": "scheduled-callback",
        "acb_id": "cb-7",
        "acb_attempt": number,
        "acb_phase": phase,
        "acb_leg": role.value,
        "acb_agent": "1001",  # the owner, in the queue phase too
        "acb_origin_linkedid": "1765098000.42",
    }


def test_the_mark_goes_where_the_admin_chose_and_nowhere_with_none() -> None:
    in_accountcode = leg_values(CdrMark(MarkField.ACCOUNTCODE, "cb"), callback(), "cb-7-1", LegRole.AGENT)
    assert in_accountcode["accountcode"] == "cb" and "userfield" not in in_accountcode
    unmarked = leg_values(CdrMark(MarkField.NONE), callback(), "cb-7-1", LegRole.AGENT)
    assert set(unmarked) == set(COLUMNS)


def test_a_callback_requested_on_no_call_has_no_origin_linkedid() -> None:
    values = leg_values(CdrMark(), callback(origin_linkedid=None), "cb-7-1", LegRole.AGENT)
    assert "acb_origin_linkedid" not in values and values["acb_id"] == "cb-7"


def test_an_attempt_not_on_record_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="callback cb-7 has no attempt cb-7-9"):
        leg_values(CdrMark(), callback(), "cb-7-9", LegRole.AGENT)
