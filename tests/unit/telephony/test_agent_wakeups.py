"""The wake-ups of callbacks waiting for an agent (``agent_wakeups``): which AMI events wake whom, as
the availability view judges the agent; one wake-up per agent in flight and per spacing; wrap-up's end
looked at again by a timer; a Redis failure only leaves the delayed look."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from asterisk_cb.telephony import agent_wakeups
from asterisk_cb.telephony.agent_wakeups import AgentWakeups
from asterisk_cb.telephony.ami_events import AgentLogin, DeviceStateChange, QueueMember, QueueMemberEvent
from asterisk_cb.telephony.availability import AgentSpec, AvailabilityView
from asterisk_cb.telephony.availability_feed import apply_ami_event


class WakeLog:
    def __init__(self) -> None:
        self.woken: list[str] = []
        self.fail = False

    async def wake_waiting(self, agent: str) -> int:
        await asyncio.sleep(0)
        if self.fail:
            raise RedisConnectionError("Redis is down")
        self.woken.append(agent)
        return 1


@pytest.fixture(autouse=True)
def _short_spacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_wakeups, "SPACING_S", 0.1)


def view_of(*specs: AgentSpec) -> AvailabilityView:
    view = AvailabilityView.of(specs)
    view.replace_device_states([("PJSIP/1001", "INUSE"), ("PJSIP/1002", "INUSE"), ("PJSIP/1011", "INUSE")])
    return view


def member(interface: str, paused: bool, name: str = "") -> QueueMember:
    return QueueMember("support", interface, interface, name, "1", paused)


async def heard(view: AvailabilityView, wakeups: AgentWakeups, *events: object) -> None:
    for event in events:
        apply_ami_event(view, event)  # the view first, as the daemon subscribes them
        wakeups.on_event(event)
    await asyncio.sleep(0.02)


async def test_a_device_gone_idle_wakes_its_agent_s_callbacks_and_no_one_else_s() -> None:
    view = view_of(AgentSpec("1001", devices=("PJSIP/1001",)), AgentSpec("1002", devices=("PJSIP/1002",)))
    store = WakeLog()
    wakeups = AgentWakeups(view, store)
    await heard(view, wakeups, DeviceStateChange("DeviceStateChange", "PJSIP/1002", "RINGING"))
    assert store.woken == []
    await heard(view, wakeups, DeviceStateChange("DeviceStateChange", "PJSIP/1001", "NOT_INUSE"))
    assert store.woken == ["1001"]


async def test_a_paused_agent_is_woken_by_its_unpause_not_by_its_idle_phone() -> None:
    view = view_of(AgentSpec("1001", devices=("PJSIP/1001",)))
    view.replace_members([member("PJSIP/1001", paused=True)])
    store = WakeLog()
    wakeups = AgentWakeups(view, store)
    await heard(view, wakeups, DeviceStateChange("DeviceStateChange", "PJSIP/1001", "NOT_INUSE"))
    assert store.woken == []
    await heard(view, wakeups, QueueMemberEvent("QueueMemberPause", member("PJSIP/1001", paused=False)))
    assert store.woken == ["1001"]


async def test_a_hot_desking_and_a_pool_agent_are_found_by_the_phone_they_sit_at() -> None:
    view = view_of(AgentSpec("2001", member_name="agent-2001"), AgentSpec("alice", pool_agent="7001"))
    view.replace_members([member("PJSIP/1002", paused=False, name="agent-2001")])
    store = WakeLog()
    wakeups = AgentWakeups(view, store)
    await heard(view, wakeups, DeviceStateChange("DeviceStateChange", "PJSIP/1002", "NOT_INUSE"))
    view.set_device_state("PJSIP/1011", "NOT_INUSE")
    await heard(view, wakeups, AgentLogin("AgentLogin", "7001", "PJSIP/1011-00000001"))
    assert store.woken == ["2001", "alice"]


async def test_a_pool_agent_is_woken_by_the_unpause_of_its_agent_interface() -> None:
    view = view_of(AgentSpec("alice", pool_agent="7001"))
    view.agent_logged_in("7001", "PJSIP/1011")
    view.set_device_state("PJSIP/1011", "NOT_INUSE")
    view.replace_members([member("Agent/7001", paused=True)])
    store = WakeLog()
    wakeups = AgentWakeups(view, store)
    await heard(view, wakeups, QueueMemberEvent("QueueMemberPause", member("Agent/7001", paused=False)))
    assert store.woken == ["alice"]


async def test_wake_ups_of_one_agent_are_spaced_and_the_last_one_is_not_lost() -> None:
    view = view_of(AgentSpec("1001", devices=("PJSIP/1001",)))
    store = WakeLog()
    wakeups = AgentWakeups(view, store)
    idle = DeviceStateChange("DeviceStateChange", "PJSIP/1001", "NOT_INUSE")
    await heard(view, wakeups, idle, idle, idle)
    assert store.woken == ["1001"]  # at once, then no more before the spacing
    await asyncio.sleep(0.15)
    assert store.woken == ["1001", "1001"]  # the agent seen free again meanwhile: looked at once more
    wakeups.close()


async def test_the_end_of_a_wrap_up_is_looked_at_by_a_timer() -> None:
    view = view_of(AgentSpec("1001", devices=("PJSIP/1001",)))
    view.start_wrap_up("1001", time.time() + 0.1)
    store = WakeLog()
    wakeups = AgentWakeups(view, store)
    await heard(view, wakeups, DeviceStateChange("DeviceStateChange", "PJSIP/1001", "NOT_INUSE"))
    assert store.woken == []
    await asyncio.sleep(0.15)
    assert store.woken == ["1001"]


async def test_redis_down_costs_the_wake_up_only() -> None:
    view = view_of(AgentSpec("1001", devices=("PJSIP/1001",)))
    store = WakeLog()
    store.fail = True
    wakeups = AgentWakeups(view, store)
    await heard(view, wakeups, DeviceStateChange("DeviceStateChange", "PJSIP/1001", "NOT_INUSE"))
    store.fail = False
    await asyncio.sleep(0.12)  # past the spacing
    wakeups.check("1001")
    await asyncio.sleep(0.02)
    assert store.woken == ["1001"]


async def test_every_agent_looked_at_after_an_ami_reconnect_takes_a_few_redis_calls_at_a_time() -> None:
    agents = [AgentSpec(str(n), devices=(f"PJSIP/{n}",)) for n in range(2000, 2020)]
    view = AvailabilityView.of(agents)
    view.replace_device_states([(f"PJSIP/{n}", "NOT_INUSE") for n in range(2000, 2020)])

    class Counting(WakeLog):
        in_flight = most = 0

        async def wake_waiting(self, agent: str) -> int:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            await asyncio.sleep(0.005)
            self.in_flight -= 1
            return await super().wake_waiting(agent)

    store = Counting()
    AgentWakeups(view, store).check_all()
    await asyncio.sleep(0.2)
    assert sorted(store.woken) == sorted(spec.agent for spec in agents)
    assert store.most == agent_wakeups.AT_ONCE
