"""Input rules: what a dialable number, a safe name and an acceptable due time are.

Every way in (API, feature code, CLI) goes through these, so one refusal reads the same everywhere:
a ``ValidationError`` naming the field and the reason. Names and notes end up in caller-ID strings,
channel variables and dial strings, where ``&``, ``,``, ``|``, ``"`` etc. change meaning, so they are
refused rather than escaped. Time zones come from the IANA database shipped with Python/tzdata (read-only
data, the one thing here that touches files).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from asterisk_cb.core.durations import format_duration, parse_duration

MAX_E164_DIGITS = 15
MAX_DIAL_DIGITS = 20  # national / trunk-prefixed numbers and extensions, without a leading +
MAX_NAME_LENGTH = 80
MAX_NOTE_LENGTH = 500
PAST_GRACE = timedelta(seconds=60)  # a due time this little in the past means "now" (clock skew, typing)

# Characters with a meaning in Asterisk dial strings, application arguments, caller-ID strings or
# variable substitution.
DIAL_METACHARACTERS = frozenset('&,|;()"<>$[]{}\\`')
_SEPARATORS = str.maketrans("", "", " -")  # visual separators people type inside numbers
_ASCII_DIGITS = frozenset("0123456789")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}\Z")
_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}\Z")


class ValidationError(ValueError):
    """A refused input: ``field`` is what was wrong, ``reason`` says why in words a user can act on."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def contact_number(text: str, field: str = "contact_number") -> str:
    """A dialable number: ``+`` and 1-15 ASCII digits (E.164), or up to 20 ASCII digits.

    Spaces and hyphens are dropped first; anything else (letters, other scripts' digits, which
    ``str.isdigit`` would accept, or dial-string metacharacters) is refused.
    """
    compact = text.translate(_SEPARATORS)
    international = compact.startswith("+")
    digits = compact[1:] if international else compact
    if not digits:
        raise ValidationError(field, "is empty")
    bad = sorted(set(digits) - _ASCII_DIGITS)
    if bad:
        raise ValidationError(field, f"only ASCII digits 0-9 (and a leading +) allowed, not {bad[0]!r}")
    limit = MAX_E164_DIGITS if international else MAX_DIAL_DIGITS
    if len(digits) > limit:
        raise ValidationError(field, f"has {len(digits)} digits, at most {limit} allowed")
    return compact


def safe_text(text: str, field: str, max_length: int) -> str:
    """A name or note without control characters or dial-string metacharacters; outer spaces dropped.

    Only spaces are trimmed: a stray newline or tab is refused like any other control character.
    """
    stripped = text.strip(" ")
    if len(stripped) > max_length:
        raise ValidationError(field, f"is {len(stripped)} characters long, at most {max_length} allowed")
    for char in stripped:
        if char in DIAL_METACHARACTERS:
            raise ValidationError(field, f"must not contain {char!r} (it has a meaning in dial strings)")
        # Cc: control chars incl. newlines; Cf: invisible format chars (bidi overrides, zero-width);
        # Zl/Zp: line and paragraph separators; Cs/Co/Cn: surrogates, private use, unassigned.
        if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}:
            raise ValidationError(field, f"must not contain control character U+{ord(char):04X}")
    return stripped


def contact_name(text: str) -> str:
    """The contact's display name (optional: may be empty)."""
    return safe_text(text, "contact_name", MAX_NAME_LENGTH)


def note(text: str) -> str:
    """The free-text note an agent leaves with the callback."""
    return safe_text(text, "note", MAX_NOTE_LENGTH)


def queue_name(text: str, field: str = "queue") -> str:
    """A queue name: an ``identifier`` without ``@``. The failover phase dials
    ``Local/<queue>@callback-queue``, and Asterisk's Local channel ends the extension at the first ``@``;
    the dialplan's pattern (``_[a-zA-Z0-9]!``) matches every name this accepts."""
    if not _QUEUE_NAME.match(text):
        raise ValidationError(
            field, f"{text!r} is not a valid queue name (ASCII letters, digits, _.+- ; 1-64 characters)"
        )
    return text


def identifier(text: str, field: str) -> str:
    """Agent ids, user names, callback ids: ASCII letters, digits and ``_.@+-``, at most 64 characters,
    starting with a letter or digit."""
    if not _IDENTIFIER.match(text):
        raise ValidationError(
            field, f"{text!r} is not a valid name (ASCII letters, digits, _.@+- ; 1-64 characters)"
        )
    return text


