"""Reconnect delays shared by the ARI and AMI connections.

Capped so a PBX back after a long outage is found within `cap` seconds; jittered ("full jitter" on the
upper half) so several daemons that lost the same Asterisk do not all reconnect in the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt number `attempt` (0 = first retry after a loss)."""

    initial_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.5  # fraction of the delay that is randomised

    def delay(self, attempt: int, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """Exponential delay, capped, with its last `jitter` share drawn at random."""
        base = min(self.cap_s, self.initial_s * self.factor ** max(0, attempt))
        return base * (1.0 - self.jitter) + uniform(0.0, base * self.jitter)
