"""The feature code's three steps (check, parse, create) through the real service and the lab's Redis.

The AGI session is a stand-in that answers ``${IMPORT(<channel>,<expr>)}`` from a table of the agent's
and the peer's channel variables and keeps what the face writes back (``SHARED(ACB_R_*,<uniqueid>)``),
as Asterisk does for the Gosub's helper channel; tests/e2e/test_feature_code.py runs the same through a
real Asterisk with SIPp phones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from asterisk_cb.core.keypad import FeatureCodeOptions, parse_preset
from asterisk_cb.core.model import Source, State
from asterisk_cb.core.rules import CallingHours, Window
from asterisk_cb.core.settings import Settings
from asterisk_cb.feature_code import FeatureCode
from asterisk_cb.service import ADMIN, Actor, CallbackService, Permission, Query
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Berlin
AGENT_UID = "1796611921.12"
PEER = "PJSIP/lab-caller-0000000b"
SCHEDULER = frozenset({Permission.SCHEDULE})


@dataclass
class FakeAgi:
    """Channels' variables by channel (uniqueid for the agent's, name for the peer's); replies kept."""

    channels: dict[str, dict[str, str]]
    shared: dict[str, str] = field(default_factory=dict)

    async def get_full_variable(self, expression: str) -> str | None:
        match = re.fullmatch(r"\$\{IMPORT\(([^,]+),(.+)\)\}", expression)
        assert match, expression
        return self.channels.get(match[1], {}).get(match[2])

    async def set_variable(self, name: str, value: str) -> None:
        match = re.fullmatch(r"SHARED\((ACB_R_[A-Z]+),(.+)\)", name)
        assert match and match[2] == AGENT_UID, name
        self.shared[match[1]] = value


@dataclass(frozen=True)
class Request:
    env: dict[str, str]


class Roles:
    def __init__(self) -> None:
        self.permissions = {"1001": SCHEDULER, "1002": frozenset()}

    async def actor_for_agent(self, agent: str) -> Actor:
        return Actor(agent, self.permissions.get(agent, SCHEDULER))


class Directory:
    def has_agent(self, agent: str) -> bool:
        return agent in ("1001", "1002")

    def has_queue(self, queue: str) -> bool:
        return True


@pytest.fixture
def settings() -> dict[str, Settings]:
    return {"default": Settings(default_timezone="Europe/Berlin")}


@pytest.fixture
def roles() -> Roles:
    return Roles()


@pytest.fixture
def service(store: Store, settings: dict[str, Settings]) -> CallbackService:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return settings.get(str(agent), settings["default"])

    return CallbackService(store, Directory(), settings_for, lambda: NOW)


@pytest.fixture
def face(service: CallbackService, settings: dict[str, Settings], roles: Roles) -> FeatureCode:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return settings.get(str(agent), settings["default"])

    devices = {"PJSIP/1001": "1001", "PJSIP/1002": "1002"}
    options = FeatureCodeOptions({1: parse_preset("+1h")})
    return FeatureCode(service, roles, devices.get, settings_for, clock=lambda: NOW, options=options)


def agent_call(**variables: str) -> dict[str, dict[str, str]]:
    """A queue call of 'support' answered by 1001's phone: the caller +4930123456 'Ada' is the peer."""
    agent = {
        "CHANNEL": "PJSIP/1001-0000000c",
        "CHANNEL(linkedid)": "1796611921.10",
        "ACB_QUEUE": "support",
        "BRIDGEPEER": PEER,
        "ACB_TOKEN": "1796611925123456",
        "ACB_DEADLINE": str(int(NOW.timestamp()) + 4),
    } | variables
    peer = {"CHANNEL": PEER, "CALLERID(num)": "+4930123456", "CALLERID(name)": "Ada"}
    trunk = "PJSIP/contacts-0000000d"  # the far end of the agent's own call out
    return {AGENT_UID: agent, PEER: peer, trunk: {"CHANNEL": trunk}}


