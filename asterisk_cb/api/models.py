"""The API's JSON, as pydantic models: the handlers validate requests with them and the OpenAPI
document is generated from them (``api.openapi``), so the two cannot drift apart.

Request models hold raw text where the service parses it (a due time ``+2h``, a number): the service's
checks and messages are the same for every face. Unknown fields are refused, so a misspelt field is a
422 naming it, not a silently ignored wish.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from asterisk_cb.core.model import (
    Attempt,
    Callback,
    FinishReason,
    Leg,
    LegRole,
    Outcome,
    Phase,
    Source,
    State,
)
from asterisk_cb.records.history import Direction
from asterisk_cb.service_access import Permission
from asterisk_cb.service_history import HistoryEntry

Text = Annotated[str, Field(max_length=200)]
# An agent id, user, role or callback id (``rules.identifier``); queues also refuse "@" (the service
# says why): the schema tells a client the shape, the service the rest.
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$"
Name = Annotated[str, Field(pattern=IDENTIFIER)]
# An IANA zone name (Europe/Berlin, America/Argentina/Buenos_Aires, Etc/GMT+5): the service says which
# exist; the schema only keeps out what no zone name holds.
Zone = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$")]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- errors ----------------------------------------------------------------------------------------


class ErrorBody(Reply):
    code: str = Field(description="stable: invalid, forbidden, not_found, conflict, unauthorized, ...")
    message: str
    field: str | None = Field(description="the input at fault: a body field, query parameter or header")
    next_allowed: datetime | None = Field(None, description="a due time outside calling hours: the next one")


class ErrorReply(Reply):
    error: ErrorBody


# ---- callbacks -------------------------------------------------------------------------------------


class LegOut(Reply):
    role: LegRole
    endpoint: str | None
    uniqueid: str | None
    linkedid: str | None

    @classmethod
    def of(cls, leg: Leg) -> LegOut:
        return cls(role=leg.role, endpoint=leg.endpoint, uniqueid=leg.uniqueid, linkedid=leg.linkedid)


class AttemptOut(Reply):
    id: str
    phase: Phase
    started_at: datetime
    ended_at: datetime | None
    outcome: Outcome | None = Field(description="null while the call lives")
    hangup_cause: int | None
    sip_code: int | None
    legs: list[LegOut]

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls(
            id=attempt.id,
            phase=attempt.phase,
            started_at=attempt.started_at,
            ended_at=attempt.ended_at,
            outcome=attempt.outcome,
            hangup_cause=attempt.hangup_cause,
            sip_code=attempt.sip_code,
            legs=[LegOut.of(leg) for leg in attempt.legs],
        )


class CallbackOut(Reply):
    id: str
    state: State
    phase: Phase
    contact_number: str
    contact_name: str
    agent: str
    queue: str | None
    due_at: datetime
    timezone: str = Field(description="the contact's IANA time zone")
    next_at: datetime | None = Field(description="when the scheduler acts next (scheduled only)")
    source: Source
    note: str
    created_by: str
    created_at: datetime
    updated_at: datetime | None
    finished_at: datetime | None
    finish_reason: FinishReason | None
    cancelled_by: str | None
    origin_uniqueid: str | None
    origin_linkedid: str | None
    agent_attempts: int
    queue_attempts: int
    missed_agent_rings: int
    version: int

    @classmethod
    def fields_of(cls, callback: Callback) -> dict[str, object]:
        return {name: getattr(callback, name) for name in CallbackOut.model_fields}

    @classmethod
    def of(cls, callback: Callback) -> CallbackOut:
        return cls(**cls.fields_of(callback))


class CallbackDetail(CallbackOut):
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, callback: Callback) -> CallbackDetail:
        attempts = [AttemptOut.of(attempt) for attempt in callback.attempts]
        return cls(**CallbackOut.fields_of(callback), attempts=attempts)


class CallbackPage(Reply):
    callbacks: list[CallbackOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]")


def _written_time(value: object) -> object:
    """A time as a person or client writes it (ISO 8601), never a bare number: pydantic would read
    ``?due_until=0.5`` as half a second after 1970, which nobody meant."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("write an ISO 8601 time with offset, e.g. 2026-12-01T15:00:00+01:00")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_written_time)]


class CallbackQuery(Request):
    agent: Name | None = None
    state: State | None = None
    number: Text | None = Field(None, description="the contact's number, any written form")
    queue: Name | None = None
    origin_call: Name | None = Field(None, description="uniqueid or linkedid of the call it came from")
    due_from: Moment | None = Field(None, description="due at or after (ISO 8601 with offset)")
    due_until: Moment | None = Field(None, description="due before (ISO 8601 with offset)")
    limit: int = Field(100, ge=1, le=500)
    cursor: Annotated[str, Field(max_length=200)] | None = None


