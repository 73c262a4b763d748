"""A test-only fault hook: stop this process (SIGSTOP) at one named point of a call's run.

Why it exists: the promise "never dialled twice" has to hold when a daemon stalls at the worst moment,
after committing an attempt and before dialling it, while another daemon takes the callback over. A
timed guess (SIGSTOP after some sleep) hits that moment only sometimes; this hook hits it every time.
The e2e tests start a daemon with ``ACB_FAULT_STOP_AT=<point>`` and resume it with SIGCONT.

Points: ``committed:<phase>:<state>`` (right after a transition to that state is on record, before
any of its effects; e.g. ``committed:queue:contact_ringing``), ``dial:agent`` and
``dial:<phase>:contact`` (after the dial fence, right before the request that rings). Only the first
arrival stops; with the variable unset this costs one comparison.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

STOP_AT_VARIABLE = "ACB_FAULT_STOP_AT"

_armed: list[str] = [os.environ.get(STOP_AT_VARIABLE, "")]


def checkpoint(point: str) -> None:
    """Stop the whole process here if the hook is armed for ``point`` (once)."""
    if not _armed[0] or _armed[0] != point:
        return
    _armed[0] = ""
    log.warning("fault hook: stopping at %s (SIGCONT resumes)", point)
    os.kill(os.getpid(), signal.SIGSTOP)
