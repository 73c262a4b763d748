"""No queue call for an agent while its callback rings or is live: its queue memberships are paused.

Why pause, not only ``ringinuse=no``: ``ringinuse=no`` keeps app_queue off a device that is already
ringing or in use, but between the device state change and app_queue seeing it (and on queues an admin
runs with ``ringinuse=yes``) a queue call can still reach the agent. A pause with reason "callback" is
explicit, visible in ``queue show`` and the queue log, and closes the window.

Rules (pure, ``to_pause``/``leftovers``): only memberships that are not paused already are paused, so
a pause someone else set (the agent's own, a supervisor's) is never lifted by us; what we paused is
exactly what we unpause. A QueuePause whose answer never came (timeout, link dropped:
``AmiNoAnswer``) may have been carried out: it is held as "maybe" (``Pause.sure`` False), and the
run's end reads QueueStatus and lifts it only if it shows paused with reason "callback" (a pause the
agent set meanwhile has its own reason and stays). Whatever escapes that (the daemon died, AMI was down
when the pause should have been lifted, an answer lost on the unpause) is lifted by ``PauseSweep``
(pause_sweep.py) on every AMI (re)connect and periodically: every "callback" pause of an agent that
holds no call lock. A callback resumed by another daemon (or the restarted one) takes over the agent's
"callback" pauses (``take_over``): they are its previous holder's, since an agent paused for a callback
is unavailable to every other callback; it lifts them when its run ends.

IO goes through AMI (QueuePause per queue and interface, an agent's all at once); AMI being down
never stops a callback: the pause is a protection, the call itself goes over ARI. Failures are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol

from asterisk_cb.telephony.ami import AmiError, AmiNoAnswer
from asterisk_cb.telephony.ami_events import QueueMember

log = logging.getLogger(__name__)

PAUSE_REASON = "callback"


@dataclass(frozen=True)
class Pause:
    """One membership we paused: what to unpause. ``sure`` False: the QueuePause got no answer, so it
    may or may not have taken effect; it is looked up before it is lifted."""

    queue: str
    interface: str
    sure: bool = True


def to_pause(memberships: Iterable[QueueMember]) -> tuple[Pause, ...]:
    """The memberships to pause for a callback: those nobody has paused."""
    return tuple(Pause(m.queue, m.interface) for m in memberships if not m.paused)


def leftovers(memberships: Iterable[QueueMember]) -> tuple[Pause, ...]:
    """The "callback" pauses among ``memberships``: a callback's, or left by one nobody lifted."""
    return tuple(
        Pause(m.queue, m.interface) for m in memberships if m.paused and m.paused_reason == PAUSE_REASON
    )


class QueuePauser(Protocol):
    """What the guard needs of AMI (``AmiConnection`` has it)."""

    async def queue_pause(
        self, interface: str, paused: bool, *, queue: str = "", reason: str = ""
    ) -> None: ...

    async def queue_members(self, queue: str = "") -> list[QueueMember]: ...


class PauseGate:
    """Many runs pause at once; the sweep's check-and-lift waits for them and keeps new ones out.

    A plain lock would do the second half too, but it made the runs of one daemon pause one after
    another: 10 callbacks due at once took their first ring 25 ms later each (bench/calls.py)."""

    def __init__(self) -> None:
        self._sweep = asyncio.Lock()  # held by the sweep; a run passes through it to enter
        self._runs = 0
        self._no_runs = asyncio.Event()
        self._no_runs.set()

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """A run pausing (waits while a sweep checks and lifts)."""
        async with self._sweep:
            self._runs += 1
            self._no_runs.clear()
        try:
            yield
        finally:
            self._runs -= 1
            if not self._runs:
                self._no_runs.set()

    @contextlib.asynccontextmanager
    async def sweeping(self) -> AsyncIterator[None]:
        """The sweep alone: no run pausing now, none starting until it is done."""
        async with self._sweep:
            await self._no_runs.wait()
            yield


class QueueGuard:
    """Pauses an agent's memberships for the time of one callback run and lifts exactly those."""

    def __init__(self, ami: QueuePauser) -> None:
        self.ami = ami
        # Runs pause inside it (together), the sweep checks the call locks and lifts inside it alone,
        # so in this process a run that took its agent's lock cannot pause between check and lift.
        self.pausing = PauseGate()

    async def hold(self, memberships: Iterable[QueueMember]) -> tuple[Pause, ...]:
        """Pause what nobody paused; returns what was (maybe) paused, to hand to ``release``."""
        async with self.pausing.holding():  # every membership at once: one AMI round trip, not one each
            held = await asyncio.gather(*(self._pause(pause) for pause in to_pause(memberships)))
        return tuple(pause for pause in held if pause is not None)

    async def take_over(self, memberships: Iterable[QueueMember], *, live: bool) -> tuple[Pause, ...]:
        """A callback resumed from a holder that vanished: its "callback" pauses are ours to lift now
        (nobody else would while another daemon keeps running); a call still live is held as well."""
        members = tuple(memberships)
        inherited = leftovers(members)
        return inherited + (await self.hold(members) if live else ())

    async def release(self, held: Iterable[Pause]) -> None:
        """Lift what ``hold`` paused; a "maybe" pause only if QueueStatus shows it paused with our reason
        (the agent's own pause, set meanwhile, has another reason and stays)."""
        pauses = tuple(held)
        maybe = [pause for pause in pauses if not pause.sure]
        lifted = [pause for pause in pauses if pause.sure] + await self._took_effect(maybe)
        await asyncio.gather(*(self._unpause(pause) for pause in lifted))

    async def callback_pauses(self) -> tuple[Pause, ...]:
        """Every membership paused with reason "callback" now, read from QueueStatus (AmiError if not)."""
        return leftovers(await self.ami.queue_members())

    async def _took_effect(self, maybe: list[Pause]) -> list[Pause]:
        """Those of the unanswered pauses that QueueStatus shows paused with reason "callback"."""
        if not maybe:
            return []
        try:
            queues = sorted({pause.queue for pause in maybe})
            found = set(leftovers([m for queue in queues for m in await self.ami.queue_members(queue)]))
        except AmiError as error:
            log.warning(
                "cannot tell if %d unanswered pause(s) took effect; the sweep will: %s", len(maybe), error
            )
            return []
        return [pause for pause in maybe if dataclasses.replace(pause, sure=True) in found]

    async def _pause(self, pause: Pause) -> Pause | None:
        """``pause`` once Asterisk did it, the same as "maybe" when its answer was lost, None when it
        was refused (e.g. not a member any more) or not sent (AMI down)."""
        try:
            await self.ami.queue_pause(pause.interface, True, queue=pause.queue, reason=PAUSE_REASON)
        except AmiNoAnswer as error:
            log.warning("pausing %s in %s: %s (maybe paused)", pause.interface, pause.queue, error)
            return dataclasses.replace(pause, sure=False)
        except AmiError as error:
            log.warning("pausing %s in %s failed: %s", pause.interface, pause.queue, error)
            return None
        return pause

    async def _unpause(self, pause: Pause) -> None:
        """A lost answer leaves the pause maybe in place: the sweep lifts it once the agent is free."""
        try:
            # No reason with an unpause: Asterisk would keep showing it.
            await self.ami.queue_pause(pause.interface, False, queue=pause.queue, reason="")
        except AmiError as error:
            log.warning("unpausing %s in %s failed: %s", pause.interface, pause.queue, error)
