"""The agent's feature code mid-call: the FastAGI face of the service (dialplan/callback-request.conf).

The agent keys ``*7`` during a call; Asterisk runs the Gosub ``acb-request`` on the agent's channel
while the other party hears music on hold. The Gosub speaks the prompts and reads the keys itself; for
each decision it asks the daemon one question, a *step*:

* ``check``: who is this agent, may it schedule, is the feature on, is the contact's number callable,
  has this contact a pending callback with this agent already (then the agent chooses: keep or move);
* ``parse``: what the keyed time means (``core.keypad``) and whether the service would take it (horizon,
  calling hours: the refusal carries the next allowed time, spoken to the agent);
* ``create``: schedule it (or move the pending one), once per keypress whatever the retries.

Why not an AGI on the agent's channel: res_agi waits for a FastAGI server's reply without any time limit
(measured on Asterisk 22: a server that accepts and stays silent, a SIGSTOPped daemon, holds the channel
for as long as it stays silent). So the Gosub asks through ``Originate()`` of a Local channel with a
timeout; the AGI runs on that helper channel, whose extension is the agent channel's uniqueid. The daemon
reads the request and the call's facts from the agent's channel (``IMPORT``) and answers in
``SHARED(ACB_R_*)`` variables of that channel; the helper channel answers, and ``Originate`` returns.
A silent daemon: ``Originate`` gives up, the agent hears "try later" and is back in the call. A request
the daemon reads after the agent gave up (``ACB_DEADLINE`` passed) is dropped, never carried out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from asterisk_cb.core import rules
from asterisk_cb.core.keypad import (
    DEFAULT_OPTIONS,
    Day,
    FeatureCodeOptions,
    KeypadError,
    day_of,
    due_from_keys,
)
from asterisk_cb.core.model import Callback, Source
from asterisk_cb.core.settings import Settings
from asterisk_cb.service import (
    Actor,
    CallbackService,
    ErrorCode,
    Permission,
    ScheduleRequest,
    ServiceError,
)
from asterisk_cb.telephony.agi_channel import AgiRequest, AgiSession, CallChannel, call_channel

log = logging.getLogger(__name__)

ROUTE = "callback-request"  # the AGI script name the Gosub's helper channel asks for
# The request must be carried out this long before the agent's side gives up, or not at all.
DEADLINE_MARGIN_S = 1.0
# PJSIP/1001-0000001a -> PJSIP/1001; Local/1001@agents-0000001a;2 -> Local/1001@agents
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8}(;[12])?\Z")


class Step(StrEnum):
    CHECK = "check"
    PARSE = "parse"
    CREATE = "create"


class Status(StrEnum):
    """``ACB_R_STATUS``: what the Gosub does next."""

    OK = "ok"
    INVALID = "invalid"  # a wrong entry: re-prompt
    REFUSED = "refused"  # spoken with ``ACB_R_REASON``, nothing created


class Reason(StrEnum):
    """``ACB_R_REASON``: which refusal the Gosub speaks (see acb-request-refused)."""

    NOT_AGENT = "not_agent"  # not an agent's channel (the contact keyed the code): silence
    FORBIDDEN = "forbidden"  # the agent's role may not schedule callbacks
    DISABLED = "disabled"  # enabled = no for this agent or queue
    NUMBER = "number"  # the contact's number cannot be called back
    HOURS = "hours"  # outside calling hours: ACB_R_DUE holds the next allowed time
    TIME = "time"  # in the past or beyond the horizon, or keys that make no time
    ENDED = "ended"  # the contact hung up while the agent keyed: nothing is created
    ERROR = "error"  # anything else (the callback changed meanwhile, ...)


class ActorSource(Protocol):
    """Roles: the agent as an actor with its role's permissions (``service_roles.RolesService``)."""

    async def actor_for_agent(self, agent: str) -> Actor: ...


SettingsFor = Callable[[str | None, str | None], Awaitable[Settings]]


@dataclass(frozen=True)
class CallFacts:
    """What the request knows, read from the live call, never typed by the agent."""

    uniqueid: str
    linkedid: str
    device: str  # the agent channel's device (PJSIP/1001)
    queue: str | None
    source: Source
    contact_number: str
    contact_name: str


@dataclass(frozen=True)
class Reply:
    """The answer, written as ``SHARED(ACB_R_<field>)`` on the agent's channel."""

    status: Status
    reason: Reason | None = None
    zone: str = ""
    due: datetime | None = None  # parse: the due time; check: the pending one's; hours: next allowed
    day: Day | None = None
    existing: str = ""  # check: the pending callback's id
    id: str = ""  # create: the callback's id


