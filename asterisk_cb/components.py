"""The daemon's components: every part it keeps running, started, run and stopped the same way.

A component has a ``name``, says whether it is ``essential`` and has an async ``run()`` that runs
until cancelled (setup inside, cleanup in ``finally``). The ``Supervisor`` runs the daemon's list:

* an essential component (scheduler, ARI, AMI) that fails, or returns, stops the daemon: the others
  stop in reverse order and ``run`` returns ``EXIT_COMPONENT_FAILED``, its name in the log;
* an auxiliary one (metrics, the change-requests follower, later the API, AGI and CEL writer) that
  fails is logged with its traceback and restarted after a capped, jittered delay, shown as down in
  ``snapshot()`` meanwhile, so a bug in a side part never stops the callbacks;
* ``stop()`` (a signal) cancels them all, last started first, whatever each is doing (even waiting
  for ARI and AMI): the scheduler lets go of its calls while ARI and AMI still work.

The adapters at the end make today's parts components without changing them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from asterisk_cb.scheduler import Scheduler
from asterisk_cb.secrecy import redact
from asterisk_cb.telephony.ami import AmiConnection
from asterisk_cb.telephony.ari_stream import AriEventStream
from asterisk_cb.telephony.backoff import Backoff

log = logging.getLogger(__name__)

EXIT_COMPONENT_FAILED = 1
# Auxiliary restarts: 1 s, 2 s, ... up to a minute; back to 1 s once it ran this long without failing.
RESTART_BACKOFF = Backoff(initial_s=1.0, cap_s=60.0)
HEALTHY_AFTER_S = 60.0
RECANCEL_S = 0.2  # a swallowed cancellation is repeated this often while a component stops
STOP_TIMEOUT_S = 5.0  # per component: a part that ignores cancellation must not hang the shutdown
# How long start-up waits for ARI and AMI before the scheduler runs anyway: a callback found due while
# Asterisk is away is simply seen as "agent unavailable" and checked again after the reschedule delay.
LINK_READY_TIMEOUT_S = 10.0


class Component(Protocol):
    name: str
    essential: bool

    async def run(self) -> None:
        """Run until cancelled; returning counts as a failure."""


class ComponentEnded(Exception):
    """A component's ``run`` returned although nobody stopped it."""


class EssentialFailed(Exception):
    def __init__(self, component: str) -> None:
        super().__init__(f"essential component {component} failed")
        self.component = component