Ask = Callable[..., dict[str, str]]


@pytest.fixture
def ask(face: FeatureCode) -> Callable[..., object]:
    async def run(step: str, channels: dict[str, dict[str, str]], **variables: str) -> dict[str, str]:
        channels[AGENT_UID] |= {"ACB_STEP": step} | variables
        agi = FakeAgi(channels)
        await face(Request({"extension": AGENT_UID}), agi)
        return agi.shared

    return run


async def test_a_queue_call_in_30_minutes(ask, service: CallbackService) -> None:
    call = agent_call()
    assert (await ask("check", call))["ACB_R_STATUS"] == "ok"
    parsed = await ask("parse", call, ACB_KEYS="*30")
    assert (parsed["ACB_R_STATUS"], parsed["ACB_R_DAY"], parsed["ACB_R_ZONE"]) == (
        "ok",
        "today",
        "Europe/Berlin",
    )
    due = parsed["ACB_R_DUE"]
    assert int(due) == int((NOW + timedelta(minutes=30)).timestamp())
    created = await ask("create", call, ACB_DUE=due)
    callback = await service.get(ADMIN, created["ACB_R_ID"])
    assert (callback.agent, callback.contact_number, callback.contact_name) == ("1001", "+4930123456", "Ada")
    assert (callback.queue, callback.source, callback.due_at) == (
        "support",
        Source.INBOUND,
        NOW + timedelta(minutes=30),
    )
    assert (callback.origin_uniqueid, callback.origin_linkedid) == (AGENT_UID, "1796611921.10")
    assert callback.created_by == "1001"


async def test_a_replayed_create_makes_one_callback(ask, service: CallbackService) -> None:
    call = agent_call()
    due = (await ask("parse", call, ACB_KEYS="1"))["ACB_R_DUE"]
    first = await ask("create", call, ACB_DUE=due)
    again = await ask("create", call, ACB_DUE=due)
    assert first["ACB_R_ID"] == again["ACB_R_ID"]
    mine = await service.list(ADMIN, Query(agent="1001", contact_number="+4930123456"))
    assert [callback.id for callback in mine] == [first["ACB_R_ID"]]


async def test_an_outbound_call_takes_the_dialled_number(ask, service: CallbackService) -> None:
    call = agent_call(ACB_QUEUE="", ACB_SOURCE="outbound", BRIDGEPEER="PJSIP/contacts-0000000d")
    call[AGENT_UID]["CALLERID(dnid)"] = "0301234567"
    due = (await ask("parse", call, ACB_KEYS="1430"))["ACB_R_DUE"]
    callback = await service.get(ADMIN, (await ask("create", call, ACB_DUE=due))["ACB_R_ID"])
    assert (callback.contact_number, callback.source, callback.queue) == ("0301234567", Source.OUTBOUND, None)
    assert callback.due_at == datetime(2026, 12, 7, 13, 30, tzinfo=UTC)  # 14:30 Berlin


async def test_a_dialer_names_the_contact(ask, service: CallbackService) -> None:
    call = agent_call(ACB_QUEUE="", ACB_SOURCE="dialer", ACB_CONTACT="+33123456789", ACB_CONTACT_NAME="Émile")
    due = (await ask("parse", call, ACB_KEYS="*5"))["ACB_R_DUE"]
    callback = await service.get(ADMIN, (await ask("create", call, ACB_DUE=due))["ACB_R_ID"])
    assert (callback.contact_number, callback.contact_name, callback.source) == (
        "+33123456789",
        "Émile",
        Source.DIALER,
    )


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({"CHANNEL": "PJSIP/lab-caller-0000000b"}, "not_agent"),  # the contact keyed it
        ({"CHANNEL": "PJSIP/1002-0000000c"}, "forbidden"),  # 1002's role may not schedule
        ({"ACB_CONTACT": "12;34"}, "number"),
    ],
)
async def test_refusals_at_check(ask, variables: dict[str, str], reason: str) -> None:
    reply = await ask("check", agent_call(**variables))
    assert (reply["ACB_R_STATUS"], reply["ACB_R_REASON"]) == ("refused", reason)