class FeatureCode:
    """The AGI handler of route ``callback-request``: one step per request, through the service."""

    def __init__(
        self,
        service: CallbackService,
        actors: ActorSource,
        agent_at: Callable[[str], str | None],
        settings_for: SettingsFor,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        options: FeatureCodeOptions = DEFAULT_OPTIONS,
    ) -> None:
        self._service = service
        self._actors = actors
        self._agent_at = agent_at
        self._settings_for = settings_for
        self._clock = clock
        self._options = options

    async def __call__(self, request: AgiRequest, session: AgiSession) -> None:
        channel = call_channel(request, session)
        if channel is None:
            log.warning("feature code: helper channel without an agent uniqueid",
                        extra={"exten": request.env.get("extension", "")})  # fmt: skip
            return
        uniqueid = channel.uniqueid
        try:
            step = Step(await channel.get("ACB_STEP"))
        except ValueError:
            log.info("feature code: no request on the channel (it ended)", extra={"uniqueid": uniqueid})
            return
        if step is Step.CREATE and not await self._in_time(channel):
            return
        reply = await self._answer(step, channel)
        log.info(
            "feature code",
            extra={"step": step.value, "uniqueid": uniqueid, "status": reply.status.value,
                   "reason": reply.reason.value if reply.reason else "", "callback": reply.id},
        )  # fmt: skip
        await channel.answer(_fields(reply))

    async def _in_time(self, channel: CallChannel) -> bool:
        """False when the agent's side has given up (the daemon was stalled): it was told "not now"."""
        deadline = await channel.get("ACB_DEADLINE")
        if deadline.isdigit() and self._clock().timestamp() <= int(deadline) - DEADLINE_MARGIN_S:
            return True
        log.warning("feature code: request read after the agent gave up: not carried out",
                    extra={"uniqueid": channel.uniqueid, "deadline": deadline})  # fmt: skip
        return False

    async def _answer(self, step: Step, channel: CallChannel) -> Reply:
        facts = await read_facts(channel)
        agent = self._agent_at(facts.device)
        if agent is None:
            return Reply(Status.REFUSED, Reason.NOT_AGENT)
        settings = await self._settings_for(agent, facts.queue)
        zone = settings.default_timezone
        try:
            actor = await self._actors.actor_for_agent(agent)
            if not actor.may(Permission.SCHEDULE):
                return Reply(Status.REFUSED, Reason.FORBIDDEN, zone)
            if not settings.enabled:
                return Reply(Status.REFUSED, Reason.DISABLED, zone)
            if step is Step.CHECK:
                return await self._check(actor, facts, zone)
            if step is Step.PARSE:
                return await self._parse(actor, facts, zone, await channel.get("ACB_KEYS"))
            if not await _call_lives(channel):
                return Reply(Status.REFUSED, Reason.ENDED, zone)
            return await self._create(actor, facts, zone, channel)
        except ServiceError as error:
            refusal = _refusal(error, zone)
            return replace(refusal, day=self._day(refusal.due, zone)) if refusal.due else refusal

    async def _check(self, actor: Actor, facts: CallFacts, zone: str) -> Reply:
        try:
            number = rules.contact_number(facts.contact_number)
        except rules.ValidationError:
            return Reply(Status.REFUSED, Reason.NUMBER, zone)
        pending = None if self._options.allow_second else await self._pending(actor, number)
        if pending is None:
            return Reply(Status.OK, zone=zone)
        return Reply(Status.OK, zone=zone, due=pending.due_at, day=self._day(pending.due_at, zone),
                     existing=pending.id)  # fmt: skip

    async def _pending(self, actor: Actor, number: str) -> Callback | None:
        """The contact's soonest unfinished callback with this agent, if any."""
        return (await self._service.pending_for_number(actor, number, agent=actor.name)).first

    async def _parse(self, actor: Actor, facts: CallFacts, zone: str, keys: str) -> Reply:
        try:
            keyed = due_from_keys(keys, self._clock(), rules.zone(zone), self._options.presets)
        except KeypadError:
            return Reply(Status.INVALID, Reason.TIME, zone)
        await self._service.validate(actor, _schedule_request(actor, facts, keyed.due_at, zone))
        return Reply(Status.OK, zone=zone, due=keyed.due_at, day=keyed.day)

    async def _create(self, actor: Actor, facts: CallFacts, zone: str, channel: CallChannel) -> Reply:
        due_text = await channel.get("ACB_DUE")
        if not due_text.isdigit():
            return Reply(Status.INVALID, Reason.TIME, zone)
        due_at = datetime.fromtimestamp(int(due_text), UTC)
        moving = await channel.get("ACB_MOVE")
        if moving:
            change = await self._service.reschedule(actor, moving, due_at)
            return Reply(Status.OK, zone=zone, id=change.callback.id)
        token = await channel.get("ACB_TOKEN")
        if not token:  # the Gosub sets one per keypress: without it, retries could not be told apart
            return Reply(Status.REFUSED, Reason.ERROR, zone)
        key = f"feature-code:{facts.uniqueid}:{token}"
        created = await self._service.schedule(actor, _schedule_request(actor, facts, due_at, zone), key)
        return Reply(Status.OK, zone=zone, id=created.callback.id)

    def _day(self, moment: datetime, zone: str) -> Day:
        return day_of(moment, self._clock(), rules.zone(zone))


