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


def read(directory: Path, user: str | None = None) -> list[Invite]:
    """Every INVITE logged under directory (optionally only those for one request-URI user)."""
    invites = []
    for log in sorted(directory.glob("*.log")):
        for line in log.read_text().splitlines():
            when, logged_user, call_id = line.split(maxsplit=2)
            if user is None or logged_user == user:
                invites.append(Invite(float(when), logged_user, call_id))
    return sorted(invites)
