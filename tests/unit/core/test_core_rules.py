"""Input rules: numbers, names, due times, zones, calling hours and DST, fuzzed and by example."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asterisk_cb.core import rules
from asterisk_cb.core.settings import parse_calling_hours

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
LIMITS = rules.DueLimits(timedelta(days=30), rules.ANY_TIME)
OFFICE = parse_calling_hours("mon-fri 09:00-18:00, sat 10:00-14:00")


# ---- numbers ------------------------------------------------------------------------------------


@given(st.text(max_size=30))
@example("+١٢٣٤")  # Arabic-Indic digits: isdigit() says yes, a trunk says no
@example("123\n456")
@example("+" + "1" * 16)
@example("12,34")
def test_contact_number_accepts_only_ascii_digits(text: str) -> None:
    try:
        number = rules.contact_number(text)
    except rules.ValidationError as error:
        assert error.field == "contact_number"
        return
    assert re.fullmatch(r"\+[0-9]{1,15}|[0-9]{1,20}", number, flags=re.ASCII)


@pytest.mark.parametrize(("text", "expected"), [("+49 30 123-456", "+4930123456"), ("1001", "1001")])
def test_contact_number_drops_visual_separators(text: str, expected: str) -> None:
    assert rules.contact_number(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty"), ("+", "empty"), ("+1234567890123456", "at most 15"), ("12a", "'a'"), ("٣", "'٣'")],
)
def test_contact_number_reasons(text: str, reason: str) -> None:
    with pytest.raises(rules.ValidationError, match=reason):
        rules.contact_number(text)


# ---- names and notes ----------------------------------------------------------------------------


@given(st.text(max_size=100))
@example("Bob\x00")
@example("A\u202eB")  # right-to-left override
@example('Say "hi"')
def test_names_never_carry_metacharacters_or_controls(text: str) -> None:
    try:
        name = rules.contact_name(text)
    except rules.ValidationError as error:
        assert error.field == "contact_name"
        return
    assert not set(name) & rules.DIAL_METACHARACTERS
    assert all(char.isprintable() or unicodedata.category(char) == "Zs" for char in name)


@pytest.mark.parametrize("char", [*sorted(rules.DIAL_METACHARACTERS), "\n", "\r", "\t", "\x1b", "\u2028"])
def test_each_forbidden_character_is_named(char: str) -> None:
    with pytest.raises(rules.ValidationError) as raised:
        rules.note(f"call {char} back")
    assert raised.value.field == "note"


@pytest.mark.parametrize("text", ["Bob\n", "\tBob"])
def test_outer_control_characters_are_refused_not_trimmed(text: str) -> None:
    with pytest.raises(rules.ValidationError, match="control character"):
        rules.contact_name(text)


def test_names_keep_letters_of_any_script() -> None:
    assert rules.contact_name("  Zoë Ōsaka-Müller  ") == "Zoë Ōsaka-Müller"


def test_length_limit() -> None:
    with pytest.raises(rules.ValidationError, match="at most 80"):
        rules.contact_name("x" * 81)


@given(st.text(max_size=70))
def test_identifiers(text: str) -> None:
    try:
        assert rules.identifier(text, "agent") == text
    except rules.ValidationError as error:
        assert error.field == "agent"
        return
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}", text, flags=re.ASCII)


# ---- zones and time parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        *("Mars/Olympus", "../../etc/passwd", "", "Europe/", "europe/berlin", " UTC"),
        *("localtime", "posixrules", "Factory", "right/UTC", "posix/Europe/Berlin"),  # host-dependent
    ],
)
def test_unknown_zone(name: str) -> None:
    with pytest.raises(rules.ValidationError, match="unknown time zone") as raised:
        rules.zone(name)
    assert raised.value.field == "timezone"


@pytest.mark.parametrize("name", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires", "US/Eastern"])
def test_iana_zones_and_their_links_are_known(name: str) -> None:
    assert rules.zone(name).key == name


@given(st.text(max_size=40))
@example("2026-11-26T14:30+01:00")
@example("2026-11-26 14:30")
@example("\uff12\uff10\uff12\uff16-11-26")  # fullwidth digits
def test_parse_time_gives_an_aware_utc_time_or_a_named_error(text: str) -> None:
    try:
        moment = rules.parse_time(text, BERLIN)
    except rules.ValidationError as error:
        assert error.field == "due_at"
        return
    assert moment.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T14:30+01:00", datetime(2026, 11, 26, 13, 30, tzinfo=UTC)),
        ("2026-11-26T14:30Z", datetime(2026, 11, 26, 14, 30, tzinfo=UTC)),
        ("2026-11-26 14:30", datetime(2026, 11, 26, 13, 30, tzinfo=UTC)),  # local, CET
        ("2026-03-29 02:30", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),  # in the gap: 03:30 CEST
        ("2026-10-25 02:30", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # repeated: first, CEST
    ],
)
def test_parse_time_examples_and_dst(text: str, expected: datetime) -> None:
    assert rules.parse_time(text, BERLIN) == expected


# ---- due checks ---------------------------------------------------------------------------------


def test_due_in_the_past_refused_but_grace_accepted() -> None:
    with pytest.raises(rules.ValidationError, match="in the past"):
        rules.check_due(NOW - timedelta(minutes=5), BERLIN, NOW, LIMITS)
    assert rules.check_due(NOW - timedelta(seconds=30), BERLIN, NOW, LIMITS) == NOW


def test_naive_due_time_refused() -> None:
    with pytest.raises(rules.ValidationError, match="needs an offset"):
        rules.check_due(datetime(2026, 11, 27, 10, 0), BERLIN, NOW, LIMITS)


def test_due_beyond_horizon_refused() -> None:
    with pytest.raises(rules.ValidationError, match="beyond the 30d horizon"):
        rules.check_due(NOW + timedelta(days=31), BERLIN, NOW, LIMITS)


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)))
def test_check_due_accepts_only_times_inside_all_limits(due: datetime) -> None:
    limits = rules.DueLimits(timedelta(days=30), OFFICE)
    try:
        accepted = rules.check_due(due, BERLIN, NOW, limits)
    except rules.ValidationError as error:
        assert error.field == "due_at"
        if "outside calling hours" in error.reason:
            assert "next allowed time is" in error.reason
        return
    assert NOW <= accepted <= NOW + timedelta(days=30)
    assert OFFICE.allows(accepted, BERLIN)


# ---- calling hours ------------------------------------------------------------------------------


@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]),
    hours=st.sampled_from(
        ["mon-fri 09:00-18:00", "daily 02:00-03:00", "sun 23:30-24:00", "daily 00:00-24:00"]
    ),
)
@example(datetime(2026, 3, 29, 0, 40, tzinfo=UTC), "Europe/Berlin", "daily 02:00-03:00")  # window in the gap
def test_next_opening_is_the_earliest_allowed_instant(moment: datetime, zone: str, hours: str) -> None:
    tz, calling = ZoneInfo(zone), parse_calling_hours(hours)
    opening = calling.next_opening(moment, tz)
    assert moment <= opening <= moment + calling.longest_closure()
    assert calling.allows(opening, tz)
    if opening > moment:
        assert not calling.allows(opening - timedelta(microseconds=1), tz)
        assert not calling.allows(moment, tz)


def test_next_opening_across_spring_forward() -> None:
    # 02:00-03:00 does not exist on 2026-03-29 in Berlin: no opening that day, the next is on the 30th.
    calling = parse_calling_hours("daily 02:00-03:00")
    opening = calling.next_opening(datetime(2026, 3, 29, 0, 30, tzinfo=UTC), BERLIN)
    assert opening == datetime(2026, 3, 30, 0, 0, tzinfo=UTC)
    # A window starting inside the gap opens when the clock first shows its start or later: 03:00 CEST.
    partly = parse_calling_hours("daily 02:30-04:00").next_opening(
        datetime(2026, 3, 29, 0, 30, tzinfo=UTC), BERLIN
    )
    assert partly == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_a_window_ending_in_the_spring_forward_gap_closes_at_the_gap_s_end() -> None:
    """01:00-02:30 on 2026-03-29 in Berlin closes at 03:00 CEST, the first instant after the gap, not at
    03:30 (02:30 read with the winter offset)."""
    calling = parse_calling_hours("daily 01:00-02:30")
    assert calling.allows(datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), BERLIN)
    assert not calling.allows(datetime(2026, 3, 29, 1, 0, tzinfo=UTC), BERLIN)  # 03:00 CEST
    assert calling.next_opening(datetime(2026, 3, 29, 1, 0, tzinfo=UTC), BERLIN) == datetime(
        2026,
        3,
        29,
        23,
        0,
        tzinfo=UTC,  # 01:00 CEST the next day
    )


def test_a_window_ending_in_the_repeated_hour_closes_the_first_time_the_clock_shows_it() -> None:
    """01:00-02:30 on 2026-10-25 in Berlin: 02:30 shows first at 00:30 UTC (CEST), again at 01:30 UTC."""
    calling = parse_calling_hours("daily 01:00-02:30")
    assert calling.allows(datetime(2026, 10, 25, 0, 29, tzinfo=UTC), BERLIN)
    assert not calling.allows(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), BERLIN)
    assert not calling.allows(datetime(2026, 10, 25, 1, 10, tzinfo=UTC), BERLIN)  # 02:10 CET, second time


DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "America/Havana"]


def transition_days(zone: str, year: int) -> list[date]:
    """The days of ``year`` on which ``zone``'s UTC offset changes."""
    tz, first = ZoneInfo(zone), date(year, 1, 1)
    days = [first + timedelta(days=n) for n in range(366)]
    offsets = [datetime.combine(day, time(), tzinfo=tz).utcoffset() for day in days]
    return [days[n - 1] for n in range(1, len(days)) if offsets[n] != offsets[n - 1]]