class CallbackCreate(Request):
    from_call: Name | None = Field(
        None,
        description=(
            "a linkedid of the agent's call history: number, name, queue and the call's ids are taken "
            "from that call, and a repeat is the same callback unless an Idempotency-Key says otherwise"
        ),
    )
    contact_number: Annotated[str, Field(min_length=1, max_length=40)] | None = Field(
        None, description="required unless from_call gives it"
    )
    due_at: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="ISO 8601 (with or without offset: without, read in timezone), or +2h / +90m"
    )
    agent: Name | None = Field(None, description="default: the caller (an agent's token)")
    timezone: Zone | None = Field(None, description="the contact's IANA zone; default: the settings'")
    contact_name: Text = ""
    queue: Name | None = None
    note: Annotated[str, Field(max_length=1000)] = ""
    origin_uniqueid: Name | None = None
    origin_linkedid: Name | None = None
    source: Source = Source.HISTORY


class CallbackCreated(Reply):
    created: bool = Field(description="false: an earlier request with this idempotency key made it")
    callback: CallbackDetail


class CallbackChange(Request):
    due_at: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    timezone: Zone | None = Field(None, description="how a due_at without offset is read")
    note: Annotated[str, Field(max_length=1000)] | None = None
    contact_name: Text | None = None
    agent: Name | None = Field(None, description="hand it to another agent (manage_callbacks)")


class ChangeReply(Reply):
    outcome: str = Field(description="applied, applied_by_holder (its ringing call hung up), or pending")
    callback: CallbackDetail


class ChangeQuery(Request):
    wait: float = Field(5.0, ge=0, le=30, description="seconds to wait for a ringing call's holder")


# ---- call history and CDR ---------------------------------------------------------------------------


class HistoryQuery(Request):
    limit: int = Field(50, ge=1, le=200)
    before: Moment | None = Field(None, description="the previous page's next_before")


class HistoryCallOut(Reply):
    linkedid: str = Field(description="pass as from_call to schedule a callback for this call")
    uniqueid: str
    started_at: datetime
    direction: Direction
    contact_number: str
    contact_name: str | None
    duration_s: int
    talk_s: int
    disposition: str = Field(description="ANSWERED, NO ANSWER, BUSY, FAILED, as Asterisk's CDR says")
    queue: str | None
    is_callback: bool = Field(description="the call was itself a scheduled callback's")
    callback_ids: list[str] = Field(description="callbacks already requested on this call (that you may see)")

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryCallOut:
        return cls(**dataclasses.asdict(entry.call), callback_ids=list(entry.callback_ids))


class HistoryReply(Reply):
    calls: list[HistoryCallOut]
    next_before: datetime | None = Field(description="pass as ?before= for older calls; null at the end")


class CdrRowOut(Reply):
    time: datetime
    callback: str
    agent: str
    contact: str
    attempt: str
    phase: str
    leg: str
    outcome: str = Field(description="the row's disposition")
    billsec: int
    linkedid: str
    uniqueid: str
    origin_linkedid: str


class CdrReply(Reply):
    rows: list[CdrRowOut]


# ---- settings and roles ------------------------------------------------------------------------------


class SettingsQuery(Request):
    agent: Name | None = None
    queue: Name | None = None


class SettingLine(Reply):
    option: str
    value: str
    origin: str = Field(description="default, the config file's line, or a run-time override's scope")
    runtime: bool


class SettingsReply(Reply):
    settings: list[SettingLine]


Scope = Annotated[
    str,
    Field(
        pattern=r"^(general|(queue|agent)/[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63})$",
        description="general, queue/<name> or agent/<id>, as the CLI's",
    ),
]


class SettingChange(Request):
    scope: Scope
    option: Name
    value: Annotated[str, Field(max_length=200)]


class SettingReset(Request):
    scope: Scope
    option: Name | None = Field(None, description="absent: every run-time override of the scope")


class RoleLineOut(Reply):
    section: str = Field(description="roles (a role's permissions) or agent_roles (an agent's role)")
    name: str
    value: str
    origin: str
    ignored: str = Field(description="why a run-time value does not apply (empty when it does)")


class RolesReply(Reply):
    lines: list[RoleLineOut]


class RoleDefinition(Request):
    permissions: list[Permission] = Field(max_length=len(Permission))


class AgentRole(Request):
    role: Name


class QueuesReply(Reply):
    queues: list[str] = Field(description="every queue Asterisk has now (queues.conf, realtime)")


class Me(Reply):
    name: str
    permissions: list[Permission]


# ---- health ------------------------------------------------------------------------------------------


class Health(Reply):
    status: str


class Readiness(Reply):
    ready: bool
    components: dict[str, bool]
    redis: bool
