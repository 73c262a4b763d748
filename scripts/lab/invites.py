"""Read the phones' INVITE logs: each SIPp process writes its own file, one line per INVITE.

A phone restarts whenever its behaviour changes (and SIPp truncates the log file it is given), so a
phone's log is a directory holding one file per SIPp process; reading it merges them in time order.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class Invite(NamedTuple):
    """One INVITE a phone received: when (unix time), the request-URI user, and its Call-ID."""

    time: float
    user: str
    call_id: str


CANCEL = "CANCEL"  # a phone ringing until cancelled also logs the CANCEL: <time> CANCEL <Call-ID> <Reason>


class Cancel(NamedTuple):
    """A CANCEL a ringing phone received: when, the Call-ID of the INVITE it ends, its Reason header."""

    time: float
    call_id: str
    reason: str


def _lines(directory: Path) -> list[list[str]]:
    return [
        line.split(maxsplit=3)
        for log in sorted(directory.glob("*.log"))
        for line in log.read_text().splitlines()
    ]


def read(directory: Path, user: str | None = None) -> list[Invite]:
    """Every INVITE logged under directory (optionally only those for one request-URI user)."""
    invites = [
        Invite(float(parts[0]), parts[1], parts[2])
        for parts in _lines(directory)
        if parts[1] != CANCEL and (user is None or parts[1] == user)
    ]
    return sorted(invites)


def cancels(directory: Path) -> list[Cancel]:
    """Every CANCEL logged under directory, in time order (the Reason is empty when none was sent)."""
    found = [
        Cancel(float(p[0]), p[2], p[3] if len(p) > 3 else "") for p in _lines(directory) if p[1] == CANCEL
    ]
    return sorted(found)