async def test_feature_off_is_refused(ask, settings: dict[str, Settings]) -> None:
    settings["1001"] = Settings(enabled=False)
    for step in ("check", "parse", "create"):
        reply = await ask(step, agent_call(), ACB_KEYS="*30", ACB_DUE=str(int(NOW.timestamp()) + 600))
        assert (reply["ACB_R_STATUS"], reply["ACB_R_REASON"]) == ("refused", "disabled")


async def test_wrong_entries_are_invalid_and_hours_name_the_next_time(
    ask, settings: dict[str, Settings], service: CallbackService
) -> None:
    for keys in ("12", "*0", "9", "2575", "*99999"):  # 99999 minutes: beyond the 30-day horizon
        reply = await ask("parse", agent_call(), ACB_KEYS=keys)
        assert (reply["ACB_R_STATUS"], reply["ACB_R_REASON"]) == ("invalid", "time"), keys
    hours = CallingHours(
        (Window(0, datetime.min.time().replace(hour=9), datetime.min.time().replace(hour=17)),)
    )
    settings["1001"] = Settings(default_timezone="Europe/Berlin", calling_hours=hours)
    reply = await ask("parse", agent_call(), ACB_KEYS="1800")
    assert (reply["ACB_R_STATUS"], reply["ACB_R_REASON"], reply["ACB_R_DAY"]) == ("invalid", "hours", "later")
    assert int(reply["ACB_R_DUE"]) == int(
        datetime(2026, 12, 14, 8, 0, tzinfo=UTC).timestamp()
    )  # next Monday 9:00
    assert await service.list(ADMIN, Query(agent="1001")) == []


async def test_a_pending_callback_is_offered_and_moved(ask, service: CallbackService) -> None:
    call = agent_call()
    first = await ask("create", call, ACB_DUE=str(int(NOW.timestamp()) + 3600))
    check = await ask("check", agent_call())
    assert (check["ACB_R_EXISTING"], check["ACB_R_DAY"]) == (first["ACB_R_ID"], "today")
    assert int(check["ACB_R_DUE"]) == int(NOW.timestamp()) + 3600
    later = str(int(NOW.timestamp()) + 7200)
    moved = await ask("create", agent_call(ACB_TOKEN="other"), ACB_DUE=later, ACB_MOVE=first["ACB_R_ID"])
    assert moved["ACB_R_ID"] == first["ACB_R_ID"]
    callbacks = await service.list(ADMIN, Query(agent="1001"))
    assert [(c.id, c.due_at, c.state) for c in callbacks] == [
        (first["ACB_R_ID"], NOW + timedelta(hours=2), State.SCHEDULED)
    ]


async def test_a_request_read_after_the_agent_gave_up_is_dropped(ask, service: CallbackService) -> None:
    stale = agent_call(ACB_DEADLINE=str(int(NOW.timestamp())))
    reply = await ask("create", stale, ACB_DUE=str(int(NOW.timestamp()) + 600))
    assert reply == {}
    assert await service.list(ADMIN, Query(agent="1001")) == []


async def test_a_finished_request_is_not_answered(ask) -> None:
    """The Gosub clears ACB_STEP when it ends: a helper channel read late finds nothing to do."""
    assert await ask("", agent_call()) == {}


async def test_a_call_that_ended_while_the_agent_keyed_creates_nothing(ask, service: CallbackService) -> None:
    """The contact hung up: its channel no longer answers IMPORT, the create is refused."""
    call = agent_call()
    due = (await ask("parse", call, ACB_KEYS="*30"))["ACB_R_DUE"]
    del call[PEER]
    reply = await ask("create", call, ACB_DUE=due)
    assert (reply["ACB_R_STATUS"], reply["ACB_R_REASON"]) == ("refused", "ended")
    assert await service.list(ADMIN, Query(agent="1001")) == []