def first_shown_by_scanning(local: datetime, tz: ZoneInfo) -> datetime:
    """The oracle: step a minute at a time until the wall clock shows ``local`` or later."""
    moment = (local - timedelta(hours=4)).replace(tzinfo=UTC) - timedelta(hours=14)
    while moment.astimezone(tz).replace(tzinfo=None) < local:
        moment += timedelta(minutes=1)
    return moment


@given(
    st.sampled_from(DST_ZONES).flatmap(
        lambda zone: st.tuples(st.just(zone), st.sampled_from(transition_days(zone, 2026)))
    ),
    st.integers(min_value=0, max_value=2 * 1440),
)
def test_wall_clock_reaches_is_the_first_instant_the_clock_shows_the_time(
    zone_day: tuple[str, date], minute: int
) -> None:
    """Around every 2026 DST change of zones with gaps and repeats at 01:00-03:00, at midnight
    (Santiago, Havana) and of 30 minutes (Lord Howe): bisection agrees with a minute-by-minute scan."""
    zone, day = zone_day
    tz, local = ZoneInfo(zone), datetime.combine(day, time()) + timedelta(minutes=minute)
    assert rules.wall_clock_reaches(local, tz) == first_shown_by_scanning(local, tz)


def test_next_opening_in_the_repeated_hour() -> None:
    # 02:00-03:00 happens twice on 2026-10-25 in Berlin; the window is taken at its first occurrence.
    calling = parse_calling_hours("daily 02:00-03:00")
    assert calling.next_opening(datetime(2026, 10, 24, 23, 0, tzinfo=UTC), BERLIN) == datetime(
        2026, 10, 25, 0, 0, tzinfo=UTC
    )


