"""What an agent keys on the phone's keypad to say when to call back, and what it means.

The grammar fits on a card by the phone (README, "For agents"); every entry ends with ``#``:

* ``*<minutes>#``: in that many minutes (``*30#``: in half an hour);
* ``<HHMM>#``: at that clock time, 24-hour, in the agent's zone: today, or tomorrow once it has passed
  (``1430#``, ``930#``);
* ``<P>#``: the admin's preset number P (``1#``: e.g. "in one hour", ``2#``: "tomorrow 10:00").

Pure: the keys, the time now, the zone and the presets in; the due time (UTC) and the day word to read
it back with out, or a ``KeypadError`` whose sentence says what was wrong (the caller re-prompts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from asterisk_cb.core import rules
from asterisk_cb.core.durations import parse_duration

MAX_MINUTES_DIGITS = 5  # *99999#: about 69 days, beyond any horizon; longer is a slip of the finger
_MINUTES = re.compile(rf"\*([0-9]{{1,{MAX_MINUTES_DIGITS}}})\Z")
_CLOCK = re.compile(r"([0-9]{1,2})([0-9]{2})\Z")
_PRESET = re.compile(r"[1-9]\Z")
_PRESET_CLOCK = re.compile(r"(?:(tomorrow)\s+)?([0-9]{1,2}):([0-9]{2})\Z")


class KeypadError(ValueError):
    """The keys do not make a time; ``reason`` says why, for the log and the re-prompt."""

    def __init__(self, keys: str, reason: str) -> None:
        super().__init__(f"{keys!r}: {reason}")
        self.reason = reason


class Day(StrEnum):
    """How the read-back names the due day: the prompts ``digits/today`` and ``digits/tomorrow``, or
    the full date for anything later."""

    TODAY = "today"
    TOMORROW = "tomorrow"
    LATER = "later"


@dataclass(frozen=True)
class Preset:
    """An admin's shortcut: ``after`` now, or a ``clock`` time ``days_ahead`` from today (0: today, or
    tomorrow once passed, like a keyed time)."""

    text: str
    after: timedelta | None = None
    clock: time | None = None
    days_ahead: int = 0


@dataclass(frozen=True)
class FeatureCodeOptions:
    """The admin's choices for the feature code (``[feature_code]``): the presets, and whether a contact
    may have two pending callbacks with one agent (else the agent keeps or moves the pending one)."""

    presets: Mapping[int, Preset] = field(default_factory=dict)
    allow_second: bool = False


DEFAULT_OPTIONS = FeatureCodeOptions()


@dataclass(frozen=True)
class KeyedTime:
    """A keyed due time and how to read it back."""

    due_at: datetime  # UTC
    day: Day


def parse_preset(text: str) -> Preset:
    """``+<duration>`` (``+1h``), ``HH:MM`` or ``tomorrow HH:MM``; ValueError says what is accepted."""
    stripped = " ".join(text.split()).lower()
    if stripped.startswith("+"):
        return Preset(text, after=parse_duration(stripped[1:]))
    match = _PRESET_CLOCK.match(stripped)
    if match is None:
        raise ValueError(f"{text!r} is not +<duration>, HH:MM or tomorrow HH:MM (e.g. +1h, tomorrow 10:00)")
    return Preset(text, clock=_clock(int(match[2]), int(match[3]), text), days_ahead=1 if match[1] else 0)


def due_from_keys(keys: str, now: datetime, tz: ZoneInfo, presets: Mapping[int, Preset]) -> KeyedTime:
    """The due time the keys mean at ``now`` (aware), read in ``tz``."""
    if minutes := _MINUTES.match(keys):
        if int(minutes[1]) == 0:
            raise KeypadError(keys, "zero minutes: key at least *1#")
        return _keyed(now + timedelta(minutes=int(minutes[1])), now, tz)
    if clock := _CLOCK.match(keys):
        return _keyed(_next_clock(_clock(int(clock[1]), int(clock[2]), keys), 0, now, tz), now, tz)
    if _PRESET.match(keys):
        preset = presets.get(int(keys))
        if preset is None:
            raise KeypadError(keys, f"no preset {keys} is set")
        return _keyed(_preset_due(preset, now, tz), now, tz)
    raise KeypadError(keys, "not *<minutes>, <HHMM> or a preset digit")


def _clock(hour: int, minute: int, text: str) -> time:
    if hour > 23 or minute > 59:
        raise KeypadError(text, f"{hour:02d}:{minute:02d} is not a time of day")
    return time(hour, minute)


def _preset_due(preset: Preset, now: datetime, tz: ZoneInfo) -> datetime:
    if preset.after is not None:
        return now + preset.after
    assert preset.clock is not None  # parse_preset makes one or the other
    return _next_clock(preset.clock, preset.days_ahead, now, tz)


def _next_clock(clock: time, days_ahead: int, now: datetime, tz: ZoneInfo) -> datetime:
    """``clock`` on the local day ``days_ahead`` from today; today's once passed means tomorrow's."""
    day = now.astimezone(tz).date() + timedelta(days=days_ahead)
    due = rules.to_utc(datetime.combine(day, clock), tz)
    if due <= now:
        due = rules.to_utc(datetime.combine(day + timedelta(days=1), clock), tz)
    return due


def _keyed(due_at: datetime, now: datetime, tz: ZoneInfo) -> KeyedTime:
    return KeyedTime(due_at.astimezone(UTC), day_of(due_at, now, tz))


def day_of(moment: datetime, now: datetime, tz: ZoneInfo) -> Day:
    """How the read-back names ``moment``'s day, seen from ``now`` in ``tz`` (a past day reads as today)."""
    days = (moment.astimezone(tz).date() - now.astimezone(tz).date()).days
    return Day.TODAY if days <= 0 else Day.TOMORROW if days == 1 else Day.LATER
