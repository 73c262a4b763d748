"""No queue call for an agent while its callback rings or is live: its queue memberships are paused.

Why pause, not only ``ringinuse=no``: ``ringinuse=no`` keeps app_queue off a device that is already
ringing or in use, but between the device state change and app_queue seeing it (and on queues an admin
runs with ``ringinuse=yes``) a queue call can still reach the agent. A pause with reason "callback" is
explicit, visible in ``queue show`` and the queue log, and closes the window.

Rules (pure, ``to_pause``/``leftovers``): only memberships that are not paused already are paused, so
a pause someone else set (the agent's own, a supervisor's) is never lifted by us; what we paused is
exactly what we unpause. A daemon that died while holding pauses leaves them behind: on every AMI
(re)connect, start included, each membership paused with reason "callback" is unpaused
(``release_leftovers``) except those of agents
whose call lock holds (``Store.agents_in_calls``): another daemon's callback rings or talks through
them right now, and its pauses are its own. A callback resumed by another daemon (or the restarted
one) takes over the agent's "callback" pauses (``take_over``): they are its previous holder's, since
an agent paused for a callback is unavailable to every other callback; it lifts them when its run ends.

IO goes through AMI (QueuePause per queue and interface); AMI being down never stops a callback: the
pause is a protection, the call itself goes over ARI. Failures are logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from asterisk_cb.telephony.ami import AmiError
from asterisk_cb.telephony.ami_events import QueueMember

log = logging.getLogger(__name__)

PAUSE_REASON = "callback"


@dataclass(frozen=True)
class Pause:
    """One membership we paused: what to unpause."""

    queue: str
    interface: str


def to_pause(memberships: Iterable[QueueMember]) -> tuple[Pause, ...]:
    """The memberships to pause for a callback: those nobody has paused."""
    return tuple(Pause(m.queue, m.interface) for m in memberships if not m.paused)


def leftovers(memberships: Iterable[QueueMember]) -> tuple[Pause, ...]:
    """Pauses a callback set and nobody lifted (the daemon died): every "callback" pause."""
    return tuple(
        Pause(m.queue, m.interface) for m in memberships if m.paused and m.paused_reason == PAUSE_REASON
    )


class QueuePauser(Protocol):
    """What the guard needs of AMI (``AmiConnection`` has it)."""

    async def queue_pause(
        self, interface: str, paused: bool, *, queue: str = "", reason: str = ""
    ) -> None: ...

    async def queue_members(self, queue: str = "") -> list[QueueMember]: ...


class QueueGuard:
    """Pauses an agent's memberships for the time of one callback run and lifts exactly those."""

    def __init__(self, ami: QueuePauser) -> None:
        self.ami = ami

    async def hold(self, memberships: Iterable[QueueMember]) -> tuple[Pause, ...]:
        """Pause what nobody paused; returns what was paused (to hand to ``release``)."""
        held: list[Pause] = []
        for pause in to_pause(memberships):
            if await self._set(pause, paused=True):
                held.append(pause)
        return tuple(held)

    async def take_over(self, memberships: Iterable[QueueMember], *, live: bool) -> tuple[Pause, ...]:
        """A callback resumed from a holder that vanished: its "callback" pauses are ours to lift now
        (nobody else would while another daemon keeps running); a call still live is held as well."""
        members = tuple(memberships)
        inherited = leftovers(members)
        return inherited + (await self.hold(members) if live else ())

    async def release(self, held: Iterable[Pause]) -> None:
        for pause in held:
            await self._set(pause, paused=False)

    async def release_leftovers(self, in_calls: Iterable[QueueMember] = ()) -> tuple[Pause, ...]:
        """At start: unpause every membership a previous run left paused with reason "callback", but
        those of ``in_calls`` (memberships of agents a live callback holds, whichever daemon's)."""
        kept = {Pause(m.queue, m.interface) for m in in_calls}
        try:
            found = tuple(pause for pause in leftovers(await self.ami.queue_members()) if pause not in kept)
        except AmiError as error:
            log.warning("cannot look for leftover callback pauses: %s", error)
            return ()
        await self.release(found)
        if found:
            log.info("unpaused %d leftover callback pause(s)", len(found))
        return found

    async def _set(self, pause: Pause, *, paused: bool) -> bool:
        try:
            # The reason goes with the pause only: an unpause with a reason would leave it shown.
            reason = PAUSE_REASON if paused else ""
            await self.ami.queue_pause(pause.interface, paused, queue=pause.queue, reason=reason)
        except AmiError as error:
            verb = "pausing" if paused else "unpausing"
            log.warning("%s %s in %s failed: %s", verb, pause.interface, pause.queue, error)
            return False
        return True
