"""Change requests: a person's change of a live callback, which only its holder can carry out.

Only the holder can hang the call up, so the change is a *request*: stored on the callback (field
``_req``, so a crash loses nothing) and announced on the requests channel. The holder applies it through
its fenced ``commit(..., applying=request)`` or refuses it with ``settle``; either way the outcome is
pushed to a list the requester waits on (``await_outcome``). While a request is pending the holder
keeps the callback even if its call ended, and a claim taken over carries it too. One request at a time:
a second one (or a direct edit) is refused with ``ChangePending`` until the first is dealt with.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from asterisk_cb.core.codec import request_to_text
from asterisk_cb.core.inputs import ChangeRequest
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import LONGEST_BLOCK_S, follow_channel
from asterisk_cb.store.base import StorePart
from asterisk_cb.store.claims import Claim
from asterisk_cb.store.encoding import REQUEST_FIELD, placement, request_or_none
from asterisk_cb.store.scripts import Script

# How long a change request's outcome waits for its requester (who normally takes it within seconds).
OUTCOME_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class RequestOutcome:
    """What the holder did with a change request: applied (the callback is now at ``version``) or
    refused (``detail`` says why; the callback is unchanged)."""

    applied: bool
    detail: str
    version: int

    def to_text(self) -> str:
        return json.dumps({"applied": self.applied, "detail": self.detail, "version": self.version})

    @classmethod
    def from_text(cls, text: str) -> RequestOutcome:
        values = json.loads(text)
        return cls(bool(values["applied"]), str(values["detail"]), int(values["version"]))


def outcome_args(keys: Keys, request: ChangeRequest | None, outcome: RequestOutcome) -> list[object]:
    """Request id, outcome key, outcome and its ttl for the scripts ('' x 4 without a request)."""
    if request is None:
        return ["", "", "", ""]
    ttl = int(OUTCOME_TTL.total_seconds())
    return [request.id, keys.request_outcome(request.id), outcome.to_text(), ttl]


class Requests(StorePart):
    """Request a change of a live callback, hear of requests, refuse one, wait for the outcome."""

    async def request_change(self, callback_id: str, request: ChangeRequest) -> None:
        """Record ``request`` for the holder of the live callback and wake it.

        Raises ``CallbackNotLive`` when no call exists (change it with ``edit``), ``ChangePending``
        while another request waits, ``CallbackNotFound``."""
        args = [callback_id, request_to_text(request), self._keys.requests_channel]
        await self._scripts.run(Script.REQUEST, [self._keys.callback(callback_id)], args)

    async def pending_request(self, callback_id: str) -> ChangeRequest | None:
        """The change request waiting on the callback, if any (a holder woken on the channel reads it)."""
        pending = await self._redis.hget(self._keys.callback(callback_id), REQUEST_FIELD)
        return request_or_none(callback_id, pending) if pending else None

    async def follow_requests(
        self, on_request: Callable[[str | None], None], retry_delay_s: float = 1.0
    ) -> None:
        """Call ``on_request(callback_id)`` for every change request recorded, and ``on_request(None)``
        when some may have been missed (start, reconnect). Runs until cancelled."""
        await follow_channel(self._redis, self._keys.requests_channel, on_request, retry_delay_s)

    async def settle(self, claim: Claim, request: ChangeRequest, refusal: str) -> Claim:
        """The holder refuses ``request`` (fenced): it is dropped, the requester learns ``refusal``, the
        callback is unchanged. A callback kept only for the request is let go, as a commit would."""
        keys = self._keys
        args = [
            keys.callback_prefix,
            claim.callback.id,
            claim.token,
            keys.wake_channel,
            *outcome_args(keys, request, RequestOutcome(False, refusal, claim.callback.version)),
            *placement(claim.callback),
        ]
        await self._scripts.run(Script.SETTLE, [keys.due, keys.leases], args)
        return dataclasses.replace(claim, request=None)

    async def await_outcome(self, request_id: str, timeout_s: float) -> RequestOutcome | None:
        """What the holder did with the request, waiting up to ``timeout_s``; None if not yet."""
        key = self._keys.request_outcome(request_id)
        if timeout_s <= 0:  # BLPOP's 0 would wait for ever
            outcome = await self._redis.lpop(key)
            return RequestOutcome.from_text(outcome) if outcome else None
        remaining = timeout_s
        while remaining > 0:  # in slices: a blocked read must end well before the socket timeout
            step = min(remaining, LONGEST_BLOCK_S)
            if reply := await self._redis.blpop([key], timeout=step):
                return RequestOutcome.from_text(reply[1])
            remaining -= step
        return None