def test_longest_closure() -> None:
    assert rules.ANY_TIME.longest_closure() == timedelta(0)
    assert parse_calling_hours("mon-fri 09:00-18:00").longest_closure() == timedelta(hours=63 + 1)
    assert parse_calling_hours("sun 09:00-10:00").longest_closure() == timedelta(days=7)
    # A window that can lie inside a spring-forward gap may vanish for a day: both closures merge.
    assert parse_calling_hours("daily 02:00-03:00").longest_closure() == timedelta(hours=47 + 1)
    assert parse_calling_hours("sun 02:00-03:00").longest_closure() == timedelta(days=14, hours=-1 + 1)


def test_window_shape() -> None:
    assert parse_calling_hours("sat 10:00-24:00").windows == (rules.Window(5, time(10), None),)


NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+90m", NOW + timedelta(minutes=90)),
        (" +2h", NOW + timedelta(hours=2)),
        ("+1d", NOW + timedelta(days=1)),
    ],
)
def test_parse_time_after_now(text: str, expected: datetime) -> None:
    assert rules.parse_time(text, BERLIN, now=NOW) == expected


@pytest.mark.parametrize("text", ["+", "+2x", "+-5m", "+1.5h"])
def test_parse_time_after_now_names_the_form(text: str) -> None:
    with pytest.raises(rules.ValidationError, match=r"is not \+<duration> \(e\.g\. \+90m"):
        rules.parse_time(text, BERLIN, now=NOW)


def test_a_relative_time_needs_a_reference() -> None:
    with pytest.raises(rules.ValidationError, match="is not an ISO 8601 time"):
        rules.parse_time("+2h", BERLIN)
