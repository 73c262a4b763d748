"""Which agents can take a callback now, and if not, why: an in-memory view fed by ARI/AMI events.

Pure: no IO, no clock (callers pass `now`), so every rule is unit-tested without a PBX. The adapters
seed it after every (re)connect and keep it current from events (availability_feed.py); nobody polls
Asterisk per callback.

Rules, in the order a reason is reported (the first that applies):
1. busy      a device of the agent is INUSE/BUSY/RINGING/RINGINUSE/ONHOLD: on a call elsewhere;
2. paused    paused in one of the agent's queues (the queues named for it; all its queues if none named);
3. wrap_up   inside wrap-up after its last queue call or callback;
4. offline   no device of the agent is NOT_INUSE (unregistered, unknown);
otherwise available, and `ring` lists every NOT_INUSE device: ring them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from asterisk_cb.telephony.ami_events import QueueMember

READY = "NOT_INUSE"
ON_A_CALL = frozenset({"INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD"})


@dataclass(frozen=True)
class AgentSpec:
    """How an agent is found, from config.

    `devices`: fixed phones (PJSIP/1001). `member_name`: the queue member name a hot-desking agent logs
    in with from any phone (its memberships' interfaces become its devices). `pool_agent`: the
    app_agent_pool agent id (Agent/<id>), whose phone is known from AgentLogin. `queues`: where a pause
    blocks callbacks (empty: every queue it is a member of). `wrapup_s`: minimum wrap-up after a
    queue call, for queues whose wrap-up AMI does not report per member.
    """

    agent: str
    devices: tuple[str, ...] = ()
    member_name: str = ""
    pool_agent: str = ""
    queues: tuple[str, ...] = ()
    wrapup_s: int = 0


@dataclass(frozen=True)
class AgentDevice:
    """`ring` is what to dial; `state` is the device whose state decides (they differ for Local/ members)."""

    ring: str
    state: str


class Reason(StrEnum):
    AVAILABLE = "available"
    UNKNOWN_AGENT = "unknown_agent"
    NO_DEVICE = "no_device"
    BUSY = "busy"
    PAUSED = "paused"
    WRAP_UP = "wrap_up"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Availability:
    """The answer; `detail` is one human line for the callback's history."""

    agent: str
    reason: Reason
    detail: str
    ring: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.reason is Reason.AVAILABLE


@dataclass
class AvailabilityView:
    agents: dict[str, AgentSpec] = field(default_factory=dict)
    device_states: dict[str, str] = field(default_factory=dict)
    members: dict[tuple[str, str], QueueMember] = field(default_factory=dict)
    pool_logins: dict[str, str] = field(default_factory=dict)
    wrapup_until: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, specs: Iterable[AgentSpec]) -> AvailabilityView:
        view = cls()
        view.set_agents(specs)
        return view

    # --- feeding -----------------------------------------------------------------------------------

    def set_agents(self, specs: Iterable[AgentSpec]) -> None:
        """(Re)load the agents from config; observed state is kept."""
        self.agents = {spec.agent: spec for spec in specs}

    def set_device_state(self, device: str, state: str) -> None:
        self.device_states[device] = state

    def replace_device_states(self, states: Iterable[tuple[str, str]]) -> None:
        """Seed from a complete list (AMI login): forget devices Asterisk no longer knows."""
        self.device_states = dict(states)

    def set_member(self, member: QueueMember) -> None:
        self.members[(member.queue, member.interface)] = member

    def remove_member(self, queue: str, interface: str) -> None:
        self.members.pop((queue, interface), None)

    def replace_members(self, members: Iterable[QueueMember]) -> None:
        self.members = {(m.queue, m.interface): m for m in members}

    def agent_logged_in(self, pool_agent: str, device: str) -> None:
        self.pool_logins[pool_agent] = device

    def replace_pool_logins(self, logins: dict[str, str]) -> None:
        self.pool_logins = dict(logins)

    def agent_logged_off(self, pool_agent: str) -> None:
        self.pool_logins.pop(pool_agent, None)

    def start_wrap_up(self, agent: str, until: float) -> None:
        """After a callback: no new one for this agent before `until` (epoch seconds)."""
        self.wrapup_until[agent] = max(until, self.wrapup_until.get(agent, 0.0))

    # --- queries -----------------------------------------------------------------------------------

    def check(self, agent: str, now: float) -> Availability:
        """Is `agent` available at `now` (epoch seconds), which devices to ring, and if not, why."""
        spec = self.agents.get(agent)
        if spec is None:
            return Availability(agent, Reason.UNKNOWN_AGENT, f"agent {agent} is not configured")
        devices = self.devices_of(spec)
        if not devices:
            return Availability(agent, Reason.NO_DEVICE, "not logged in on any device")
        return (
            self._busy(spec, devices)
            or self._paused(spec)
            or self._in_wrap_up(spec, now)
            or self._ready(spec, devices)
        )

    def is_free(self, agent: str, now: float) -> bool:
        """Could ``agent`` take a call at ``now``: what the inbound hook tells a returning contact's route."""
        return self.check(agent, now).available

    def ring_targets(self, agent: str) -> tuple[str, ...]:
        """The phones to dial for ``agent`` (none for an unknown agent or one logged in nowhere)."""
        spec = self.agents.get(agent)
        return tuple(device.ring for device in self.devices_of(spec)) if spec else ()

    def devices_of(self, spec: AgentSpec) -> tuple[AgentDevice, ...]:
        """Fixed phones, then hot-desk memberships, then the app_agent_pool login; each ring target once."""
        found = [AgentDevice(ring=device, state=device) for device in spec.devices]
        found += [
            self._device_of_member(m) for m in self._memberships(spec) if m.member_name == spec.member_name
        ]
        pool_device = self.pool_logins.get(spec.pool_agent) if spec.pool_agent else None
        if pool_device:
            found.append(AgentDevice(ring=pool_device, state=pool_device))
        unique: dict[str, AgentDevice] = {}
        for device in found:
            if device.ring:
                unique.setdefault(device.ring, device)
        return tuple(unique.values())

    def agent_at(self, device: str) -> str | None:
        """Whose phone ``device`` is (a fixed phone, or a hot-desking or pool agent's current one): how a
        feature code keyed on a channel finds its agent. None for no agent's, or several agents'."""
        owners = {
            spec.agent
            for spec in self.agents.values()
            if any(device in (found.ring, found.state) for found in self.devices_of(spec))
        }
        return owners.pop() if len(owners) == 1 else None

    def agents_at(self, device: str) -> set[str]:
        """Every agent ``device`` may be the phone of (fixed, hot-desk membership, pool login; or the
        ``Agent/<id>`` queue interface of a pool agent): whom its change may free. One pass over
        agents and memberships, not one per agent as in ``agent_at``."""
        names = {m.member_name for m in self.members.values() if device in (m.interface, m.state_interface)}
        pool = {agent for agent, at in self.pool_logins.items() if at == device}
        return {
            spec.agent
            for spec in self.agents.values()
            if device in spec.devices
            or (spec.member_name and spec.member_name in names)
            or (spec.pool_agent and (spec.pool_agent in pool or device == f"Agent/{spec.pool_agent}"))
        }

    def wrap_up_until(self, agent: str) -> float:
        """When the agent's wrap-up ends (epoch seconds; 0 for none): after our callback's call, or
        after a queue call by the queue's or the agent's own wrap-up time."""
        spec = self.agents.get(agent)
        if spec is None:
            return 0.0
        ends = [self.wrapup_until.get(agent, 0.0)]
        ends += [m.last_call + max(m.wrapup_s, spec.wrapup_s) for m in self._memberships(spec) if m.last_call]
        return max(ends)

    def memberships_of(self, agent: str) -> list[QueueMember]:
        """The agent's queue memberships: what the executor pauses (reason "callback") while a callback
        rings or is live, and what it unpauses after, or on restart when a pause outlived its callback."""
        spec = self.agents.get(agent)
        return self._memberships(spec) if spec else []

    def watched_devices(self) -> list[str]:
        """Every device whose state matters to some agent (what the AMI seed reads when not cached)."""
        return sorted({d.state for spec in self.agents.values() for d in self.devices_of(spec)})

    # --- rules -------------------------------------------------------------------------------------

    def _state(self, device: AgentDevice) -> str:
        return self.device_states.get(device.state, "UNKNOWN")

    def _busy(self, spec: AgentSpec, devices: Iterable[AgentDevice]) -> Availability | None:
        for device in devices:
            state = self._state(device)
            if state in ON_A_CALL:
                return Availability(spec.agent, Reason.BUSY, f"{device.state} is {state}")
        return None

    def _paused(self, spec: AgentSpec) -> Availability | None:
        for member in self._memberships(spec):
            if member.paused and (not spec.queues or member.queue in spec.queues):
                why = f" ({member.paused_reason})" if member.paused_reason else ""
                return Availability(spec.agent, Reason.PAUSED, f"paused in queue {member.queue}{why}")
        return None

    def _in_wrap_up(self, spec: AgentSpec, now: float) -> Availability | None:
        until = self.wrap_up_until(spec.agent)
        if until > now:
            return Availability(spec.agent, Reason.WRAP_UP, f"in wrap-up for {until - now:.0f} s more")
        return None

    def _ready(self, spec: AgentSpec, devices: Iterable[AgentDevice]) -> Availability:
        states = [(device, self._state(device)) for device in devices]
        ring = tuple(device.ring for device, state in states if state == READY)
        if not ring:
            listed = ", ".join(f"{device.state} {state}" for device, state in states)
            return Availability(spec.agent, Reason.OFFLINE, f"no device ready ({listed})")
        return Availability(spec.agent, Reason.AVAILABLE, f"ring {', '.join(ring)}", ring)

    def _memberships(self, spec: AgentSpec) -> list[QueueMember]:
        """Queue memberships that are this agent's: by member name, by its fixed phones, or Agent/<id>."""
        own = set(spec.devices)
        pool_interface = f"Agent/{spec.pool_agent}" if spec.pool_agent else None
        return [
            m
            for m in self.members.values()
            if (spec.member_name and m.member_name == spec.member_name)
            or m.interface in own
            or m.state_interface in own
            or m.interface == pool_interface
        ]

    def _device_of_member(self, member: QueueMember) -> AgentDevice:
        """A Local/ member rings its interface but is judged by its state interface; an Agent/ member is
        its logged-in phone (Agent/ channels cannot be dialled directly)."""
        if member.interface.startswith("Agent/"):
            device = self.pool_logins.get(member.interface.removeprefix("Agent/"), "")
            return AgentDevice(ring=device, state=device)
        return AgentDevice(ring=member.interface, state=member.state_interface or member.interface)
