"""The baseline of bench/calls.py: the same agent-first calls placed with Asterisk call files, no engine.

A call file rings ``Channel: PJSIP/<agent>`` and, once the agent answers, runs the contact's number in
the lab's outbound context (``callback-outbound``: ``Dial(PJSIP/<number>@contacts)``), with the caller
ID the engine shows the agent (``"CB <name>" <number>``), the engine's agent ring timeout and no retry.
Files are written in the spool's ``tmp`` directory and renamed into ``outgoing`` (same file system), as
Asterisk requires: pbx_spool must never read a half-written file.

Asterisk knows nothing of agents: a call file for an agent already on a call rings that agent again. So
the files are moved in by a minimal dispatcher: every agent's first file at the due time, and an
agent's next file once its previous one was consumed (pbx_spool deletes it when the call is answered or
has failed) and the agent has no channel left. Moving the files in at the due time, rather than ahead
with the due time as their mtime, keeps the baseline at its best: pbx_spool reads a future mtime with
one-second resolution.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from asterisk_cb.telephony.call_marks import agent_caller_id

SPOOL = Path("var") / "spool" / "asterisk"  # pbx_spool's directory in the lab's chroot


class Call(Protocol):
    """What a call file needs of one planned call (bench/calls.py's ``Call``)."""

    agent: str
    number: str
    name: str


def call_file(call: Call, endpoint: str, context: str, ring_timeout_s: int) -> str:
    """The file's text: agent first, then the contact through the outbound context."""
    return (
        f"Channel: {endpoint}\n"
        f"CallerID: {agent_caller_id(call.name, call.number)}\n"
        f"WaitTime: {ring_timeout_s}\n"
        "MaxRetries: 0\n"
        f"Context: {context}\n"
        f"Extension: {call.number}\n"
        "Priority: 1\n"
    )


class CallFiles:
    """Moves one call file per call into the lab's spool, one call at a time per agent."""

    def __init__(self, info: Mapping[str, Any], calls: Iterable[Call], ring_timeout_s: int) -> None:
        spool = Path(info["asterisk_root"]) / SPOOL
        self._tmp, self._outgoing = spool / "tmp", spool / "outgoing"
        owner = self._outgoing.stat()
        self._owner = (owner.st_uid, owner.st_gid)  # Asterisk's user in the chroot deletes the files
        self._info = info
        self._ring_timeout_s = ring_timeout_s
        self._pending: dict[str, deque[Call]] = {}
        for call in calls:
            self._pending.setdefault(call.agent, deque()).append(call)
        self._placed: dict[str, Path] = {}

    def _place(self, call: Call) -> Path:
        endpoint = self._info["agents"][call.agent]["endpoint"]
        text = call_file(call, endpoint, self._info["dialplan"]["outbound_context"], self._ring_timeout_s)
        name = f"acb-bench-{call.number}.call"
        staged = self._tmp / name
        staged.write_text(text)
        os.chown(staged, *self._owner)
        placed = self._outgoing / name
        staged.rename(placed)
        return placed

    def dispatch(self, busy: set[str]) -> bool:
        """Move in the next file of every agent that is free (not in ``busy``, its last file consumed).
        True once every file was moved in and consumed."""
        for agent, queued in self._pending.items():
            last = self._placed.get(agent)
            if queued and agent not in busy and (last is None or not last.exists()):
                self._placed[agent] = self._place(queued.popleft())
        return not any(self._pending.values()) and not any(p.exists() for p in self._placed.values())

    def remove_leftovers(self) -> None:
        """After a failed run: take back the files Asterisk has not read (it would still dial them)."""
        for placed in self._placed.values():
            placed.unlink(missing_ok=True)
