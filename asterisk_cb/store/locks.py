"""Call locks: no two callbacks' calls (of any daemon) ring the same agent or contact number at once.

Before the holder commits a ring it takes its call's locks: the agent's (agent phase) and the contact
number's, both or neither, and a line of a pool shared by every daemon when calls are capped. They name
the callback and the claim's token and hold while that lease runs or the call lives, so a holder that
vanished before ringing lets them lapse with its lease, and the resumer of a live call re-takes them.
The write that ends a call ends them too, so a holder killed right after it leaves nothing held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from asterisk_cb.core.inputs import Waiting
from asterisk_cb.store.base import StorePart
from asterisk_cb.store.claims import Claim, LinePool, pool_key
from asterisk_cb.store.scripts import Script


@dataclass(frozen=True)
class CallLocks:
    """What a callback's call holds while it lives: its agent (None in the queue phase: no agent is
    rung), its contact's number, and, when calls are capped, a line of ``lines``."""

    agent: str | None
    contact: str
    lines: LinePool | None = None


class Locks(StorePart):
    """Take and give back a call's locks; tell which agents are in callback calls."""

    async def take_call_locks(self, claim: Claim, locks: CallLocks) -> Waiting | None:
        """Take the call's locks and line, all or none (fenced: ``LeaseLost`` for a late holder). Returns
        what another callback's call holds (nothing taken then), or None when all were taken. A resume
        claim (the call exists) re-takes them and is never refused."""
        lock_keys = self._lock_keys(locks)
        cap = locks.lines.cap if locks.lines else ""
        args = self._lock_args(claim, len(lock_keys), cap, "1" if claim.resume else "")
        keys = [self._keys.leases, *lock_keys, *pool_key(self._keys, locks.lines)]
        [taken_by] = await self._scripts.run(Script.LOCK, keys, args)
        if taken_by == 0:
            return None
        kinds = [Waiting.AGENT] * (locks.agent is not None) + [Waiting.CONTACT, Waiting.CALL_LIMIT]
        return kinds[taken_by - 1]

    async def release_call_locks(self, claim: Claim, locks: CallLocks) -> int:
        """Give back what ``take_call_locks`` took with this claim's token, unless the call still lives
        (whoever resumes it re-takes them). Returns how many locks and lines were given back."""
        lock_keys = self._lock_keys(locks)
        args = self._lock_args(claim, len(lock_keys), self._keys.wake_channel)
        keys = [*lock_keys, *pool_key(self._keys, locks.lines)]
        return int(await self._scripts.run(Script.UNLOCK, keys, args))

    async def agents_in_calls(self, agents: Sequence[str]) -> set[str]:
        """The agents whose lock holds now: a callback's call (any daemon's) rings or talks through them."""
        keys = [self._keys.leases, *(self._keys.agent_lock(agent) for agent in agents)]
        held = await self._scripts.run(Script.HELD, keys, [self._keys.callback_prefix]) if agents else []
        return {agents[position - 1] for position in held}

    def _lock_args(self, claim: Claim, *more: object) -> list[object]:
        """The lock scripts' arguments: callback prefix, id, token (which claim holds), then ``more``."""
        return [self._keys.callback_prefix, claim.callback.id, claim.token, *more]

    def _lock_keys(self, locks: CallLocks) -> list[str]:
        agent = [self._keys.agent_lock(locks.agent)] if locks.agent is not None else []
        return [*agent, self._keys.contact_lock(locks.contact)]
