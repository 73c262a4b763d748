"""The scheduler's executor on the real PBX: each claim is run by a ``ClaimRunner`` (the claim, the
fenced commits, the call's locks, change requests) over an ``AriCall`` (the call in Asterisk).

This module only wires the two per claim and holds what every call of the daemon shares: the routing
of ARI events and change requests to the right call. How a callback call runs, step by step and with
what was measured: docs/calls.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from asterisk_cb.runner import ClaimRunner, ClaimWrites, SettingsFor
from asterisk_cb.store import Claim
from asterisk_cb.telephony.answer_marks import AnswerMarks
from asterisk_cb.telephony.ari import AriClient
from asterisk_cb.telephony.ari_call import AriCall, Telephony
from asterisk_cb.telephony.ari_stream import AriEventStream
from asterisk_cb.telephony.availability import AvailabilityView
from asterisk_cb.telephony.call_context import ExecutorOptions
from asterisk_cb.telephony.call_routes import CallRoutes
from asterisk_cb.telephony.health import HealthFlag
from asterisk_cb.telephony.queue_guard import QueueGuard

__all__ = ["CallbackExecutor", "ExecutorOptions"]

Clock = Callable[[], datetime]


class ExecutorStore(ClaimWrites, Protocol):
    """What the executor needs of the store: the runner's fenced writes and the change requests'
    wake-ups."""

    async def follow_requests(self, on_request: Callable[[str | None], None]) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class CallbackExecutor:
    """Implements ``scheduler.Executor``: ``execute(claim)`` returns once the callback is scheduled
    again or finished."""

    def __init__(
        self,
        store: ExecutorStore,
        ari: AriClient,
        events: AriEventStream,
        *,
        availability: AvailabilityView,
        settings_for: SettingsFor,
        options: ExecutorOptions,
        queue_guard: QueueGuard | None = None,
        answers: AnswerMarks | None = None,
        feeds: tuple[HealthFlag, ...] = (),
        clock: Clock = utc_now,
        after_run: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.settings_for = settings_for
        self.after_run = after_run  # told the agent of each run that ended (``agent_wakeups``)
        self.routes = CallRoutes(events)
        self.telephony = Telephony(
            ari, events, self.routes, availability, options, clock, queue_guard, answers, feeds
        )

    async def execute(self, claim: Claim) -> None:
        runner = ClaimRunner(
            self.store,
            claim,
            settings_for=self.settings_for,
            open_call=lambda callback, settings, fence: AriCall(self.telephony, callback, settings, fence),
            clock=self.telephony.clock,
            lines=self.telephony.options.lines,
        )
        try:
            await runner.run()
        finally:
            await runner.close()
            if self.after_run is not None:
                self.after_run(runner.callback.agent)

    async def follow_requests(self) -> None:
        """Wake the run holding a callback when a person's change of it is requested; after a gap in
        the channel (start, reconnect) every run looks. Runs until cancelled (the daemon runs it)."""
        await self.store.follow_requests(self.routes.change_requested)
