"""The one path every way in (REST API, feature code, CLI, web panel) takes to schedule and change callbacks.

Keeping the checks here means one set of rules and one set of errors whoever asks: permission, the feature
switch, known agents and queues, the core's validation, and the store's refusals all come out as a
``ServiceError`` with a machine-readable ``code`` and a sentence a person can act on, never a traceback.
A face hands over raw text (``ScheduleRequest``, a due time like ``+2h``) and prints what comes back.
Import everything from here; the parts live beside it: ``service_access`` (actors, permissions,
errors), ``service_settings`` (run-time settings), ``service_roles`` (an agent's actor, run-time
roles), ``service_paging`` (pages and cursors).

A change of a callback whose call is live (ringing, waiting in the failover queue) cannot be written
directly: only the daemon holding the call can hang it up. It becomes a request to that daemon (see
``store``), which applies it through its own fenced commit or refuses it (the contact answered at the
same moment); the service waits up to ``wait_s`` for that outcome (``Change.outcome``). A change the
lifecycle refuses in the state read (the contact is talking) is refused at once.

A number's pending callbacks (``pending_for_number``) come from the contact index (pending callbacks
only, keyed canonically): the inbound hook asks it for a caller, the feature code for the contact of
the agent's call. Once an inbound caller has talked with an agent, ``settle_call_in`` completes the
callbacks that talk settles under their own settings.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from asterisk_cb.core import lifecycle, rules
from asterisk_cb.core.inputs import Cancel, ChangeRequest, ContactCalledIn, Edit, PersonInput, Reschedule
from asterisk_cb.core.lifecycle import IllegalTransition, NewCallback
from asterisk_cb.core.model import Callback, Event, Source, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.service_access import ADMIN, Actor, ErrorCode, Permission, ServiceError, require
from asterisk_cb.service_paging import (
    DEFAULT_LIMIT,
    OrderKey,
    Page,
    check_limit,
    decode_cursor,
    encode_cursor,
    order_key,
    page_of,
)
from asterisk_cb.service_roles import RolesService, RolesStore
from asterisk_cb.service_settings import SettingsService, SettingsStore, effective_settings
from asterisk_cb.store import (
    CallbackLive,
    CallbackNotFound,
    CallbackNotLive,
    ChangePending,
    Created,
    DueWindow,
    DuplicateCallback,
    RequestOutcome,
    VersionConflict,
)

__all__ = [
    "ADMIN",
    "DEFAULT_LIMIT",
    "REQUEST_WAIT_S",
    "Actor",
    "CallbackService",
    "CallbackStore",
    "Change",
    "ChangeOutcome",
    "Directory",
    "ErrorCode",
    "NumberPending",
    "Page",
    "Permission",
    "Query",
    "RolesService",
    "RolesStore",
    "ScheduleRequest",
    "ServiceError",
    "SettingsService",
    "SettingsStore",
    "effective_settings",
]

log = logging.getLogger(__name__)

# 16 hex characters: 64 random bits make a clash vanishingly rare (and a clash is refused, then retried),
# and every byte of an id is stored several times per callback (hash key, due set, indexes).
ID_BYTES = 8
_CREATE_RETRIES = 3

# The field a refusal names when the admin's switch ``enabled`` is off for the agent or queue.
_ENABLED = "enabled"
# A listing page reads ids in chunks of at least this many (a filter may drop most of a chunk).
_MIN_CHUNK = 100
# A state held by at most this many callbacks is listed from its own set, not the due order.
_RARE_STATE = 2_000
# A person's change races the scheduler (which moves a callback when it falls due): re-read and retry.
_EDIT_RETRIES = 5
# How long a change of a live callback waits for the daemon holding the call to apply it (normally
# milliseconds; a holder that died is replaced after its lease, 30 s, and then applies it).
REQUEST_WAIT_S = 5.0


class ChangeOutcome(StrEnum):
    """How a person's change went."""

    APPLIED = "applied"  # no call was live: changed directly
    APPLIED_BY_HOLDER = "applied_by_holder"  # the daemon holding the call applied it (ring hung up)
    PENDING = "pending"  # recorded for the holder, not applied within the wait (it will be, or refused)


@dataclass(frozen=True)
class Change:
    """A person's change: the callback as it is now, and how the change went."""

    callback: Callback
    outcome: ChangeOutcome


