"""The contact calls in first, the daemon's two parts against the lab's real Redis: the inbound hook's
AGI answer (what the dialplan is told) and the call-in watch (AMI bridge and hangup events in, callbacks
settled out). The AGI session and the AMI link are stand-ins that record; the lab e2e tests
(tests/e2e/test_call_in.py) prove both with Asterisk."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from test_service import NOW, Clock, Directory, request

from asterisk_cb.call_in_watch import CallInWatch
from asterisk_cb.core.model import FinishReason, State
from asterisk_cb.core.numbers import NumberPlan
from asterisk_cb.core.settings import Settings
from asterisk_cb.inbound_hook import CALL_IN, InboundHook
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, connect
from asterisk_cb.service import ADMIN, CallbackService
from asterisk_cb.store import Store
from asterisk_cb.telephony.ami_events import AmiEvent, BridgeEnter, ChannelRef, Hangup
from asterisk_cb.telephony.availability import AgentSpec, AvailabilityView
from asterisk_cb.telephony.backoff import Backoff
from asterisk_cb.telephony.inbound_talk import Talk, TalkTracker

pytestmark = pytest.mark.lab

NUMBER = "+4930123456"
UNIQUEID = "1796620000.42"


@pytest.fixture
async def store(redis: RedisClient) -> AsyncIterator[Store]:
    store = Store(redis, Keys("test-" + uuid.uuid4().hex[:12], NumberPlan("49")))
    yield store
    await store.delete_namespace()


@pytest.fixture
def settings() -> dict[str, Settings]:
    return {"default": Settings(call_in_priority=9, call_in_caller_id_prefix="CB")}


@pytest.fixture
def service(store: Store, settings: dict[str, Settings]) -> CallbackService:
    return CallbackService(store, Directory(), _settings_for(settings), Clock())


def _settings_for(settings: dict[str, Settings]) -> Callable[[str | None, str | None], Any]:
    async def settings_for(agent: str | None, queue: str | None) -> Settings:
        return settings.get(str(agent), settings["default"])

    return settings_for


def _view(state_1001: str = "NOT_INUSE") -> AvailabilityView:
    view = AvailabilityView.of(
        [AgentSpec("1001", ("PJSIP/1001", "PJSIP/1001-mobile")), AgentSpec("1002", ("PJSIP/1002",))]
    )
    view.replace_device_states(
        [("PJSIP/1001", state_1001), ("PJSIP/1001-mobile", "NOT_INUSE"), ("PJSIP/1002", "NOT_INUSE")]
    )
    return view


class Session:
    """The Asterisk side of the helper channel's AGI: the caller channel's variables, the SHARED ones
    the daemon sets, in order."""

    def __init__(self, number: str) -> None:
        self.number = number
        self.asked: list[str] = []
        self.shared: dict[str, str] = {}

    async def get_full_variable(self, expression: str) -> str | None:
        self.asked.append(expression)
        return self.number if expression == f"${{IMPORT({UNIQUEID},CALLERID(num))}}" else ""

    async def set_variable(self, name: str, value: str) -> None:
        self.shared[name.removeprefix("SHARED(").split(",")[0]] = value


class Request:
    def __init__(self, extension: str = UNIQUEID) -> None:
        self.env = {"extension": extension}


async def _schedule(service: CallbackService, number: str, agent: str = "1001", hours: int = 2) -> str:
    created = await service.schedule(
        ADMIN, request(contact_number=number, agent=agent, due_at=NOW + timedelta(hours=hours))
    )
    return created.callback.id


async def test_the_hook_describes_the_soonest_pending_callback(
    service: CallbackService, settings: dict[str, Settings]
) -> None:
    await _schedule(service, NUMBER, agent="1002", hours=3)
    soonest = await _schedule(service, "030123456", hours=1)
    hook = InboundHook(service, _view(), _settings_for(settings), clock=NOW.timestamp)
    session = Session("004930123456")
    await hook(Request(), session)
    assert session.shared == {
        "ACB_I_ID": soonest,
        "ACB_I_AGENT": "1001",
        "ACB_I_ENDPOINTS": "PJSIP/1001&PJSIP/1001-mobile",
        "ACB_I_FREE": "1",
        "ACB_I_DUE": str(int((NOW + timedelta(hours=1)).timestamp())),
        "ACB_I_COUNT": "2",
        "ACB_I_PRIORITY": "9",
        "ACB_I_PREFIX": "CB ",
        "ACB_I_STATUS": "found",
    }
    assert list(session.shared)[-1] == "ACB_I_STATUS"  # the Gosub waits for the status: written last


async def test_a_busy_owner_is_not_free(service: CallbackService, settings: dict[str, Settings]) -> None:
    await _schedule(service, NUMBER)
    hook = InboundHook(service, _view("INUSE"), _settings_for(settings), clock=NOW.timestamp)
    answer = await hook.look_up(NUMBER)
    assert (answer.status.value, answer.free) == ("found", False)


@pytest.mark.parametrize("number", ["+4930999", "anonymous", "", "123;Local/1"])
async def test_an_unknown_number_clears_every_field(
    service: CallbackService, settings: dict[str, Settings], number: str
) -> None:
    await _schedule(service, NUMBER)
    session = Session(number)
    await InboundHook(service, _view(), _settings_for(settings))(Request(), session)
    assert session.shared["ACB_I_STATUS"] == "unknown"
    assert {name: value for name, value in session.shared.items() if value not in ("", "0")} == {
        "ACB_I_STATUS": "unknown"
    }


async def test_redis_down_answers_unavailable_at_once(settings: dict[str, Settings]) -> None:
    """A Redis nobody listens on (port 1): the look-up fails, the dialplan hears so at once."""
    down = connect("redis://127.0.0.1:1")
    try:
        service = CallbackService(
            Store(down, Keys("test-down")), Directory(), _settings_for(settings), Clock()
        )
        session = Session(NUMBER)
        await InboundHook(service, _view(), _settings_for(settings))(Request(), session)
        assert session.shared["ACB_I_STATUS"] == "unavailable"
    finally:
        await down.aclose()


@pytest.mark.parametrize("extension", ["", "1.2}${SHELL(id)", "a b"])
async def test_a_helper_channel_naming_no_caller_is_not_read(
    service: CallbackService, settings: dict[str, Settings], extension: str
) -> None:
    session = Session(NUMBER)
    await InboundHook(service, _view(), _settings_for(settings))(Request(extension), session)
    assert (session.asked, session.shared) == ([], {})


class Ami:
    """The AMI link's two hooks the watch uses."""

    def __init__(self) -> None:
        self.handlers: list[Callable[[AmiEvent], Any]] = []
        self.resync: list[Callable[[Any], Any]] = []

    def subscribe(self, handler: Callable[[AmiEvent], Any], *types: type[AmiEvent]) -> Callable[[], None]:
        self.handlers.append(handler)
        return lambda: None

    def on_resync(self, hook: Callable[[Any], Any]) -> None:
        self.resync.append(hook)

    def emit(self, event: AmiEvent) -> None:
        for handler in self.handlers:
            handler(event)


