"""A connection's health flag, read by the daemon and by `asterisk-cb doctor`.

Kept apart from the clients so `doctor` can print it without knowing ARI from AMI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class HealthSnapshot:
    """What a reader sees: is the link up, since when (epoch seconds), and the last error met."""

    name: str
    connected: bool
    since: float
    last_error: str | None = None
    reconnects: int = 0


class HealthFlag:
    """Mutable holder the connection updates; readers take immutable snapshots."""

    def __init__(self, name: str, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._state = HealthSnapshot(name=name, connected=False, since=clock())
        self._ups = 0

    def snapshot(self) -> HealthSnapshot:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state.connected

    def mark_up(self) -> None:
        """Connected (again); every up after the first counts as a reconnect."""
        if self._state.connected:
            return
        self._ups += 1
        self._state = replace(self._state, connected=True, since=self._clock(), reconnects=self._ups - 1)

    def mark_down(self, error: str) -> None:
        """Lost or failed; `since` moves only on an up->down edge so readers see the outage length."""
        state = self._state
        since = self._clock() if state.connected else state.since
        self._state = replace(state, connected=False, since=since, last_error=error)
