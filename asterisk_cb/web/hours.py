"""Calling hours as a person reads them beside the date-time picker: ``Mon-Fri 09:00-18:00``.

The browser's picker cannot be limited to weekly windows, so the form says them, pre-fills the next
time inside them, and the service refuses a time outside with the next allowed one beside the field.
"""

from __future__ import annotations

from datetime import time
from itertools import groupby

from asterisk_cb.core.rules import CallingHours

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def describe_hours(hours: CallingHours) -> str:
    """Days with the same spans grouped into runs (``Mon-Fri``), in weekday order; ``any time``."""
    if hours.always:
        return "any time"
    spans = {day: _spans(hours, day) for day in range(7)}
    parts = []
    for text, run in groupby(range(7), key=lambda day: spans[day]):
        days = list(run)
        if text:
            label = _DAYS[days[0]] if len(days) == 1 else f"{_DAYS[days[0]]}-{_DAYS[days[-1]]}"
            parts.append(f"{label} {text}")
    return ", ".join(parts)


def _spans(hours: CallingHours, day: int) -> str:
    windows = sorted((window for window in hours.windows if window.weekday == day), key=lambda w: w.start)
    return " ".join(f"{_clock(window.start)}-{_clock(window.end)}" for window in windows)


def _clock(moment: time | None) -> str:
    return "24:00" if moment is None else moment.strftime("%H:%M")
