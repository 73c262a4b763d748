"""Wiring only: keep an AvailabilityView current from the AMI link.

Every (re)login re-seeds the view (device states, queue memberships and pauses, agent-pool logins)
before that connection's events; events then move it forward. Device states come from AMI alone, one
ordered source: ARI's device-state subscription is not used (see ari_stream's docstring for why).
"""

from __future__ import annotations

from asterisk_cb.telephony.ami import AmiConnection, AmiSnapshot
from asterisk_cb.telephony.ami_events import (
    AgentLogin,
    AgentLogoff,
    AmiEvent,
    DeviceStateChange,
    QueueMemberEvent,
    QueueMemberRemoved,
)
from asterisk_cb.telephony.availability import AvailabilityView


def feed_from_ami(view: AvailabilityView, ami: AmiConnection) -> None:
    def seed(snapshot: AmiSnapshot) -> None:
        view.replace_device_states((event.device, event.state) for event in snapshot.device_states)
        view.replace_members(snapshot.members)
        if snapshot.agent_logins is not None:
            view.replace_pool_logins(snapshot.agent_logins)

    ami.on_resync(seed)
    ami.subscribe(lambda event: apply_ami_event(view, event))


def apply_ami_event(view: AvailabilityView, event: AmiEvent) -> None:
    """Move the view forward by one AMI event (events it does not care about change nothing)."""
    match event:
        case DeviceStateChange(device=device, state=state):
            view.set_device_state(device, state)
        case QueueMemberEvent(member=member):
            view.set_member(member)
        case QueueMemberRemoved(queue=queue, interface=interface):
            view.remove_member(queue, interface)
        case AgentLogin(agent=agent):
            view.agent_logged_in(agent, event.device)
        case AgentLogoff(agent=agent):
            view.agent_logged_off(agent)
