"""End-to-end wiring: the real executor and scheduler on the lab's Asterisk, SIPp phones and Redis.

The lab is the one `scripts/pbx-lab` starts with the caller's ACB_LAB_* environment (so a second
instance on other ports and another directory works the same way). Each test gets its own Redis
namespace, deleted afterwards, and its own contact numbers, so counting INVITEs per number in the
SIPp logs is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ami_relay import LossyAmi
from callback_lab import AGENTS, LEASE_MS, MEMBERS, RECHECK_S, Lab, bounded, pbx_lab, settings_for
from daemon_process import Fleet

from asterisk_cb import deployment
from asterisk_cb.core import ini
from asterisk_cb.core.settings import from_documents
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.scheduler import Scheduler, SchedulerOptions
from asterisk_cb.store import LinePool, Store
from asterisk_cb.telephony.agent_wakeups import wake_from_ami
from asterisk_cb.telephony.ami import AmiConnection, AmiSettings
from asterisk_cb.telephony.answer_marks import AnswerMarks
from asterisk_cb.telephony.ari import AriClient, AriError, AriSettings
from asterisk_cb.telephony.ari_stream import AriEventStream, StreamSettings
from asterisk_cb.telephony.availability import AgentSpec, AvailabilityView
from asterisk_cb.telephony.availability_feed import feed_from_ami
from asterisk_cb.telephony.backoff import Backoff
from asterisk_cb.telephony.executor import CallbackExecutor, ExecutorOptions
from asterisk_cb.telephony.pause_sweep import PauseSweep
from asterisk_cb.telephony.queue_guard import QueueGuard


@pytest.fixture(scope="session")
def lab_phones(lab_info: dict[str, Any]) -> dict[str, Any]:
    pbx_lab("up")
    return lab_info


class Daemon:
    """What `asterisk-cb run` wires: ARI events and AMI, the availability view, the queue guard, the
    executor under a scheduler. ``stop`` is what a killed daemon leaves behind: live calls up, their
    leases lapsing."""

    def __init__(
        self,
        info: dict[str, Any],
        store: Store,
        *,
        app: str | None = None,
        concurrency: int = 200,
        lines: LinePool | None = None,
        agents: Iterable[AgentSpec] | None = None,
        ami_port: int | None = None,
    ) -> None:
        ari_info = info["ari"]
        self.ari = AriClient(
            AriSettings(ari_info["url"], ari_info["user"], ari_info["password"], app or ari_info["app"])
        )
        self.view = AvailabilityView.of(
            agents if agents is not None else [AgentSpec(a, devices=(f"PJSIP/{a}",)) for a in AGENTS]
        )
        self.events = AriEventStream(self.ari, StreamSettings(backoff=Backoff(initial_s=0.5, cap_s=2.0)))
        ami_info = info["ami"]
        self.ami = AmiConnection(
            AmiSettings(ami_info["user"], ami_info["secret"], ami_info["host"], ami_port or ami_info["port"]),
            watched_devices=self.view.watched_devices,
        )
        feed_from_ami(self.view, self.ami)
        self.wakeups = wake_from_ami(self.view, self.ami, store)
        self.queue_guard = QueueGuard(self.ami)
        self.executor = CallbackExecutor(
            store,
            self.ari,
            self.events,
            availability=self.view,
            settings_for=lambda callback: settings_for(store, callback),
            options=ExecutorOptions(info["dialplan"]["outbound_context"], recheck_s=RECHECK_S, lines=lines),
            queue_guard=self.queue_guard,
            answers=AnswerMarks(self.ami),
            feeds=(self.ami.health,),
            after_run=self.wakeups.check,
        )
        # the periodic sweep is the daemon process's (test_daemon_process.py); here only the resync's
        self.pause_sweep = PauseSweep(self.queue_guard, self.view, store, every_s=60)
        self.ami.on_resync(lambda _: self.pause_sweep.sweep())
        self.scheduler = Scheduler(
            store,
            self.executor,
            SchedulerOptions(lease_ms=LEASE_MS, renew_every_ms=1000, concurrency=concurrency, lines=lines),
        )
        self._running: asyncio.Task[None] | None = None
        self._requests: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._running is not None

    async def start(self) -> None:
        self.events.start()
        await self.ami.start()
        await self.events.wait_ready(10)
        await self.ami.wait_ready(10)
        self._running = asyncio.create_task(self.scheduler.run())
        self._requests = asyncio.create_task(self.executor.follow_requests())

    async def stop(self) -> None:
        if self._requests is not None:
            self._requests.cancel()
            await asyncio.gather(self._requests, return_exceptions=True)
        self.scheduler.stop()
        if self._running is not None:
            await self._running
        self.wakeups.close()
        await self.events.stop()
        await self.ami.stop()
        await self.ari.close()


def _agents(request: pytest.FixtureRequest) -> list[AgentSpec] | None:
    """The test's ``@pytest.mark.agents("<[agents] lines>")`` read as the daemon reads its config file's
    [agents] section; None without one (agents 1001-1004 on their own phones)."""
    marker = request.node.get_closest_marker("agents")
    if marker is None:
        return None
    file = from_documents([ini.parse("[agents]\n" + marker.args[0], "test")], other_sections=("agents",))
    return list(deployment.agents_section(file.other_sections["agents"]).values())


@pytest.fixture
async def lab(lab_phones: dict[str, Any], request: pytest.FixtureRequest) -> AsyncIterator[Lab]:
    """One daemon running on a fresh namespace; ``lab.restart_daemon()`` replaces it by a new one."""
    agents = _agents(request)

    def one_daemon(store: Store) -> list[Daemon]:
        return [Daemon(lab_phones, store, agents=agents)]

    async with _lab_with(lab_phones, one_daemon, agents) as started:
        yield started


@pytest.fixture
async def lossy_ami_lab(lab_phones: dict[str, Any]) -> AsyncIterator[tuple[Lab, LossyAmi]]:
    """One daemon whose AMI link goes through ``LossyAmi``: Asterisk's answers to its pauses are lost."""
    relay = LossyAmi(lab_phones["ami"]["host"], lab_phones["ami"]["port"])
    await relay.start()

    def one_daemon(store: Store) -> list[Daemon]:
        return [Daemon(lab_phones, store, ami_port=relay.port)]

    try:
        async with _lab_with(lab_phones, one_daemon) as started:
            yield started, relay
    finally:
        await relay.stop()