# Files in a zoneinfo directory that are not zones of the IANA database, or mean a different zone on
# each host: the host's own zone, the POSIX default rules, the placeholder zone, and the leap-second
# ("right/") and plain ("posix/") copies of the database.
_HOST_DEPENDENT = frozenset({"localtime", "posixrules", "Factory"})
_HOST_DEPENDENT_TREES = ("right/", "posix/")


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    """An IANA time zone by name, e.g. ``Europe/Berlin``; only names that mean the same zone on every
    host (not ``localtime``, ``posixrules``, ``Factory``, ``right/...``, ``posix/...``)."""
    try:
        if name in _HOST_DEPENDENT or name.startswith(_HOST_DEPENDENT_TREES):
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValidationError(
            field, f"unknown time zone {name!r} (use an IANA name like Europe/Paris)"
        ) from error


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in ``tz`` -> the UTC instant, with DST handled deterministically.

    A time in a spring-forward gap (which never shows on a clock) moves forward by the gap's length,
    02:30 -> 03:30; a time repeated in autumn means its first occurrence (the earlier instant). Both
    are what ``fold=0`` does with zoneinfo.
    """
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def wall_clock_reaches(local: datetime, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) at which ``tz``'s wall clock shows ``local`` or later: where a calling
    window opens or closes.

    Unlike ``to_utc``, a time in a spring-forward gap gives the first instant after the gap (a window
    ending at 02:30 closes at 03:00, not an hour later at 03:30); a time repeated in autumn gives its
    first occurrence, so a window ending in the repeated hour closes the first time the clock shows it.
    """
    first = to_utc(local, tz)
    if _wall(first, tz) == local:  # the time exists (its first occurrence when repeated)
        return first
    # In a gap, fold=0 reads it with the offset before the change (later than the gap's end) and fold=1
    # with the offset after it (before the gap): the change, at a whole second in the IANA data, lies
    # between. Bisect for the first second whose wall-clock time is ``local`` or later.
    low = int(local.replace(tzinfo=tz, fold=1).timestamp())
    high = int(first.timestamp()) + 1
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), tz) >= local:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _wall(moment: datetime, tz: ZoneInfo) -> datetime:
    """What ``tz``'s wall clock shows at ``moment``, without offset or fold."""
    return moment.astimezone(tz).replace(tzinfo=None, fold=0)


def parse_time(text: str, tz: ZoneInfo, field: str = "due_at", *, now: datetime | None = None) -> datetime:
    """ISO 8601 with an offset (``2026-11-26T14:00+01:00``, ``...Z``) or a local time read in ``tz``;
    with ``now`` given, also ``+<duration>`` after it (``+90m``, ``+2h``, ``+1d``): what an agent
    promises ("I'll call you back in two hours") without working out the clock time."""
    stripped = text.strip()
    if now is not None and stripped.startswith("+"):
        try:
            return now.astimezone(UTC) + parse_duration(stripped[1:])
        except ValueError as error:
            raise ValidationError(field, f"{text!r} is not +<duration> (e.g. +90m, +2h, +1d)") from error
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError as error:
        example = "2026-11-26T14:30+01:00 or 2026-11-26 14:30" + (", or +2h" if now is not None else "")
        raise ValidationError(field, f"{text!r} is not an ISO 8601 time (e.g. {example})") from error
    if parsed.tzinfo is None:
        return to_utc(parsed, tz)
    return parsed.astimezone(UTC)


def parse_moment(text: str, tz: ZoneInfo, field: str, *, now: datetime) -> datetime:
    """``parse_time``'s forms, and a duration before ``now``: ``-2h`` or ``2h`` (a unit is needed),
    where a report of past calls starts (``--since 2h``: a shell option cannot start with ``-``
    unless written ``--since=-2h``)."""
    stripped = text.strip()
    ago = stripped.removeprefix("-")
    if not (stripped.startswith("-") or _AGO.match(ago)):
        try:
            return parse_time(stripped, tz, field)
        except ValidationError:
            example = "2026-11-26T14:30+01:00, 2026-11-26 14:30, or 2h, 1d before now"
            raise ValidationError(
                field, f"{text!r} is not an ISO 8601 time or a duration (e.g. {example})"
            ) from None
    try:
        return now.astimezone(UTC) - parse_duration(ago)
    except ValueError as error:
        raise ValidationError(field, f"{text!r} is not a duration before now (e.g. 90m, 2h, 1d)") from error


_AGO = re.compile(r"[0-9]+[smhdSMHD]\Z")


@dataclass(frozen=True)
class Window:
    """One opening of the weekly calling hours: ``weekday`` (0 = Monday), local ``start`` to ``end``.

    ``end`` of ``None`` means midnight at the end of the day (written ``24:00``).
    """

    weekday: int
    start: time
    end: time | None


