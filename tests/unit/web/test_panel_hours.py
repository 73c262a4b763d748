"""Calling hours as the scheduling form shows them."""

from __future__ import annotations

import pytest

from asterisk_cb.core.settings import parse_calling_hours
from asterisk_cb.web.hours import describe_hours


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("always", "any time"),
        ("mon-fri 09:00-18:00", "Mon-Fri 09:00-18:00"),
        (
            "mon-fri 09:00-12:00 13:00-18:00, sat 10:00-14:00",
            "Mon-Fri 09:00-12:00 13:00-18:00, Sat 10:00-14:00",
        ),
        ("daily 20:00-24:00", "Mon-Sun 20:00-24:00"),
        ("mon 08:00-10:00, wed 08:00-10:00", "Mon 08:00-10:00, Wed 08:00-10:00"),
    ],
)
def test_calling_hours_read_as_day_runs(written: str, shown: str) -> None:
    assert describe_hours(parse_calling_hours(written)) == shown
