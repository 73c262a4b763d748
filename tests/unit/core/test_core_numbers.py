"""One key per phone number: the canonical form of a contact number under a numbering plan."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from asterisk_cb.core import rules
from asterisk_cb.core.numbers import DEFAULT_PLAN, NumberPlan, NumberPlanError

GERMANY = NumberPlan("49")
NANP = NumberPlan("1", trunk_prefix="1", international_prefix="011")
ITALY = NumberPlan("39", trunk_prefix="")  # national numbers are dialled without a trunk prefix

digits = st.text("0123456789", min_size=1, max_size=12)
country_codes = st.text("0123456789", min_size=1, max_size=3).filter(lambda code: code[0] != "0")
plans = st.builds(
    NumberPlan,
    country_code=st.one_of(st.just(""), country_codes),
    trunk_prefix=st.sampled_from(["", "0", "1", "8"]),
    international_prefix=st.sampled_from(["00", "011", "810", "0011"]),
)
# What rules.contact_number lets through: + and up to 15 digits, or up to 20 digits.
entered = st.one_of(
    st.text("0123456789", min_size=1, max_size=15).map(lambda text: "+" + text),
    st.text("0123456789", min_size=1, max_size=20),
)


@pytest.mark.parametrize(
    ("plan", "forms", "key"),
    [
        (GERMANY, ["+4930123456", "004930123456", "030123456", "030 123-456"], "+4930123456"),
        (NANP, ["+12125550100", "01112125550100", "12125550100"], "+12125550100"),
        (ITALY, ["+39061234567", "0039061234567"], "+39061234567"),
        (DEFAULT_PLAN, ["+4930123456", "004930123456"], "+4930123456"),
    ],
)
def test_every_form_of_a_number_has_one_key(plan: NumberPlan, forms: list[str], key: str) -> None:
    assert {plan.canonical(rules.contact_number(form)) for form in forms} == {key}


@pytest.mark.parametrize(
    ("plan", "number"),
    [
        (GERMANY, "1001"),  # an internal extension
        (GERMANY, "112"),  # a short code
        (GERMANY, "0"),  # the trunk prefix alone
        (GERMANY, "00"),  # the international prefix alone
        (DEFAULT_PLAN, "030123456"),  # no country code: a national number cannot be placed
        (ITALY, "061234567"),  # no trunk prefix: a national number looks like an extension
    ],
)
def test_numbers_the_plan_cannot_place_keep_their_form(plan: NumberPlan, number: str) -> None:
    assert plan.canonical(number) == number


@given(plans, entered)
def test_canonical_is_idempotent(plan: NumberPlan, number: str) -> None:
    assert plan.canonical(plan.canonical(number)) == plan.canonical(number)


@given(plans, digits)
def test_the_international_forms_of_a_number_share_its_key(plan: NumberPlan, number: str) -> None:
    assert plan.canonical(plan.international_prefix + number) == plan.canonical("+" + number) == "+" + number


@given(country_codes, st.sampled_from(["0", "1", "8"]), digits)
def test_the_three_forms_of_a_national_number_share_its_key(code: str, trunk: str, national: str) -> None:
    plan = NumberPlan(code, trunk_prefix=trunk)
    assume(not (trunk + national).startswith(plan.international_prefix))  # no national number does
    forms = ["+" + code + national, plan.international_prefix + code + national, trunk + national]
    assert {plan.canonical(form) for form in forms} == {"+" + code + national}


@given(plans, digits, digits, st.data())
def test_distinct_numbers_keep_distinct_keys(
    plan: NumberPlan, one: str, other: str, data: st.DataObject
) -> None:
    """Two international numbers (country code and national digits) never share a key, whichever form
    each is written in."""
    assume(one != other)
    assert plan.canonical(data.draw(forms(plan, one))) != plan.canonical(data.draw(forms(plan, other)))


def forms(plan: NumberPlan, number: str) -> st.SearchStrategy[str]:
    """The ways of writing international ``number`` (digits) that ``plan`` can place; a national form
    that looks international is left out (no real national number does)."""
    written = ["+" + number, plan.international_prefix + number]
    national = plan.trunk_prefix + number.removeprefix(plan.country_code)
    at_home = plan.country_code and plan.trunk_prefix and number.startswith(plan.country_code)
    if at_home and national != plan.trunk_prefix and not national.startswith(plan.international_prefix):
        written.append(national)
    return st.sampled_from(written)


@given(plans, entered)
def test_an_entry_is_kept_or_becomes_an_international_number(plan: NumberPlan, number: str) -> None:
    """A key without + is the entry itself, so entries the plan cannot place never meet other ones."""
    key = plan.canonical(number)
    assert key == number or (key.startswith("+") and key[1:].isdigit())


@pytest.mark.parametrize(
    ("options", "option", "words"),
    [
        ({"country_code": "+49"}, "country_code", "not 1-3 digits"),
        ({"country_code": "4912"}, "country_code", "not 1-3 digits"),
        ({"country_code": "049"}, "country_code", "starts with 0"),
        ({"trunk_prefix": "O"}, "trunk_prefix", "not 1-4 digits or empty"),
        ({"international_prefix": ""}, "international_prefix", "not 1-4 digits"),
        ({"international_prefix": "+"}, "international_prefix", "not 1-4 digits"),
        ({"trunk_prefix": "00"}, "trunk_prefix", "starts with the international prefix"),
    ],
)
def test_a_plan_that_cannot_work_is_refused(options: dict[str, str], option: str, words: str) -> None:
    with pytest.raises(NumberPlanError, match=words) as refused:
        NumberPlan(**options)
    assert refused.value.option == option