@dataclass(frozen=True)
class CallingHours:
    """When a contact may be called, in the contact's own zone. No windows means at any time.

    A window opens and closes when the contact's wall clock first shows its start and its end
    (``wall_clock_reaches``), across DST changes too.
    """

    windows: tuple[Window, ...] = ()

    @property
    def always(self) -> bool:
        """True when there is no restriction."""
        return not self.windows

    def next_opening(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The earliest instant at or after ``moment`` inside the calling hours (UTC)."""
        if self.always:
            return moment
        local_day = moment.astimezone(tz).date()
        for offset in range(8):  # a full week plus today's remainder covers every window
            day = local_day + timedelta(days=offset)
            for start, end in self._openings(day, tz):
                if moment < end:
                    return max(moment, start)
        raise AssertionError("non-empty weekly calling hours always open within 8 days")

    def longest_closure(self) -> timedelta:
        """The longest stretch without an opening, plus an hour for a DST shift: what a retry may wait.

        A short window in the small hours may lie inside a spring-forward gap and not exist that day
        (``next_opening``), so the stretch around such a window counts as one closure too.
        """
        if self.always:
            return timedelta(0)
        spans = sorted(
            (w.weekday * 1440 + _minutes(w.start), w.weekday * 1440 + (_minutes(w.end) if w.end else 1440))
            for w in self.windows
        )
        candidates = [spans] + [
            spans[:i] + spans[i + 1 :] for i, span in enumerate(spans) if _may_vanish(span)
        ]
        return timedelta(minutes=max(_longest_gap(c, spans) for c in candidates)) + timedelta(hours=1)

    def allows(self, moment: datetime, tz: ZoneInfo) -> bool:
        """True when ``moment`` is inside the calling hours."""
        return self.next_opening(moment, tz) == moment

    def _openings(self, day: date, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """The UTC spans of ``day``'s windows, in order."""
        spans = []
        for window in self.windows:
            if window.weekday != day.weekday():
                continue
            start = wall_clock_reaches(datetime.combine(day, window.start), tz)
            end_local = (
                datetime.combine(day, window.end)
                if window.end is not None
                else datetime.combine(day + timedelta(days=1), time())
            )
            end = wall_clock_reaches(end_local, tz)
            if start < end:  # a window inside a spring-forward gap does not exist that day
                spans.append((start, end))
        return sorted(spans)


ANY_TIME = CallingHours()


_WEEK_MINUTES = 7 * 1440
# Every spring-forward gap in the IANA data lies between 00:00 and 05:00 local time and lasts at most
# two hours: only a window inside that stretch and no longer than that can vanish on a DST day.
_DST_GAP_END_MINUTE = 5 * 60  # gaps end by 05:00 local
_MAX_DST_GAP_MINUTES = 120


def _may_vanish(span: tuple[int, int]) -> bool:
    start_of_day, length = span[0] % 1440, span[1] - span[0]
    return length <= _MAX_DST_GAP_MINUTES and start_of_day + length <= _DST_GAP_END_MINUTE


def _longest_gap(spans: list[tuple[int, int]], all_spans: list[tuple[int, int]]) -> int:
    """Minutes of the longest closure in a weekly schedule of ``spans`` (sorted, wrapping around)."""
    if not spans:  # the only window vanished: closed from one week's opening to the week after next
        start, end = all_spans[0]
        return 2 * _WEEK_MINUTES - (end - start)
    longest, reach = 0, max(end for _, end in spans) - _WEEK_MINUTES  # last week's latest end
    for start, end in spans:
        longest = max(longest, start - reach)
        reach = max(reach, end)
    return longest


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


@dataclass(frozen=True)
class DueLimits:
    """What a due time must satisfy at creation or reschedule."""

    horizon: timedelta
    calling_hours: CallingHours


def check_due(
    due_at: datetime, tz: ZoneInfo, now: datetime, limits: DueLimits, field: str = "due_at"
) -> datetime:
    """Refuse a due time in the past, beyond the horizon or outside calling hours.

    A time up to ``PAST_GRACE`` in the past is accepted as "now". The calling-hours refusal names the
    next allowed time in the contact's zone so the user can pick it.
    """
    if due_at.tzinfo is None:
        raise ValidationError(field, "needs an offset or a time zone (use parse_time for wall-clock times)")
    if due_at < now - PAST_GRACE:
        raise ValidationError(field, f"{_local(due_at, tz)} is in the past")
    due_at = max(due_at, now)
    if due_at > now + limits.horizon:
        latest = _local(now + limits.horizon, tz)
        raise ValidationError(
            field,
            f"{_local(due_at, tz)} is beyond the {format_duration(limits.horizon)} horizon (latest {latest})",
        )
    opening = limits.calling_hours.next_opening(due_at, tz)
    if opening != due_at:
        raise OutsideHours(field, due_at, opening, tz)
    return due_at


class OutsideHours(ValidationError):
    """A due time outside calling hours; ``next_allowed`` is what a face offers instead (the feature code
    speaks it)."""

    def __init__(self, field: str, due_at: datetime, next_allowed: datetime, tz: ZoneInfo) -> None:
        where = f"the next allowed time is {_local(next_allowed, tz)}"
        super().__init__(field, f"{_local(due_at, tz)} is outside calling hours; {where}")
        self.next_allowed = next_allowed


def _local(moment: datetime, tz: ZoneInfo) -> str:
    """How a time is shown in messages: the contact's wall clock with offset and zone name."""
    return f"{moment.astimezone(tz).isoformat(timespec='minutes')} ({tz.key})"
