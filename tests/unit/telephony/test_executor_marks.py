"""How a callback call is marked: what the agent's display shows, which variables the legs carry."""

from __future__ import annotations

from asterisk_cb.core.model import LegRole
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


def test_variables_are_inherited_marks_and_never_the_admins_cdr_fields() -> None:
    variables = callback_variables("acb-1", "acb-1-2", LegRole.CONTACT)
    assert variables == {"__ACB_CALLBACK_ID": "acb-1", "__ACB_ATTEMPT_ID": "acb-1-2", "ACB_LEG": "contact"}
    assert not {"CDR(accountcode)", "CDR(userfield)", "ACCOUNTCODE"} & {name.upper() for name in variables}