@dataclass(frozen=True)
class NumberPending:
    """The pending callbacks of a number, soonest due first: the first is the one the inbound hook
    describes. None for a number nobody is to call back (or no usable number)."""

    number: str
    pending: tuple[Callback, ...] = ()

    @property
    def first(self) -> Callback | None:
        return self.pending[0] if self.pending else None


class CallbackStore(Protocol):
    """What the service needs from the store: create, read, index look-ups and a person's changes."""

    async def create(
        self, callback: Callback, events: Sequence[Event], *, idempotency_key: str | None = None
    ) -> Created: ...

    async def get(self, callback_id: str) -> Callback | None: ...

    async def get_many(self, callback_ids: Iterable[str]) -> list[Callback]: ...

    async def ids_in_state(self, state: State) -> set[str]: ...

    async def ids_for_agent(self, agent: str) -> set[str]: ...

    async def ids_for_contact(self, contact_number: str) -> set[str]: ...

    async def ids_for_call(self, uniqueid_or_linkedid: str) -> set[str]: ...

    async def ids_by_due(
        self, agent: str | None, window: DueWindow, after: OrderKey | None, count: int
    ) -> list[OrderKey]: ...

    async def count_in_state(self, state: State) -> int: ...

    async def edit(self, before: Callback, after: Callback, events: Sequence[Event]) -> Callback: ...

    async def request_change(self, callback_id: str, request: ChangeRequest) -> None: ...

    async def await_outcome(self, request_id: str, timeout_s: float) -> RequestOutcome | None: ...


class Directory(Protocol):
    """Which agents and queues exist (from the config, or what Asterisk reports)."""

    def has_agent(self, agent: str) -> bool: ...

    def has_queue(self, queue: str) -> bool: ...


SettingsFor = Callable[[str | None, str | None], Awaitable[Settings]]
"""(agent, queue) -> the effective settings for a callback of that agent from that queue."""


@dataclass(frozen=True)
class ScheduleRequest:
    """A request to schedule as a face receives it (JSON, a feature code's variables, arguments): raw text
    the service checks. ``due_at``: ISO 8601 with an offset, a local time read in ``timezone`` (the
    contact's zone; the settings' ``default_timezone`` without one), or ``+2h``/``+90m`` from now."""

    contact_number: str
    agent: str
    due_at: str
    timezone: str | None = None
    contact_name: str = ""
    queue: str | None = None
    origin_uniqueid: str | None = None
    origin_linkedid: str | None = None
    source: Source = Source.HISTORY
    note: str = ""


@dataclass(frozen=True)
class Query:
    """A listing filter; ``None`` means any. Filters combine with AND. ``due_from``/``due_until``: a
    window of due times (from inclusive, until exclusive)."""

    agent: str | None = None
    state: State | None = None
    contact_number: str | None = None
    origin_call: str | None = None
    queue: str | None = None
    due_from: datetime | None = None
    due_until: datetime | None = None

    @property
    def window(self) -> DueWindow:
        return DueWindow(self.due_from, self.due_until)

    def admits(self, callback: Callback) -> bool:
        """Whether ``callback`` passes every filter but the number and the call (read from indexes)."""
        return (
            self.agent in (None, callback.agent)
            and self.state in (None, callback.state)
            and self.queue in (None, callback.queue)
            and (self.due_from is None or callback.due_at >= self.due_from)
            and (self.due_until is None or callback.due_at < self.due_until)
        )


