"""The agent's keypad grammar: every form, the day word, DST, presets and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_cb.core.keypad import Day, KeypadError, Preset, due_from_keys, parse_preset

BERLIN = ZoneInfo("Europe/Berlin")
# 2026-12-07 15:00 in Berlin (UTC+1)
NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
PRESETS = {1: parse_preset("+1h"), 2: parse_preset("tomorrow 10:00"), 3: parse_preset("16:30")}


def local(keys: str, now: datetime = NOW, zone: ZoneInfo = BERLIN) -> tuple[str, Day]:
    keyed = due_from_keys(keys, now, zone, PRESETS)
    return keyed.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), keyed.day


def test_minutes_count_from_now() -> None:
    assert local("*30") == ("2026-12-07 15:30", Day.TODAY)
    assert local("*600") == ("2026-12-08 01:00", Day.TOMORROW)
    assert local("*4320") == ("2026-12-10 15:00", Day.LATER)


def test_a_clock_time_is_today_or_tomorrow_once_passed() -> None:
    assert local("1630") == ("2026-12-07 16:30", Day.TODAY)
    assert local("930") == ("2026-12-08 09:30", Day.TOMORROW)
    assert local("1500") == ("2026-12-08 15:00", Day.TOMORROW)  # exactly now has passed
    assert local("0000") == ("2026-12-08 00:00", Day.TOMORROW)


def test_presets() -> None:
    assert local("1") == ("2026-12-07 16:00", Day.TODAY)
    assert local("2") == ("2026-12-08 10:00", Day.TOMORROW)
    assert local("3") == ("2026-12-07 16:30", Day.TODAY)
    late = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # 17:00 local: 16:30 has passed
    assert local("3", late) == ("2026-12-08 16:30", Day.TOMORROW)


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ("", "not *<minutes>"),
        ("*", "not *<minutes>"),
        ("*0", "zero minutes"),
        ("*123456", "not *<minutes>"),
        ("12", "not *<minutes>"),
        ("2460", "24:60 is not a time of day"),
        ("2400", "24:00 is not a time of day"),
        ("1260", "12:60 is not a time of day"),
        ("9", "no preset 9 is set"),
        ("0", "not *<minutes>"),
        ("1*2", "not *<minutes>"),
        ("12345", "not *<minutes>"),
    ],
)
def test_what_is_refused_says_why(keys: str, reason: str) -> None:
    with pytest.raises(KeypadError) as refused:
        due_from_keys(keys, NOW, BERLIN, PRESETS)
    assert reason in refused.value.reason


def test_a_time_in_the_spring_gap_moves_forward() -> None:
    """2027-03-28 02:30 does not exist in Berlin: it is read as 03:30, like every other local time."""
    evening = datetime(2027, 3, 27, 20, 0, tzinfo=UTC)  # 21:00 local, the day before
    assert local("230", evening) == ("2027-03-28 03:30", Day.TOMORROW)


def test_presets_parse_and_refuse() -> None:
    assert parse_preset("+90m") == Preset("+90m", after=timedelta(minutes=90))
    assert parse_preset("Tomorrow  09:15") == Preset("Tomorrow  09:15", clock=time(9, 15), days_ahead=1)
    for bad in ("soon", "+", "25:00", "tomorrow", "10:00 tomorrow", "+1w"):
        with pytest.raises(ValueError):
            parse_preset(bad)


@given(
    minutes=st.integers(1, 99999),
    offset=st.integers(0, 366 * 24 * 60),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]),
)
def test_minutes_are_exact_in_any_zone(minutes: int, offset: int, zone: str) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=offset)
    keyed = due_from_keys(f"*{minutes}", now, ZoneInfo(zone), {})
    assert keyed.due_at - now == timedelta(minutes=minutes)


@given(
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    offset=st.integers(0, 366 * 24 * 60),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]),
)
def test_a_clock_time_is_the_next_one_within_a_day(hour: int, minute: int, offset: int, zone: str) -> None:
    """Always in the future, at most a day (plus a DST shift) ahead, and on the keyed wall clock unless
    that time does not exist that day."""
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=offset)
    tz = ZoneInfo(zone)
    keyed = due_from_keys(f"{hour:02d}{minute:02d}", now, tz, {})
    assert now < keyed.due_at <= now + timedelta(days=1, hours=1)
    wall = keyed.due_at.astimezone(tz)
    if (wall.hour, wall.minute) != (hour, minute):  # only a spring-forward gap moves a keyed time
        assert wall.utcoffset() != (wall - timedelta(hours=2)).utcoffset()
    assert keyed.day in (Day.TODAY, Day.TOMORROW, Day.LATER)