@pytest.fixture
async def pair_lab(lab_phones: dict[str, Any]) -> AsyncIterator[Lab]:
    """Two daemons on one namespace (each its own ARI app), each working on one callback at a time:
    two callbacks due at one instant are taken one by each daemon."""
    async with _lab_with(lab_phones, _pair(lab_phones, concurrency=1)) as started:
        yield started


@pytest.fixture
async def one_line_pair_lab(lab_phones: dict[str, Any]) -> AsyncIterator[Lab]:
    """Two daemons on one namespace sharing ONE line through the outbound context
    (``[dialing] context_max_calls = 1``)."""
    lines = LinePool(lab_phones["dialplan"]["outbound_context"], 1)
    async with _lab_with(lab_phones, _pair(lab_phones, lines=lines)) as started:
        yield started


@pytest.fixture
async def second_daemon(lab_phones: dict[str, Any], lab: Lab) -> AsyncIterator[Daemon]:
    """One more daemon on ``lab``'s namespace with an ARI app of its own, not started yet (the test
    starts it when it wants); stopped afterwards."""
    daemon = Daemon(lab_phones, lab.store, app=f"{lab_phones['ari']['app']}-second")
    try:
        yield daemon
    finally:
        if daemon.started:
            await daemon.stop()


def _pair(info: dict[str, Any], **options: Any) -> Callable[[Store], list[Daemon]]:
    def two(store: Store) -> list[Daemon]:
        app = info["ari"]["app"]
        return [Daemon(info, store, app=f"{app}-{n}", **options) for n in (1, 2)]

    return two