class CallbackService:
    """Schedule, change, cancel and read callbacks, with every check in one place."""

    def __init__(
        self,
        store: CallbackStore,
        directory: Directory,
        settings_for: SettingsFor,
        clock: Callable[[], datetime],
        new_id: Callable[[], str] = lambda: secrets.token_hex(ID_BYTES),
    ) -> None:
        self._store = store
        self._directory = directory
        self._settings_for = settings_for
        self._clock = clock
        self._new_id = new_id

    async def schedule(
        self, actor: Actor, request: ScheduleRequest | NewCallback, idempotency_key: str | None = None
    ) -> Created:
        """Validate and store a new callback; a retried ``idempotency_key`` returns the first one."""
        new, settings = await self._checked(actor, request)
        return await self._create(new, settings, idempotency_key)

    async def validate(self, actor: Actor, request: ScheduleRequest | NewCallback) -> Callback:
        """Everything ``schedule`` checks, nothing stored: the callback it would make. A face that has
        the person confirm first (the feature code reads the time back) refuses a wrong entry before."""
        new, settings = await self._checked(actor, request)
        with _as_service_errors():
            return lifecycle.create(new, self._new_id(), self._clock(), settings).callback

    async def _checked(
        self, actor: Actor, request: ScheduleRequest | NewCallback
    ) -> tuple[NewCallback, Settings]:
        """Permission, the feature switch, known agent and queue; the request as a ``NewCallback``."""
        require(actor, Permission.SCHEDULE)
        if request.agent != actor.name:
            require(actor, Permission.MANAGE, "schedule a callback for another agent")
        self._check_known(request.agent, request.queue)
        settings = await self._settings_for(request.agent, request.queue)
        if not settings.enabled:
            raise ServiceError(
                ErrorCode.INVALID, "callbacks are turned off for this agent or queue", "enabled"
            )
        if isinstance(request, ScheduleRequest):
            request = self._new_callback(actor, request, settings)
        return request, settings

    def _new_callback(self, actor: Actor, request: ScheduleRequest, settings: Settings) -> NewCallback:
        zone = request.timezone or settings.default_timezone
        return NewCallback(
            contact_number=request.contact_number,
            agent=request.agent,
            due_at=self._due_time(request.due_at, zone),
            created_by=actor.name,
            timezone=zone,
            contact_name=request.contact_name,
            queue=request.queue,
            origin_uniqueid=request.origin_uniqueid,
            origin_linkedid=request.origin_linkedid,
            source=request.source,
            note=request.note,
        )

    def _due_time(self, text: str, zone: str) -> datetime:
        """A due time as a person writes it; a time without offset is read in ``zone``."""
        with _as_service_errors():
            return rules.parse_time(text, rules.zone(zone), now=self._clock())

    async def _create(self, request: NewCallback, settings: Settings, idempotency_key: str | None) -> Created:
        for _ in range(_CREATE_RETRIES):
            with _as_service_errors():
                transition = lifecycle.create(request, self._new_id(), self._clock(), settings)
            new = transition.callback
            try:
                return await self._store.create(new, transition.events, idempotency_key=idempotency_key)
            except DuplicateCallback:
                # The Redis client retries a script whose reply was lost on a dropped connection: if the
                # record under this id is exactly ours, that first run stored it. Else the id was taken.
                if await self._store.get(new.id) == new:
                    return Created(new, True)
        raise RuntimeError("could not draw an unused callback id")  # only with a broken id source

    async def get(self, actor: Actor, callback_id: str) -> Callback:
        with _as_service_errors():  # "a b" or "" names no callback: refused as input, not looked up
            rules.identifier(callback_id, "id")
        callback = await self._store.get(callback_id)
        if callback is None or not _may_see(actor, callback):
            raise ServiceError(ErrorCode.NOT_FOUND, f"no callback {callback_id!r}")
        return callback

    async def list(self, actor: Actor, query: Query) -> list[Callback]:
        """Callbacks matching ``query``, oldest due first; an agent without VIEW_ALL sees only its own."""
        query = self._visible(actor, query)
        callbacks = await self._store.get_many(await self._matching_ids(query))
        return sorted((callback for callback in callbacks if query.admits(callback)), key=order_key)

    async def list_page(
        self, actor: Actor, query: Query, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page:
        """``list`` a page at a time: ``limit`` callbacks after ``cursor`` (a page's ``next_cursor``).

        Read in due order from the due orders (everyone's, or the agent's) a chunk at a time, reading
        only the records of each chunk, so a page costs about its own size however many are stored;
        a number or a call, or a state held by few, names a small set: read whole and sorted."""
        query = self._visible(actor, query)
        check_limit(limit)
        if query.contact_number is not None or query.origin_call is not None or await self._rare(query):
            return page_of(await self.list(actor, query), limit, cursor)
        after = None if cursor is None else decode_cursor(cursor)
        shown: list[Callback] = []
        while len(shown) <= limit:
            chunk = max(limit + 1 - len(shown), _MIN_CHUNK)
            keys = await self._store.ids_by_due(query.agent, query.window, after, chunk)
            if not keys:
                break
            shown += [c for c in await self._store.get_many(i for _, i in keys) if query.admits(c)]
            after = keys[-1]
        more = len(shown) > limit
        return Page(shown[:limit], encode_cursor(order_key(shown[limit - 1])) if more else None)

    async def _rare(self, query: Query) -> bool:
        """A state filter whose state few callbacks are in: its set is the cheaper read."""
        return query.state is not None and await self._store.count_in_state(query.state) <= _RARE_STATE

    def _visible(self, actor: Actor, query: Query) -> Query:
        """``query`` narrowed to what ``actor`` may see (its own callbacks without VIEW_ALL), its agent
        checked as a name: "a b" names no agent and is refused as input, not looked up."""
        if not actor.may(Permission.VIEW_ALL):
            if query.agent not in (None, actor.name):
                raise ServiceError(ErrorCode.FORBIDDEN, "you may only list your own callbacks")
            query = dataclasses.replace(query, agent=actor.name)
        if query.agent is not None:
            with _as_service_errors():
                rules.identifier(query.agent, "agent")
        return query

    async def cancel(self, actor: Actor, callback_id: str, wait_s: float = REQUEST_WAIT_S) -> Change:
        return await self._change(actor, callback_id, Cancel(by=actor.name), wait_s)

    async def reschedule(
        self,
        actor: Actor,
        callback_id: str,
        due_at: datetime | str,
        wait_s: float = REQUEST_WAIT_S,
        *,
        timezone: str | None = None,
    ) -> Change:
        """Move the due time; as text (see ``ScheduleRequest``) a local time is read in ``timezone``,
        else in the callback's own zone (the contact's)."""
        if isinstance(due_at, str):
            zone = timezone or (await self.get(actor, callback_id)).timezone
            due_at = self._due_time(due_at, zone)
        return await self._change(actor, callback_id, Reschedule(due_at=due_at, by=actor.name), wait_s)

    async def edit(
        self, actor: Actor, callback_id: str, edit: Edit, wait_s: float = REQUEST_WAIT_S
    ) -> Change:
        if edit.agent is not None:
            require(actor, Permission.MANAGE, "hand a callback to another agent")
            self._check_known(edit.agent, None)
        return await self._change(actor, callback_id, edit, wait_s)

    async def _change(self, actor: Actor, callback_id: str, change: PersonInput, wait_s: float) -> Change:
        """Apply a person's change through the lifecycle (first on the state read, which validates it
        and refuses it at once when the contact talks), directly or, while a call lives, as a request
        to its holder; retried when the callback moved meanwhile (the scheduler, the call's progress)."""
        for _ in range(_EDIT_RETRIES):
            before = await self.get(actor, callback_id)
            if before.agent != actor.name:
                require(actor, Permission.MANAGE, "change another agent's callback")
            settings = await self._settings_for(before.agent, before.queue)
            with _as_service_errors():
                transition = lifecycle.step(before, change, self._clock(), settings)
                try:
                    if before.state.is_live:
                        return await self._request(before.id, change, wait_s)
                    after = await self._store.edit(before, transition.callback, transition.events)
                    return Change(after, ChangeOutcome.APPLIED)
                except (VersionConflict, CallbackLive, CallbackNotLive):
                    continue
        raise ServiceError(
            ErrorCode.CONFLICT, f"callback {callback_id} keeps changing (it is being dialled): try again"
        )

    async def _request(self, callback_id: str, change: PersonInput, wait_s: float) -> Change:
        """Hand the change to the daemon holding the live call and wait for what it did."""
        request = ChangeRequest(self._new_id(), change)
        await self._store.request_change(callback_id, request)
        outcome = await self._store.await_outcome(request.id, wait_s)
        if outcome is not None and not outcome.applied:
            raise ServiceError(ErrorCode.CONFLICT, f"callback {callback_id}: {outcome.detail}")
        now = await self._store.get(callback_id)
        if now is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no callback {callback_id!r}")
        return Change(now, ChangeOutcome.PENDING if outcome is None else ChangeOutcome.APPLIED_BY_HOLDER)

    async def pending_for_number(self, actor: Actor, number: str, agent: str | None = None) -> NumberPending:
        """The pending callbacks of ``number`` (any form of it: the index is keyed canonically), soonest
        due first; with ``agent``, that agent's only. Everyone's need VIEW_ALL, an agent's own do not.
        A caller ID that is no dialable number (anonymous, empty) is simply unknown."""
        if agent is None or agent != actor.name:
            require(actor, Permission.VIEW_ALL)
        try:
            checked = rules.contact_number(number)
        except rules.ValidationError:
            return NumberPending(number)
        # The index lists pending callbacks only; one an older version left there is dropped here too.
        found = await self._store.get_many(await self._store.ids_for_contact(checked))
        pending = sorted(
            (c for c in found if not c.state.is_finished and agent in (None, c.agent)),
            key=lambda callback: (callback.due_at, callback.id),
        )
        return NumberPending(checked, tuple(pending))

    async def settle_call_in(self, actor: Actor, number: str, agent: str, talk_s: int) -> list[Callback]:
        """The contact of ``number`` talked with ``agent`` for ``talk_s`` seconds on a call of its own:
        complete each of its pending callbacks that talk settles (``lifecycle.call_in_settles``, under
        the callback's own settings). One whose call rings or talks now is left alone. Returns the
        callbacks completed."""
        require(actor, Permission.MANAGE)
        if talk_s < 0:
            raise ServiceError(ErrorCode.INVALID, f"talk time {talk_s} s is negative", "talk_s")
        with _as_service_errors():
            called_in = ContactCalledIn(rules.identifier(agent, "agent"), talk_s)
        settled = []
        for callback in (await self.pending_for_number(actor, number)).pending:
            after = await self._settle(callback.id, called_in)
            if after is not None:
                settled.append(after)
        return settled

    async def _settle(self, callback_id: str, called_in: ContactCalledIn) -> Callback | None:
        """Complete one callback if the talk settles it and no call holds it; re-read and retried when
        it moved meanwhile (the scheduler claimed it, a person changed it)."""
        for _ in range(_EDIT_RETRIES):
            before = await self._store.get(callback_id)
            if before is None:
                return None
            settings = await self._settings_for(before.agent, before.queue)
            if not lifecycle.call_in_settles(before, called_in, settings):
                return None
            try:
                transition = lifecycle.step(before, called_in, self._clock(), settings)
            except IllegalTransition:  # its call rings or talks, or it finished meanwhile
                return None
            try:
                return await self._store.edit(before, transition.callback, transition.events)
            except (VersionConflict, CallbackLive, CallbackNotLive, ChangePending):
                continue
        log.warning(
            "callback kept changing: not settled by the contact's call", extra={"callback": callback_id}
        )
        return None

    def _check_known(self, agent: str, queue: str | None) -> None:
        if not self._directory.has_agent(agent):
            raise ServiceError(ErrorCode.INVALID, f"unknown agent {agent!r}", "agent")
        if queue is not None and not self._directory.has_queue(queue):
            raise ServiceError(ErrorCode.INVALID, f"unknown queue {queue!r}", "queue")

    async def _matching_ids(self, query: Query) -> set[str]:
        candidates: list[set[str]] = []
        if query.agent is not None:  # checked by ``_visible``
            candidates.append(await self._store.ids_for_agent(query.agent))
        if query.state is not None:
            candidates.append(await self._store.ids_in_state(query.state))
        if query.contact_number is not None:
            with _as_service_errors():
                number = rules.contact_number(query.contact_number)
            candidates.append(await self._store.ids_for_contact(number))
        if query.origin_call is not None:
            candidates.append(await self._store.ids_for_call(query.origin_call))
        if not candidates:
            candidates = [await self._store.ids_in_state(state) for state in State]
            return set().union(*candidates)
        return set.intersection(*candidates)


def _may_see(actor: Actor, callback: Callback) -> bool:
    return actor.may(Permission.VIEW_ALL) or callback.agent == actor.name


@contextmanager
def _as_service_errors() -> Iterator[None]:
    """Turn the core's and the store's refusals into ``ServiceError``s a person can act on."""
    try:
        yield
    except rules.OutsideHours as error:
        raise ServiceError(ErrorCode.INVALID, str(error), error.field, error.next_allowed) from error
    except rules.ValidationError as error:
        raise ServiceError(ErrorCode.INVALID, str(error), error.field) from error
    except ChangePending as error:
        by = f" by {error.pending.change.by}" if error.pending else ""
        raise ServiceError(
            ErrorCode.CONFLICT,
            f"another change{by} is being applied to this callback's call: try again in a moment",
        ) from error
    except IllegalTransition as error:
        raise ServiceError(ErrorCode.CONFLICT, str(error)) from error
    except CallbackNotFound as error:
        raise ServiceError(ErrorCode.NOT_FOUND, str(error)) from error
