"""How a callback call is marked: what the agent's display shows, which variables the legs carry."""

from __future__ import annotations

from datetime import UTC, datetime

from asterisk_cb.core.cdr_marks import CdrMark, MarkField
from asterisk_cb.core.model import Attempt, Callback, LegRole, Phase
from asterisk_cb.telephony.call_marks import DISPLAY_WIDTH, agent_caller_id, callback_variables


def test_agent_sees_callback_and_the_contact_name_within_the_display_width() -> None:
    assert agent_caller_id("Alice", "+33612345678") == '"CB Alice" <+33612345678>'
    long_name = agent_caller_id("Maximilian Mustermann-Schmidt", "0612345678")
    name = long_name.split('"')[1]
    assert name == "CB Maximilian Mu" and len(name) == DISPLAY_WIDTH
    assert long_name.endswith("<0612345678>")


def test_without_a_name_the_agent_sees_the_number() -> None:
    assert agent_caller_id("", "+331234567890") == '"CB +331234567890" <+331234567890>'


def test_a_cut_never_leaves_a_trailing_space() -> None:
    assert agent_caller_id("Jean-Pierre Du Pont", "1").split('"')[1] == "CB Jean-Pierre D"
    assert agent_caller_id("Ana Maria Lopez Y", "1").split('"')[1] == "CB Ana Maria Lop"
    assert agent_caller_id("Marie-Claire Bonnet", "1").split('"')[1] == "CB Marie-Claire"


def callback() -> Callback:
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    attempts = (Attempt("acb-1-1", Phase.AGENT, now, legs=()), Attempt("acb-1-2", Phase.AGENT, now, legs=()))
    return Callback(
        "acb-1", "0612345678", "1001", now, "UTC", "e2e", now, origin_linkedid="17.1", attempts=attempts
    )


def test_variables_are_inherited_ids_and_the_cdr_values_of_the_leg() -> None:
    variables = callback_variables(callback(), "acb-1-2", LegRole.AGENT, CdrMark())
    assert variables == {
        "__ACB_CALLBACK_ID": "acb-1",
        "__ACB_ATTEMPT_ID": "acb-1-2",
        "ACB_LEG": "agent",
        "CDR(userfield)": "scheduled-callback",
        "CDR(acb_id)": "acb-1",
        "CDR(acb_attempt)": "2",
        "CDR(acb_phase)": "agent",
        "CDR(acb_leg)": "agent",
        "CDR(acb_agent)": "1001",
        "CDR(acb_origin_linkedid)": "17.1",
        # what callback-cdr-mark writes into a Local channel's dialplan half
        "ACB_CDR_FIELD": "userfield",
        "ACB_CDR_TEXT": "scheduled-callback",
        "ACB_ATTEMPT": "2",
        "ACB_PHASE": "agent",
        "ACB_CDR_AGENT": "1001",
        "ACB_ORIGIN_LINKEDID": "17.1",
    }


def test_party_b_of_a_bridge_gets_no_userfield_but_its_dialplan_half_does() -> None:
    """Asterisk writes party A's userfield, then ";" and party B's: one mark per row, not two."""
    variables = callback_variables(callback(), "acb-1-2", LegRole.CONTACT, CdrMark(), party_b=True)
    assert "CDR(userfield)" not in variables
    assert (variables["CDR(acb_leg)"], variables["ACB_CDR_FIELD"]) == ("contact", "userfield")


def test_an_accountcode_mark_is_the_channel_s_and_none_touches_neither_field() -> None:
    in_accountcode = CdrMark(MarkField.ACCOUNTCODE, "cb")
    accountcode = callback_variables(callback(), "acb-1-1", LegRole.AGENT, in_accountcode)
    assert accountcode["CHANNEL(accountcode)"] == "cb" and "CDR(accountcode)" not in accountcode  # deprecated
    assert accountcode["ACB_CDR_FIELD"] == "accountcode"
    unmarked = callback_variables(callback(), "acb-1-1", LegRole.AGENT, CdrMark(MarkField.NONE))
    names = {name.upper() for name in unmarked}
    assert not {"CDR(USERFIELD)", "CDR(ACCOUNTCODE)", "CHANNEL(ACCOUNTCODE)", "ACB_CDR_FIELD"} & names
