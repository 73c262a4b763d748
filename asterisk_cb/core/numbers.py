"""One key per phone number: +4930123456, 004930123456 and 030123456 are one contact.

A contact's number is stored and dialled exactly as entered (the admin's outbound dialplan knows what
to do with it); only the Redis keys that must treat one line as one thing (the contact's call lock, the
index of callbacks by number) use the canonical form, E.164 with a leading ``+``. The rules need the
deployment's numbering plan (``[numbers]`` in the config): its country code, the trunk prefix before a
national number and the international prefix before a country code.

Numbers the plan cannot place (internal extensions, short codes, national numbers when no country code
is set) stay as they are: a key without ``+`` then stands for that exact string only.
"""

from __future__ import annotations

from dataclasses import dataclass

_DIGITS = frozenset("0123456789")
MAX_PREFIX_DIGITS = 4


class NumberPlanError(ValueError):
    """A numbering-plan setting that cannot work; ``option`` names it for the config error."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option = option
        self.reason = reason


@dataclass(frozen=True)
class NumberPlan:
    """The deployment's numbering plan. ``country_code`` empty: only the ``+`` and international forms
    are unified (a national number cannot be placed). ``trunk_prefix`` empty: the country dials national
    numbers without one, and they cannot be told from extensions, so they stay as they are."""

    country_code: str = ""
    trunk_prefix: str = "0"
    international_prefix: str = "00"

    def __post_init__(self) -> None:
        _check_digits("country_code", self.country_code, 3, may_be_empty=True)
        if self.country_code.startswith("0"):
            raise NumberPlanError("country_code", f"{self.country_code!r}: no country code starts with 0")
        _check_digits("trunk_prefix", self.trunk_prefix, MAX_PREFIX_DIGITS, may_be_empty=True)
        _check_digits("international_prefix", self.international_prefix, MAX_PREFIX_DIGITS)
        if self.trunk_prefix and self.trunk_prefix.startswith(self.international_prefix):
            raise NumberPlanError(
                "trunk_prefix",
                f"{self.trunk_prefix!r} starts with the international prefix "
                f"{self.international_prefix!r}: no national number could be told from an international one",
            )

    def canonical(self, number: str) -> str:
        """``number`` (as ``rules.contact_number`` accepts it) in E.164 form, or unchanged when this plan
        cannot place it. Idempotent: a canonical number is its own canonical form."""
        if number.startswith("+"):
            return number
        if number.startswith(self.international_prefix):
            international = number[len(self.international_prefix) :]
            return "+" + international if international else number
        national = _after(number, self.trunk_prefix) if self.country_code else ""
        if national:
            return "+" + self.country_code + national
        return number


def _after(number: str, prefix: str) -> str:
    """What follows ``prefix`` in ``number`` ('' when it does not start with it or nothing follows)."""
    return number[len(prefix) :] if prefix and number.startswith(prefix) else ""


def _check_digits(option: str, value: str, longest: int, *, may_be_empty: bool = False) -> None:
    if not value and may_be_empty:
        return
    if not value or len(value) > longest or not _DIGITS.issuperset(value):
        empty = " or empty" if may_be_empty else ""
        raise NumberPlanError(option, f"{value!r} is not 1-{longest} digits{empty}")


DEFAULT_PLAN = NumberPlan()  # no country code: only the + and 00 forms are unified
