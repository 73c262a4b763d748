"""The store's refusals: one type per ``ACB_*`` error reply of the Lua scripts (``scripts.py`` maps
them), so each caller catches what it can act on: read again, drop the claim, or tell the person."""

from __future__ import annotations

from asterisk_cb.core.codec import CodecError, request_from_text
from asterisk_cb.core.inputs import ChangeRequest


class StoreError(Exception):
    """Base of every refusal of the store."""


class CallbackNotFound(StoreError):
    """No callback with that id."""


class DuplicateCallback(StoreError):
    """A callback with that id already exists (ids must be unique; idempotency keys are the retry path)."""


class VersionConflict(StoreError):
    """Someone changed the callback since it was read: read it again and decide again."""


class CallbackLive(StoreError):
    """A person may not change a callback while its call lives."""


class CallbackNotLive(StoreError):
    """A change request needs a live call; without one the person changes the callback directly."""


class ChangePending(StoreError):
    """Another change request of this callback has not been applied or refused yet."""

    def __init__(self, pending: str) -> None:
        try:
            self.pending: ChangeRequest | None = request_from_text(pending)
        except CodecError:
            self.pending = None
        super().__init__(f"change request pending: {pending}")


class LeaseLost(StoreError):
    """The writer no longer holds the callback: it must stop acting on it (and must not dial)."""


class StaleToken(LeaseLost):
    """Another claim (or a person's edit) replaced the writer's claim."""


class LeaseExpired(LeaseLost):
    """The writer's lease ran out on the Redis server clock."""


class NotReplicated(StoreError):
    """The commit is on the primary, but no replica confirmed it in time: a failover now could lose
    it, so its holder must not act on it (no dial). The record stays live; the lease lapses and the
    next holder resumes the callback from what the surviving Redis has."""