@contextlib.asynccontextmanager
async def _lab_with(
    info: dict[str, Any], make: Callable[[Store], list[Daemon]], agents: list[AgentSpec] | None = None
) -> AsyncIterator[Lab]:
    """Start ``make``'s daemons on a fresh namespace; afterwards stop them, end leftover calls and delete
    the namespace, passed or failed. ``restart_daemon`` replaces the last daemon by a new one (with
    ``agents``, the test's [agents], if any)."""
    redis = connect(info["redis"]["url"])
    store = Store(redis, Keys(f"e2e-{uuid.uuid4().hex[:8]}"))
    daemons = make(store)
    for daemon in daemons:
        await daemon.start()

    async def restart_daemon(
        down_s: float, while_down: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        await daemons.pop().stop()
        if while_down is not None:
            await while_down()
        await asyncio.sleep(down_s)
        daemons.append(Daemon(info, store, agents=agents))
        await daemons[-1].start()

    probe = AriClient(daemons[0].ari.settings)
    lab = Lab(
        info,
        store,
        probe,
        restart_daemon,
        prefix=f"e2e{uuid.uuid4().hex[:4]}-",
        redis=redis,
        daemon_ari_events=lambda: daemons[-1].events,
    )
    try:
        yield lab
    finally:
        async with bounded("stopping the e2e daemons and clearing the test's calls"):
            for daemon in daemons:
                await daemon.stop()
            await lab.hang_up_leftovers()
            await probe.close()
            await store.delete_namespace()
            await redis.aclose()


@pytest.fixture
async def fleet_lab(lab_phones: dict[str, Any], tmp_path: Path) -> AsyncIterator[tuple[Fleet, Lab]]:
    """A namespace of its own, daemons as processes (none started yet), and the e2e Lab helpers on it.
    Afterwards, passed or failed: every daemon killed, leftover calls hung up, the namespace deleted."""
    namespace = f"e2e-proc-{uuid.uuid4().hex[:8]}"
    redis = connect(lab_phones["redis"]["url"])
    store = Store(redis, Keys(namespace))
    ari_info = lab_phones["ari"]
    probe = AriClient(AriSettings(ari_info["url"], ari_info["user"], ari_info["password"], "acb-probe"))
    fleet = Fleet(lab_phones, namespace, tmp_path)

    async def no_in_process_daemon(_: float) -> None:
        raise AssertionError("these tests restart daemon processes through the Fleet")

    prefix = f"prc{uuid.uuid4().hex[:4]}-"
    lab = Lab(lab_phones, store, probe, no_in_process_daemon, prefix=prefix, redis=redis)
    if await _ari_wedged(probe):  # a test that starts on a wedged ARI proves nothing of its own case
        logging.getLogger(__name__).warning("lab ARI wedged before the test: restarting Asterisk")
        pbx_lab("up")
    try:
        yield fleet, lab
    finally:
        fleet.kill_all()
        fleet.print_logs()  # pytest shows it under the test's captured output when the test failed
        async with bounded("clearing the test's calls"):
            wedged = await _ari_wedged(probe)
            await lab.hang_up_leftovers()
            await probe.close()
            await store.delete_namespace()
            await redis.aclose()
        assert not wedged, "ARI stopped answering GET /applications after the daemons were killed"


async def _ari_wedged(probe: AriClient) -> bool:
    """Asterisk's ARI deadlocked (asterisk#2170): GET /applications hangs while /asterisk/info still
    answers. Seen after SIGKILLed daemons when they subscribed to "deviceState:"; they no longer do,
    and killing them must leave the admin's ARI answering."""
    try:
        async with asyncio.timeout(5):
            await probe.request("GET", "/applications")
    except (AriError, TimeoutError):
        return True
    return False


@pytest.fixture
def members_answer() -> Iterator[None]:
    """The failover queue's members answer, during the test and after it (a test may change them)."""
    for member in MEMBERS:
        Lab.phone(member, "answer")
    yield
    for member in MEMBERS:
        Lab.phone(member, "answer")