class Supervisor:
    """Runs components until ``stop()`` or an essential one fails; ``snapshot()`` says who is up."""

    def __init__(
        self,
        components: Sequence[Component],
        *,
        restart: Backoff = RESTART_BACKOFF,
        healthy_after_s: float = HEALTHY_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.components = list(components)
        self._restart = restart
        self._healthy_after_s = healthy_after_s
        self._clock = clock
        self._up = {component.name: False for component in self.components}
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    def snapshot(self) -> dict[str, bool]:
        """Component name -> running now (False while an auxiliary one waits to be restarted)."""
        return dict(self._up)

    async def run(self) -> int:
        """0 once stopped; ``EXIT_COMPONENT_FAILED`` when an essential component failed."""
        tasks = [asyncio.create_task(self._keep(c), name=f"component {c.name}") for c in self.components]
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await _stop_in_reverse(tasks)
        failed = [task.exception() for task in tasks if task.done() and not task.cancelled()]
        for error in failed:
            if isinstance(error, EssentialFailed):
                log.error(
                    "essential component failed: stopping the daemon",
                    extra={"component": error.component, "exit_code": EXIT_COMPONENT_FAILED},
                    exc_info=error.__cause__,
                )
        return EXIT_COMPONENT_FAILED if any(failed) else 0

    async def _keep(self, component: Component) -> None:
        """Run ``component``; restart it when it is auxiliary, raise ``EssentialFailed`` otherwise."""
        attempt = 0
        while True:
            started = self._clock()
            failure = await self._run_once(component)
            if component.essential:
                raise EssentialFailed(component.name) from failure
            if self._clock() - started >= self._healthy_after_s:
                attempt = 0
            delay = self._restart.delay(attempt)
            attempt += 1
            log.error(
                "component failed, restarting",
                extra={"component": component.name, "retry_in_s": round(delay, 2)},
                exc_info=failure,
            )
            await asyncio.sleep(delay)

    async def _run_once(self, component: Component) -> Exception:
        self._up[component.name] = True
        try:
            await component.run()
        except Exception as error:
            return error
        finally:
            self._up[component.name] = False
        return ComponentEnded(f"{component.name} returned")


async def _stop_in_reverse(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel each component, the last started first, and wait up to ``STOP_TIMEOUT_S`` for it.

    The cancellation is repeated every ``RECANCEL_S`` until the task ends: a library can swallow one
    that lands inside its call (seen with the Redis client: the command returns or fails instead, and
    the component's loop goes on), and one lost cancellation must not keep a SIGTERM waiting."""
    for task in reversed(tasks):
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while not task.done() and (left := deadline - time.monotonic()) > 0:
            if task.cancelling():
                log.info(
                    "component swallowed its cancellation: cancelled again",
                    extra={"component": task.get_name()},
                )
            task.cancel()
            await asyncio.wait([task], timeout=min(RECANCEL_S, left))
        if not task.done():
            log.warning("component did not stop in time", extra={"component": task.get_name()})


async def forever() -> None:
    """Wait until cancelled: the body of a component whose part runs on its own tasks."""
    await asyncio.get_running_loop().create_future()


# --- today's parts as components ------------------------------------------------------------------


@dataclass(frozen=True)
class AriEvents:
    """The ARI events websocket (it reconnects by itself); it returns only when another client took
    the Stasis app over, and a daemon without its ARI events cannot place calls: essential."""

    stream: AriEventStream
    name: str = "ari"
    essential: bool = True

    async def run(self) -> None:
        try:
            await self.stream.start()
        finally:
            await self.stream.stop()


@dataclass(frozen=True)
class AmiLink:
    """The AMI link (it reconnects by itself): availability and queue pauses depend on it."""

    ami: AmiConnection
    name: str = "ami"
    essential: bool = True

    async def run(self) -> None:
        await self.ami.start()
        try:
            await forever()
        finally:
            await self.ami.stop()


@dataclass(frozen=True)
class Link:
    """A connection the scheduler gives a moment to get ready before it claims."""

    name: str
    peer: str
    wait_ready: Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class SchedulerPart:
    """The scheduler, after ARI and AMI had a moment to connect and seed: a callback due before that
    would find its resumed channels not looked up yet (ARI), or its agent's devices unknown (AMI).
    Neither is needed to run. Stopped, it hands back the claims it holds (live calls stay up)."""

    scheduler: Scheduler
    links: Sequence[Link] = ()
    link_timeout_s: float = LINK_READY_TIMEOUT_S
    name: str = "scheduler"
    essential: bool = True

    async def run(self) -> None:
        await asyncio.gather(*(self._wait_for(link) for link in self.links))
        log.info("running", extra={"owner": self.scheduler.owner})
        running = asyncio.ensure_future(self.scheduler.run())
        try:
            await asyncio.shield(running)
        finally:
            self.scheduler.stop()
            await running

    async def _wait_for(self, link: Link) -> None:
        try:
            await link.wait_ready(self.link_timeout_s)
        except TimeoutError:
            log.warning(f"{link.name} not ready yet; running anyway", extra={"peer": redact(link.peer)})


@dataclass(frozen=True)
class ChangeRequests:
    """Wakes the run holding a callback when a person's change of it is requested (cancel while it
    rings). Auxiliary: no request is lost while it is down (each is stored on its callback and every
    holder commit returns it), and a restarted follower makes every run look again at once."""

    follow: Callable[[], Awaitable[None]]
    name: str = "requests"
    essential: bool = False

    async def run(self) -> None:
        await self.follow()


class DueOrderStore(Protocol):
    async def due_order_is_built(self) -> bool: ...

    async def build_due_order(self) -> int: ...


@dataclass(frozen=True)
class DueOrderBuild:
    """Builds the due orders listings page through, once, after an upgrade from a version without them
    (``Housekeeping.build_due_order``). Auxiliary: retried while Redis is away; until it is done a
    listing misses the callbacks created before the upgrade."""

    store: DueOrderStore
    name: str = "due-order"
    essential: bool = False

    async def run(self) -> None:
        if not await self.store.due_order_is_built():
            log.info("building the due order of every callback (once, after an upgrade)")
            placed = await self.store.build_due_order()
            log.info("due order built", extra={"callbacks": placed})
        await forever()
