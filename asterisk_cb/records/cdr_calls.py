"""Asterisk's cdr rows of callback calls read as callback calls: which callback, attempt, leg, agent and
contact each row is. Pure: the rows come from ``cdr_sql``'s query, as column name -> value.

Callback, attempt, phase and leg come from the optional ``acb_*`` columns when the table has them;
without them, from the standard columns: a callback call's linkedid is the id the daemon gave its
first channel, ``acb-<callback>-<n>-agent`` (agent phase) or ``acb-<callback>-<n>-contact`` (queue
phase), and the leg from the channel (the agent's own device; a ``Local/`` half: the contact's side)
and ``lastapp`` (``Queue``: the failover queue's member). The agent is ``acb_agent`` (the owner) when
the table has it, else the agent whose device (``[agents]``) is the agent leg's ``channel``, or in
the queue phase the member's device (``dstchannel`` of the member's row), for every row of that
call; a device ``[agents]`` does not list is shown as it is (``PJSIP/2005``). The contact is the
``dst`` of the call's ``Dial`` row (the trunk's leg), else the agent row's ``src`` (the caller ID
the agent saw).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from asterisk_cb.core import cdr_marks
from asterisk_cb.records.cel_rows import event_time

NONE = "-"
ORIGIN_LEG = "origin"  # a row of the originating call (--linkedid)
_OWN_LINKEDID = re.compile(r"acb-(?P<callback>.+)-(?P<attempt>[0-9]+)-(?P<leg>agent|contact)(?:-[0-9]+)?\Z")
_PHASES = {"agent": "agent", "contact": "queue"}  # the call's first channel -> the attempt's phase


@dataclass(frozen=True)
class CallRow:
    """One cdr row as ``asterisk-cb calls`` prints it; ``time`` as the table holds it (naive: Asterisk's
    local time, or UTC with ``usegmtime``)."""

    time: datetime
    callback: str
    agent: str
    contact: str
    attempt: str
    phase: str
    leg: str
    outcome: str  # the row's disposition
    billsec: int
    linkedid: str
    uniqueid: str
    origin_linkedid: str


def call_rows(
    rows: Sequence[Mapping[str, object]], agents: Mapping[str, str], *, usegmtime: bool = False
) -> list[CallRow]:
    """The rows in their order; ``agents`` maps a device (``PJSIP/1001``) to its agent id."""
    calls: dict[str, list[Mapping[str, object]]] = {}
    for row in rows:
        calls.setdefault(_text(row, "linkedid"), []).append(row)
    people = {linkedid: _people(call, agents) for linkedid, call in calls.items()}
    return [_call_row(row, people[_text(row, "linkedid")], usegmtime) for row in rows]


def of_agent(rows: Iterable[CallRow], agent: str) -> list[CallRow]:
    """The calls ``agent`` was on, with the originating call's rows (``--linkedid``) kept."""
    return [row for row in rows if row.agent == agent or row.leg == ORIGIN_LEG]


def _call_row(row: Mapping[str, object], people: tuple[str, str], usegmtime: bool) -> CallRow:
    linkedid = _text(row, "linkedid")
    own = _OWN_LINKEDID.match(linkedid)
    from_id = (own["callback"], own["attempt"], _PHASES[own["leg"]]) if own else (NONE, NONE, NONE)
    callback, attempt, phase = (
        _text(row, column) or fallback
        for column, fallback in zip((cdr_marks.ID, cdr_marks.ATTEMPT, cdr_marks.PHASE), from_id, strict=True)
    )
    is_callback = own is not None or callback != NONE
    agent, contact = people if is_callback else (NONE, NONE)
    time = row["calltime"]
    assert isinstance(time, datetime)
    return CallRow(
        time=event_time(time, usegmtime) if time.tzinfo else time,
        callback=callback,
        agent=agent,
        contact=contact,
        attempt=attempt,
        phase=phase,
        leg=(_text(row, cdr_marks.LEG) or _leg(row)) if is_callback else ORIGIN_LEG,
        outcome=_text(row, "disposition") or NONE,
        billsec=int(str(row.get("billsec") or 0)),
        linkedid=linkedid,
        uniqueid=_text(row, "uniqueid"),
        origin_linkedid=_text(row, cdr_marks.ORIGIN_LINKEDID),
    )


def _leg(row: Mapping[str, object]) -> str:
    """The leg as the standard columns tell it (no ``acb_leg`` column)."""
    if _text(row, "lastapp") == "Queue":
        return "member"
    return "contact" if _text(row, "channel").startswith("Local/") else "agent"


def _people(call: Sequence[Mapping[str, object]], agents: Mapping[str, str]) -> tuple[str, str]:
    """(agent, contact) of one call's rows: the agent from ``acb_agent`` when the table has it."""
    owner = next((_text(row, cdr_marks.AGENT) for row in call if _text(row, cdr_marks.AGENT)), "")
    device = next((_device(row, "channel") for row in call if _leg(row) == "agent"), None)
    device = device or next((_device(row, "dstchannel") for row in call if _leg(row) == "member"), None)
    dialled = next((_text(row, "dst") for row in call if _text(row, "lastapp") == "Dial"), "")
    seen = next((_text(row, "src") for row in call if _leg(row) == "agent"), "")
    return owner or (agents.get(device, device) if device else NONE), dialled or seen or NONE


def _device(row: Mapping[str, object], column: str) -> str:
    """``PJSIP/1001-0000002a`` -> ``PJSIP/1001``: the device, without Asterisk's channel counter."""
    return _text(row, column).rpartition("-")[0]


def _text(row: Mapping[str, object], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value)


def device_agents(agent_devices: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """agent -> its fixed devices (``[agents]``), turned into device -> agent."""
    return {device: agent for agent, devices in agent_devices.items() for device in devices}
