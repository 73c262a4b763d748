"""Durations as admins write them in the INI file and read them in messages: 90s, 15m, 2h, 30d."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([0-9]+)([smhd]?)\Z")


def parse_duration(text: str) -> timedelta:
    """``<ASCII digits><unit>`` with unit s, m, h or d; a bare number means seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration (write e.g. 90s, 15m, 2h or 30d)")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2] or "s"])


def format_duration(span: timedelta) -> str:
    """The largest unit that divides ``span`` exactly, so ``format`` and ``parse`` round-trip."""
    seconds = int(span.total_seconds())
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
