"""An agent's call history from Asterisk's CDR, and the CDR rows of one callback's calls: the API's read
of the past, through the same door (actor, permissions, ``ServiceError``) as every other way in.

The history lists each call with the callbacks already requested on it (the store's call index, by the
call's linkedid), so an agent sees which calls it has promised to return before it creates one more.
The CDR lives in the ``[records]`` database, not in Redis: without a DSN, or with the database down or
the cdr table unreadable, the answer is ``UNAVAILABLE`` (HTTP 503), never an empty history.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from asterisk_cb.core import rules
from asterisk_cb.core.model import Callback
from asterisk_cb.records.cdr_calls import CallRow
from asterisk_cb.records.cdr_read import CdrUnreadable
from asterisk_cb.records.database import DatabaseDown
from asterisk_cb.records.history import DEFAULT_LIMIT, MAX_LIMIT, HistoryCall
from asterisk_cb.service_access import Actor, ErrorCode, Permission, ServiceError
from asterisk_cb.telephony.availability import AgentSpec


class HistoryReader(Protocol):
    """What the service needs of the CDR (``records.history.CdrHistory``)."""

    async def calls(
        self, devices: Sequence[str], *, limit: int = DEFAULT_LIMIT, before: datetime | None = None
    ) -> list[HistoryCall]: ...

    async def callback_calls(self, callback_id: str, linkedids: Sequence[str]) -> list[CallRow]: ...

    async def call(self, devices: Sequence[str], linkedid: str) -> HistoryCall | None: ...


class HistoryStore(Protocol):
    """What the service needs of the store: the callbacks requested on a call, and reading them."""

    async def ids_for_call(self, uniqueid_or_linkedid: str) -> set[str]: ...

    async def get_many(self, callback_ids: Iterable[str]) -> list[Callback]: ...


@dataclass(frozen=True)
class HistoryEntry:
    """A call of the agent's history and the ids (sorted) of the callbacks requested on it that the
    actor may see: its own, or everyone's with VIEW_ALL."""

    call: HistoryCall
    callback_ids: tuple[str, ...] = ()


class HistoryService:
    """``reader`` None: no ``[records] dsn``, so no history (UNAVAILABLE, saying so)."""

    def __init__(
        self, reader: HistoryReader | None, store: HistoryStore, agents: Mapping[str, AgentSpec]
    ) -> None:
        self._reader = reader
        self._store = store
        self._agents = agents

    async def calls(
        self, actor: Actor, agent: str, *, limit: int = DEFAULT_LIMIT, before: datetime | None = None
    ) -> list[HistoryEntry]:
        """``agent``'s calls, newest first, started before ``before`` (the previous page's last
        ``started_at``): one's own, or anyone's with VIEW_ALL."""
        devices = self._devices_of(actor, agent)
        if not 1 <= limit <= MAX_LIMIT:
            raise ServiceError(ErrorCode.INVALID, f"limit must be 1 to {MAX_LIMIT}, not {limit}", "limit")
        reader = self._reader_or_refuse()
        with _unavailable():
            calls = await reader.calls(devices, limit=limit, before=before)
        return [HistoryEntry(call, await self._callbacks_of(actor, call.linkedid)) for call in calls]

    async def call(self, actor: Actor, agent: str, linkedid: str) -> HistoryEntry:
        """One call of ``agent``'s history (a callback is being created from it): NOT_FOUND when the
        agent took no part in it, so nobody schedules from a call that was not theirs."""
        devices = self._devices_of(actor, agent)
        with _as_invalid():
            rules.identifier(linkedid, "from_call")
        reader = self._reader_or_refuse()
        with _unavailable():
            call = await reader.call(devices, linkedid)
        if call is None:
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"no call {linkedid!r} in agent {agent}'s history", "from_call"
            )
        return HistoryEntry(call, await self._callbacks_of(actor, linkedid))

    def _devices_of(self, actor: Actor, agent: str) -> Sequence[str]:
        """``agent``'s fixed devices, for ``actor``: one's own, or anyone's with VIEW_ALL."""
        if agent != actor.name and not actor.may(Permission.VIEW_ALL):  # first: tells no agent exists
            message = f"{actor.name} is not allowed to see another agent's calls"
            raise ServiceError(ErrorCode.FORBIDDEN, message)
        spec = self._agents.get(agent)
        if spec is None:
            raise ServiceError(ErrorCode.INVALID, f"unknown agent {agent!r}", "agent")
        if not spec.devices:
            message = f"agent {agent} has no fixed device in [agents]: its calls cannot be told in the CDR"
            raise ServiceError(ErrorCode.INVALID, message, "agent")
        return spec.devices

    async def callback_cdr(self, actor: Actor, callback: Callback) -> list[CallRow]:
        """The CDR rows of ``callback``'s calls, oldest first, as ``asterisk-cb calls`` reads them."""
        if callback.agent != actor.name and not actor.may(Permission.VIEW_ALL):
            raise ServiceError(
                ErrorCode.FORBIDDEN, f"{actor.name} is not allowed to see callback {callback.id}"
            )
        reader = self._reader_or_refuse()
        linkedids = list(dict.fromkeys(_call_ids(callback)))
        with _unavailable():
            return await reader.callback_calls(callback.id, linkedids)

    def _reader_or_refuse(self) -> HistoryReader:
        if self._reader is None:
            message = "call history needs Asterisk's CDR database: set [records] dsn"
            raise ServiceError(ErrorCode.UNAVAILABLE, message)
        return self._reader

    async def _callbacks_of(self, actor: Actor, linkedid: str) -> tuple[str, ...]:
        ids = await self._store.ids_for_call(linkedid)
        if not ids:
            return ()
        if actor.may(Permission.VIEW_ALL):
            return tuple(sorted(ids))
        return tuple(sorted(c.id for c in await self._store.get_many(ids) if c.agent == actor.name))


def _call_ids(callback: Callback) -> Iterator[str]:
    """The ids one of which is each attempt's calls' linkedid: the channel ids the daemon gave its
    legs (the linkedid of an attempt's rows, README "CDR"), and the linkedids recorded on them."""
    for attempt in callback.attempts:
        yield from attempt.channel_ids
        yield from (leg.linkedid for leg in attempt.legs if leg.linkedid)


@contextlib.contextmanager
def _as_invalid() -> Iterator[None]:
    try:
        yield
    except rules.ValidationError as error:
        raise ServiceError(ErrorCode.INVALID, str(error), error.field) from error


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """The database down or its cdr table unreadable: UNAVAILABLE with the reason (no password)."""
    try:
        yield
    except (DatabaseDown, CdrUnreadable) as error:
        raise ServiceError(ErrorCode.UNAVAILABLE, f"the CDR cannot be read: {error}") from error
