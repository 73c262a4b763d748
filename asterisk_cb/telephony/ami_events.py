"""Typed AMI events: the few the availability view and the call-in watch need, parsed from
panoramisk's header dicts.

AMI spells the same thing differently per event (Interface vs Location, MemberName vs Name, numeric
Status vs a State word); this module absorbs that so the view deals in one vocabulary: ARI's device
state words (NOT_INUSE, INUSE, RINGING...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

Headers = Mapping[str, str]

# enum ast_device_state, as QueueMember* events report it in `Status`.
DEVICE_STATE_BY_CODE = {
    "0": "UNKNOWN",
    "1": "NOT_INUSE",
    "2": "INUSE",
    "3": "BUSY",
    "4": "INVALID",
    "5": "UNAVAILABLE",
    "6": "RINGING",
    "7": "RINGINUSE",
    "8": "ONHOLD",
}


@dataclass(frozen=True)
class QueueMember:
    """One membership of one interface in one queue, as app_queue reports it.

    `state_interface` is the device whose state app_queue watches (the phone of a hot-desking agent
    logged in as a Local/ member); `last_call` is epoch seconds of the end of its last queue call.
    """

    queue: str
    interface: str
    state_interface: str
    member_name: str
    device_state: str
    paused: bool
    paused_reason: str = ""
    in_call: bool = False
    last_call: int = 0
    wrapup_s: int = 0


@dataclass(frozen=True)
class AmiEvent:
    name: str


@dataclass(frozen=True)
class DeviceStateChange(AmiEvent):
    device: str
    state: str


@dataclass(frozen=True)
class QueueMemberEvent(AmiEvent):
    """QueueMemberStatus/Added/Pause and QueueStatus's QueueMember entries: a membership's new state."""

    member: QueueMember


@dataclass(frozen=True)
class QueueMemberRemoved(AmiEvent):
    queue: str
    interface: str


@dataclass(frozen=True)
class FullyBooted(AmiEvent):
    """Sent on login to a booted Asterisk: the moment to (re)seed state."""


def device_of_channel(channel: str) -> str:
    """The device a channel belongs to: PJSIP/1001-0000001a -> PJSIP/1001."""
    return channel.rsplit("-", 1)[0] if channel else ""


@dataclass(frozen=True)
class AgentLogin(AmiEvent):
    """app_agent_pool: `agent` (e.g. 1001, its queue interface is Agent/1001) sits at `channel`."""

    agent: str
    channel: str

    @property
    def device(self) -> str:
        """The phone the agent logged in from."""
        return device_of_channel(self.channel)


@dataclass(frozen=True)
class AgentLogoff(AmiEvent):
    agent: str


@dataclass(frozen=True)
class AgentStatus(AmiEvent):
    """One entry of the Agents action: `status` AGENT_LOGGEDOFF, AGENT_IDLE or AGENT_ONCALL."""

    agent: str
    status: str
    channel: str = ""

    @property
    def device(self) -> str:
        """The phone the agent is logged in from; empty when logged off."""
        return "" if self.status == "AGENT_LOGGEDOFF" else device_of_channel(self.channel)


@dataclass(frozen=True)
class ChannelRef:
    """A channel as bridge and hangup events name it: ``uniqueid == linkedid`` marks the call's first
    channel (the caller's, on an inbound call); ``caller`` is its caller ID number."""

    uniqueid: str
    linkedid: str
    channel: str
    caller: str

    @property
    def first_of_call(self) -> bool:
        return bool(self.uniqueid) and self.uniqueid == self.linkedid


@dataclass(frozen=True)
class BridgeEnter(AmiEvent):
    bridge: str  # BridgeUniqueid
    member: ChannelRef


@dataclass(frozen=True)
class BridgeLeave(AmiEvent):
    bridge: str
    member: ChannelRef


@dataclass(frozen=True)
class Hangup(AmiEvent):
    member: ChannelRef


def channel_ref(headers: Headers) -> ChannelRef:
    return ChannelRef(
        uniqueid=headers.get("Uniqueid", ""),
        linkedid=headers.get("Linkedid", ""),
        channel=headers.get("Channel", ""),
        caller=headers.get("CallerIDNum", ""),
    )


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}


def queue_member(headers: Headers) -> QueueMember:
    interface = headers.get("Interface") or headers.get("Location") or ""
    return QueueMember(
        queue=headers.get("Queue", ""),
        interface=interface,
        state_interface=headers.get("StateInterface") or interface,
        member_name=headers.get("MemberName") or headers.get("Name") or interface,
        device_state=DEVICE_STATE_BY_CODE.get(headers.get("Status", "0"), "UNKNOWN"),
        paused=_flag(headers.get("Paused")),
        paused_reason=headers.get("PausedReason") or headers.get("Reason") or "",
        in_call=_flag(headers.get("InCall")),
        last_call=_int(headers.get("LastCall")),
        wrapup_s=_int(headers.get("Wrapuptime")),
    )


_PARSERS: dict[str, Callable[[str, Headers], AmiEvent]] = {
    "DeviceStateChange": lambda n, h: DeviceStateChange(
        n, device=h.get("Device", ""), state=h.get("State", "")
    ),
    "QueueMemberStatus": lambda n, h: QueueMemberEvent(n, member=queue_member(h)),
    "QueueMemberAdded": lambda n, h: QueueMemberEvent(n, member=queue_member(h)),
    "QueueMemberPause": lambda n, h: QueueMemberEvent(n, member=queue_member(h)),
    "QueueMember": lambda n, h: QueueMemberEvent(n, member=queue_member(h)),
    "QueueMemberRemoved": lambda n, h: QueueMemberRemoved(
        n, queue=h.get("Queue", ""), interface=h.get("Interface") or h.get("Location") or ""
    ),
    "FullyBooted": lambda n, h: FullyBooted(n),
    "AgentLogin": lambda n, h: AgentLogin(n, agent=h.get("Agent", ""), channel=h.get("Channel", "")),
    "AgentLogoff": lambda n, h: AgentLogoff(n, agent=h.get("Agent", "")),
    "BridgeEnter": lambda n, h: BridgeEnter(n, bridge=h.get("BridgeUniqueid", ""), member=channel_ref(h)),
    "BridgeLeave": lambda n, h: BridgeLeave(n, bridge=h.get("BridgeUniqueid", ""), member=channel_ref(h)),
    "Hangup": lambda n, h: Hangup(n, member=channel_ref(h)),
    "Agents": lambda n, h: AgentStatus(
        n, agent=h.get("Agent", ""), status=h.get("Status", ""), channel=h.get("Channel", "")
    ),
}

EVENT_NAMES = frozenset(_PARSERS)


def parse_ami_event(headers: Headers) -> AmiEvent | None:
    """Typed event, or None for the many AMI events the daemon does not use."""
    name = headers.get("Event", "")
    parser = _PARSERS.get(name)
    return parser(name, headers) if parser else None