CALLER = ChannelRef("500.1", "500.1", "PJSIP/trunk-00000001", "030123456")
AGENT = ChannelRef("500.2", "500.1", "PJSIP/1001-00000002", "1001")


def _talk(ami: Ami, clock: list[float], seconds: float) -> None:
    ami.emit(BridgeEnter("BridgeEnter", "b1", CALLER))
    ami.emit(BridgeEnter("BridgeEnter", "b1", AGENT))
    clock[0] += seconds
    ami.emit(Hangup("Hangup", CALLER))


@asynccontextmanager
async def _watching(watch: CallInWatch) -> AsyncIterator[None]:
    """The watch running for the block; stopped and awaited after it (no task left behind holding a
    Redis connection mid-command)."""
    task = asyncio.create_task(watch.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize(("seconds", "completed"), [(25.0, True), (5.0, False)])
async def test_the_watch_settles_after_enough_talk(
    service: CallbackService, store: Store, seconds: float, completed: bool
) -> None:
    callback_id = await _schedule(service, NUMBER)
    clock = [100.0]
    ami = Ami()
    tracker = TalkTracker(lambda channel: "1001" if channel.startswith("PJSIP/1001-") else None)

    settled = asyncio.Event()

    async def settle(talk: Talk) -> list[Any]:
        try:
            return await service.settle_call_in(CALL_IN, talk.number, talk.agent, int(talk.seconds))
        finally:
            settled.set()

    watch = CallInWatch(ami, tracker, settle, clock=lambda: clock[0])
    async with _watching(watch):
        _talk(ami, clock, seconds)
        await asyncio.wait_for(settled.wait(), 10)  # the talk was offered: its outcome is written
    found = await store.get(callback_id)
    assert found is not None
    if completed:
        assert found.state is State.COMPLETED
        assert (found.finish_reason, found.called_in_agent, found.called_in_talk_s) == (
            FinishReason.CONTACT_CALLED_IN,
            "1001",
            25,
        )
    else:
        assert found.state is State.SCHEDULED and found.finish_reason is None


async def test_the_watch_retries_while_redis_is_away_and_forgets_calls_on_resync() -> None:
    attempts: list[Talk] = []

    async def flaky(talk: Talk) -> list[Any]:
        attempts.append(talk)
        if len(attempts) < 3:
            raise RedisConnectionError("Connection refused")
        return []

    clock = [0.0]
    ami = Ami()
    watch = CallInWatch(
        ami, TalkTracker(lambda c: "1001" if c.startswith("PJSIP/1001-") else None), flaky,
        clock=lambda: clock[0], retry=Backoff(initial_s=0.01, cap_s=0.02),
    )  # fmt: skip
    async with _watching(watch):
        _talk(ami, clock, 30.0)
        for _ in range(100):
            if len(attempts) >= 3:
                break
            await asyncio.sleep(0.01)
        assert [talk.seconds for talk in attempts] == [30.0, 30.0, 30.0]
        ami.emit(BridgeEnter("BridgeEnter", "b1", CALLER))
        ami.emit(BridgeEnter("BridgeEnter", "b1", AGENT))
        for hook in ami.resync:
            hook(None)  # AMI reconnected: events may have been missed
        ami.emit(Hangup("Hangup", CALLER))
        await asyncio.sleep(0.05)
        assert len(attempts) == 3
