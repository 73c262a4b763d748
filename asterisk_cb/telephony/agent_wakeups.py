"""A callback waiting for its busy agent rings the agent the moment the agent turns free.

The lifecycle schedules such a callback ``reschedule_delay`` later (one minute by default) and marks
it waiting for the agent (``Callback.waiting_for_agent``; the store keeps those in the agent's waiting
order). What frees an agent arrives here from AMI after the availability view took it: a device gone
idle, a queue membership unpaused or added, an app_agent_pool login; and from the executor, each time
a run ends (its commit may have put a callback to wait just after the agent turned free, or released
the agent's call lock). Wrap-up ends with no event: a timer looks again then. When the view says the
agent is free, the store brings its waiting callbacks forward to their due time, oldest first
(``Claims.wake_waiting``), and the schedulers claim them at once. The delayed look stays as the
safety net (AMI down, a wake-up lost with Redis). With several daemons each one wakes on what it
hears; the store's move is idempotent and the call locks keep a second ring of the agent out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from redis.exceptions import RedisError

from asterisk_cb.telephony.ami import AmiConnection
from asterisk_cb.telephony.ami_events import AgentLogin, AmiEvent, DeviceStateChange, QueueMemberEvent
from asterisk_cb.telephony.availability import READY, AvailabilityView, Reason

log = logging.getLogger(__name__)


class WakeStore(Protocol):
    async def wake_waiting(self, agent: str) -> int: ...


def freed_by(view: AvailabilityView, event: AmiEvent) -> set[str]:
    """The agents ``event`` may have freed (the view has taken it already)."""
    match event:
        case DeviceStateChange(device=device, state=state) if state == READY:
            return view.agents_at(device)
        case QueueMemberEvent(member=member) if not member.paused:
            return view.agents_at(member.state_interface or member.interface)
        case AgentLogin():
            return view.agents_at(event.device)
    return set()


SPACING_S = 1.0  # between two wake-ups of one agent's callbacks
AT_ONCE = 4  # wake-ups in flight: an AMI reconnect looks at every agent, the claims need Redis too


class AgentWakeups:
    """Wakes the waiting callbacks of each agent the view sees turn free; one wake-up per agent in
    flight, another after it when the agent was seen free again meanwhile, and at most one per
    ``SPACING_S``: a callback woken into a lock the view cannot see (the agent's other callback
    about to ring it) waits again, and must not be woken straight back in a loop."""

    def __init__(
        self, view: AvailabilityView, store: WakeStore, clock: Callable[[], float] = time.time
    ) -> None:
        self._view = view
        self._store = store
        self._clock = clock
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._woken_at: dict[str, float] = {}  # the event loop's clock
        self._slots = asyncio.Semaphore(AT_ONCE)

    def on_event(self, event: AmiEvent) -> None:
        for agent in freed_by(self._view, event):
            self.check(agent)

    def check(self, agent: str) -> None:
        """Wake the agent's waiting callbacks if the view says it is free now; in wrap-up, look again
        when the wrap-up ends."""
        now = self._clock()
        seen = self._view.check(agent, now)
        if seen.available:
            self._wake(agent)
        elif seen.reason is Reason.WRAP_UP:
            self._look_again(agent, self._view.wrap_up_until(agent) - now)

    def check_all(self) -> None:
        """Every agent (AMI back: whoever turned free meanwhile was not heard)."""
        for agent in self._view.agents:
            self.check(agent)

    def close(self) -> None:
        """Stop the wrap-up timers and the wake-ups in flight (the daemon stops)."""
        for timer in self._timers.values():
            timer.cancel()
        for task in self._running.values():
            task.cancel()

    def _look_again(self, agent: str, after_s: float) -> None:
        timer = self._timers.pop(agent, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[agent] = loop.call_later(max(after_s, 0.0) + 0.01, self._timer_fired, agent)

    def _timer_fired(self, agent: str) -> None:
        self._timers.pop(agent, None)
        self.check(agent)

    def _wake(self, agent: str) -> None:
        if agent in self._running:
            self._again.add(agent)
            return
        loop = asyncio.get_running_loop()
        since = loop.time() - self._woken_at.get(agent, -SPACING_S)
        if since < SPACING_S:
            self._look_again(agent, SPACING_S - since)
            return
        self._woken_at[agent] = loop.time()
        self._running[agent] = loop.create_task(self._wake_now(agent))

    async def _wake_now(self, agent: str) -> None:
        try:
            async with self._slots:
                moved = await self._store.wake_waiting(agent)
        except RedisError as error:  # the delayed look still comes
            log.info("agent %s free: waiting callbacks not woken: %s", agent, error)
        else:
            if moved:
                log.info("agent %s free: %d waiting callback(s) woken", agent, moved)
        finally:
            del self._running[agent]
        if agent in self._again:
            self._again.discard(agent)
            self.check(agent)


def wake_from_ami(view: AvailabilityView, ami: AmiConnection, store: WakeStore) -> AgentWakeups:
    """Wake-ups on what ``ami`` says, judged by ``view``: subscribe after ``feed_from_ami``, so the
    view has taken each event first; every (re)login looks at every agent (a change while AMI was
    down was not heard). The executor's ``after_run`` is the returned ``check``."""
    wakeups = AgentWakeups(view, store)
    ami.subscribe(wakeups.on_event)
    ami.on_resync(lambda _: wakeups.check_all())
    return wakeups
