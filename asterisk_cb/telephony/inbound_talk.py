"""How long an inbound caller talked with each agent, from Asterisk's bridge and hangup events.

Pure: no IO, no clock (each event comes with ``now``, monotonic seconds), so every rule is unit-tested
without a PBX; ``call_in_watch`` feeds it from AMI and settles what it reports.

* **Talk** is the time the caller's channel shares a bridge with an agent's device channel, not the
  time since the answer: most PBXs (the lab's ``lab-inbound`` too) answer before Queue(), and a caller
  who waited 10 minutes in the queue and hung up after 5 s with the agent talked 5 s. It is summed per
  agent over the call (a hold that leaves the bridge, a transfer back), and reported once per agent
  when the caller hangs up.
* **The caller** is the first channel of its call (``uniqueid == linkedid``: the channel the trunk or
  phone created when the contact called in), no agent's device, with a caller ID number. A callback's
  own legs never are: the daemon's originate makes the agent's channel first, and the contact's leg
  comes after it. An agent's own calls start on the agent's device.
* It works from whatever the admin's dialplan does (Queue, Dial, transfers): only bridges count.

Events can be missed (AMI reconnects): ``forget_all`` drops every call in progress then, and the number
of callers followed at once is capped, so nothing grows without bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from asterisk_cb.telephony.ami_events import ChannelRef

AgentOf = Callable[[str], "str | None"]  # channel name (PJSIP/1001-0000001a) -> its agent, if any
MAX_CALLERS = 20_000


@dataclass(frozen=True)
class Talk:
    """One inbound caller's talk with one agent over a whole call."""

    number: str  # the caller ID number as Asterisk reported it
    agent: str
    seconds: float
    linkedid: str


@dataclass
class _Caller:
    number: str
    linkedid: str
    talked: dict[str, float] = field(default_factory=dict)  # agent -> closed seconds
    since: dict[str, float] = field(default_factory=dict)  # agent -> start of the open stretch

    def with_agents(self, present: set[str], now: float) -> None:
        """Bridged with exactly ``present`` from ``now``: open the new stretches, close the others."""
        for agent in set(self.since) - present:
            self._close(agent, now)
        for agent in present:
            self.since.setdefault(agent, now)

    def close_all(self, now: float) -> None:
        for agent in list(self.since):
            self._close(agent, now)

    def _close(self, agent: str, now: float) -> None:
        start = self.since.pop(agent)
        self.talked[agent] = self.talked.get(agent, 0.0) + max(0.0, now - start)


class TalkTracker:
    """Follows bridges; ``hangup`` returns the caller's talks (one per agent) when its call ends."""

    def __init__(self, agent_of: AgentOf, max_callers: int = MAX_CALLERS) -> None:
        self._agent_of = agent_of
        self._max_callers = max_callers
        self._bridges: dict[str, set[str]] = {}  # bridge -> uniqueids in it
        self._bridge_of: dict[str, str] = {}  # uniqueid -> its bridge
        self._agents: dict[str, str] = {}  # uniqueid of a bridged agent channel -> agent
        self._callers: dict[str, _Caller] = {}  # uniqueid of an inbound caller -> its talks

    def bridge_enter(self, bridge: str, member: ChannelRef, now: float) -> None:
        previous = self._bridge_of.get(member.uniqueid)
        if previous is not None and previous != bridge:  # its BridgeLeave went missing
            self.bridge_leave(previous, member, now)
        self._bridges.setdefault(bridge, set()).add(member.uniqueid)
        self._bridge_of[member.uniqueid] = bridge
        agent = self._agent_of(member.channel)
        if agent is not None:
            self._agents[member.uniqueid] = agent
        elif member.uniqueid not in self._callers and self._is_caller(member):
            self._callers[member.uniqueid] = _Caller(member.caller, member.linkedid)
        self._update(bridge, now)

    def bridge_leave(self, bridge: str, member: ChannelRef, now: float) -> None:
        members = self._bridges.get(bridge)
        if members is None or member.uniqueid not in members:
            return
        members.discard(member.uniqueid)
        if not members:
            del self._bridges[bridge]
        self._bridge_of.pop(member.uniqueid, None)
        self._agents.pop(member.uniqueid, None)
        caller = self._callers.get(member.uniqueid)
        if caller is not None:
            caller.close_all(now)
        self._update(bridge, now)

    def hangup(self, member: ChannelRef, now: float) -> list[Talk]:
        """The channel is gone: when it was an inbound caller, what it talked, agent by agent."""
        bridge = self._bridge_of.get(member.uniqueid)
        if bridge is not None:
            self.bridge_leave(bridge, member, now)
        caller = self._callers.pop(member.uniqueid, None)
        if caller is None:
            return []
        caller.close_all(now)
        return [
            Talk(caller.number, agent, seconds, caller.linkedid) for agent, seconds in caller.talked.items()
        ]

    def forget_all(self) -> None:
        """Events were missed (AMI reconnected): the calls in progress cannot be measured any more."""
        self._bridges.clear()
        self._bridge_of.clear()
        self._agents.clear()
        self._callers.clear()

    @property
    def callers(self) -> int:
        return len(self._callers)

    def _is_caller(self, member: ChannelRef) -> bool:
        return member.first_of_call and bool(member.caller) and len(self._callers) < self._max_callers

    def _update(self, bridge: str, now: float) -> None:
        members = self._bridges.get(bridge, set())
        present = {self._agents[uid] for uid in members if uid in self._agents}
        for uid in members:
            caller = self._callers.get(uid)
            if caller is not None:
                caller.with_agents(present, now)