async def read_facts(channel: CallChannel) -> CallFacts:
    """The call as Asterisk knows it. The contact: ``ACB_CONTACT`` when the dialplan (a dialer) set it,
    else the bridged peer's caller ID on an inbound call, the dialled number (DNID) on an outbound one."""
    name = await channel.get("CHANNEL")
    queue = await channel.get("ACB_QUEUE")
    source = _source(await channel.get("ACB_SOURCE"), bool(queue))
    number = await channel.get("ACB_CONTACT")
    contact_name = await channel.get("ACB_CONTACT_NAME")
    if not number:
        number, contact_name = await _contact(channel, source)
    return CallFacts(
        uniqueid=channel.uniqueid,
        linkedid=await channel.get("CHANNEL(linkedid)"),
        device=_CHANNEL_SUFFIX.sub("", name),
        queue=queue or None,
        source=source,
        contact_number=number,
        contact_name=_safe_name(contact_name, number),
    )


async def _call_lives(channel: CallChannel) -> bool:
    """The agent is still bridged with someone: the Gosub runs on the agent's channel, which lives on
    after the contact hung up (measured: the entry went on to the end), and a call that ended while
    the agent keyed must create nothing. BRIDGEPEER lists the bridged channels (comma-separated when
    more than one); a channel that hung up no longer answers IMPORT."""
    peers = (await channel.get("BRIDGEPEER")).split(",")
    for peer in filter(None, peers):
        if await channel.get_of(peer.strip(), "CHANNEL"):
            return True
    return False


async def _contact(channel: CallChannel, source: Source) -> tuple[str, str]:
    if source is Source.INBOUND:
        peer = await channel.get("BRIDGEPEER")
        number = await channel.get_of(peer, "CALLERID(num)") or await channel.get("CONNECTEDLINE(num)")
        name = await channel.get_of(peer, "CALLERID(name)") or await channel.get("CONNECTEDLINE(name)")
        return number, name
    return await channel.get("CALLERID(dnid)") or await channel.get("CONNECTEDLINE(num)"), ""


def _fields(reply: Reply) -> dict[str, str]:
    """Every field (stale ones cleared), the status last: the Gosub reads them once Originate returns."""
    return {
        "ACB_R_REASON": reply.reason.value if reply.reason else "",
        "ACB_R_ZONE": reply.zone,
        "ACB_R_DUE": str(int(reply.due.timestamp())) if reply.due else "",
        "ACB_R_DAY": reply.day.value if reply.day else "",
        "ACB_R_EXISTING": reply.existing,
        "ACB_R_ID": reply.id,
        "ACB_R_STATUS": reply.status.value,
    }


def _source(declared: str, has_queue: bool) -> Source:
    """``ACB_SOURCE`` (inbound, outbound, dialer: a dialer's dialplan sets it), else inbound for a queue
    call and outbound for the rest."""
    if declared in (Source.INBOUND, Source.OUTBOUND, Source.DIALER):
        return Source(declared)
    return Source.INBOUND if has_queue else Source.OUTBOUND


def _safe_name(name: str, number: str) -> str:
    """A caller ID name is the caller's to choose: kept when it is safe text and says more than the
    number, else left out (never a reason to refuse the callback)."""
    if name in ("", number):
        return ""
    try:
        return rules.contact_name(name)
    except rules.ValidationError:
        return ""


def _schedule_request(actor: Actor, facts: CallFacts, due_at: datetime, zone: str) -> ScheduleRequest:
    return ScheduleRequest(
        contact_number=facts.contact_number,
        agent=actor.name,
        due_at=due_at.isoformat(),
        timezone=zone,
        contact_name=facts.contact_name,
        queue=facts.queue,
        origin_uniqueid=facts.uniqueid,
        origin_linkedid=facts.linkedid or None,
        source=facts.source,
    )


def _refusal(error: ServiceError, zone: str) -> Reply:
    """A service refusal as the prompt that says it; a wrong time is re-prompted."""
    if error.code is ErrorCode.FORBIDDEN:
        return Reply(Status.REFUSED, Reason.FORBIDDEN, zone)
    if error.field == "enabled":
        return Reply(Status.REFUSED, Reason.DISABLED, zone)
    if error.field == "contact_number":
        return Reply(Status.REFUSED, Reason.NUMBER, zone)
    if error.field == "due_at" and error.next_allowed is not None:
        return Reply(Status.INVALID, Reason.HOURS, zone, due=error.next_allowed)
    if error.field == "due_at":
        return Reply(Status.INVALID, Reason.TIME, zone)
    log.warning("feature code refused", extra={"error": error.message})
    return Reply(Status.REFUSED, Reason.ERROR, zone)
