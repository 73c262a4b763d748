"""The daemon's components under the supervisor: started, stopped, restarted, or the daemon stopped."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from asterisk_cb import config, deployment
from asterisk_cb.components import EXIT_COMPONENT_FAILED, Component, Supervisor
from asterisk_cb.daemon import Daemon
from asterisk_cb.telephony.backoff import Backoff

# Nothing answers on port 9 (discard): ARI, AMI and Redis stay unreachable, the daemon waits for links.
UNREACHABLE = """[general]
[redis]
url = redis://127.0.0.1:9/0
[ari]
url = http://127.0.0.1:9/ari
user = acb
password = secret
[ami]
host = 127.0.0.1
port = 9
user = acb
secret = secret
[dialing]
outbound_context = from-internal
[agents]
alice = PJSIP/1001
[feature_code]
listen =
"""
FAST_RESTART = Backoff(initial_s=0.05, cap_s=0.1, jitter=0.0)


@dataclass
class Dummy:
    """A component that records its life; fails its first ``failures`` runs, or returns when asked."""

    name: str
    essential: bool = False
    failures: int = 0
    journal: list[str] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        self.journal.append("start")
        self.started.set()
        try:
            if self.journal.count("start") <= self.failures:
                await asyncio.sleep(0.01)
                raise RuntimeError(f"{self.name} broke")
            while True:
                await asyncio.sleep(0.01)
                self.journal.append("tick")
        finally:
            self.journal.append("stop")


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def daemon_with(tmp_path: Path, extra: Component) -> Daemon:
    """A daemon built from the config file, with one more component: one line in its list."""

    class WithExtra(Daemon):
        def components(self) -> list[Component]:
            return [*super().components(), extra]

    path = tmp_path / "asterisk-cb.conf"
    path.write_text(UNREACHABLE)
    file = config.load(path, other_sections=deployment.SECTIONS)
    return WithExtra(path, file, deployment.from_settings_file(file))


async def test_the_daemon_starts_and_stops_an_extra_component(tmp_path: Path) -> None:
    dummy = Dummy("dummy")
    daemon = daemon_with(tmp_path, dummy)
    assert [c.name for c in daemon.supervisor.components] == [
        "ari",
        "ami",
        "scheduler",
        "requests",
        "due-order",
        "settings",
        "pause-sweep",
        "call-in",
        "dummy",
    ]
    running = asyncio.create_task(daemon.run())
    await asyncio.wait_for(dummy.started.wait(), 5)
    await until(lambda: "tick" in dummy.journal)
    assert daemon.supervisor.snapshot()["dummy"] is True
    assert b'asterisk_cb_component_up{component="dummy"} 1.0' in daemon.metrics.render()
    daemon.supervisor.stop()
    assert await asyncio.wait_for(running, 5) == 0
    assert dummy.journal[-1] == "stop"
    assert daemon.supervisor.snapshot() == dict.fromkeys(
        ["ari", "ami", "scheduler", "requests", "due-order", "settings", "pause-sweep", "call-in", "dummy"],
        False,
    )


async def test_metrics_components_only_with_a_metrics_section(tmp_path: Path) -> None:
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(UNREACHABLE + "[metrics]\nlisten = 127.0.0.1:9464\n")
    file = config.load(path, other_sections=deployment.SECTIONS)
    daemon = Daemon(path, file, deployment.from_settings_file(file))
    try:
        names = [component.name for component in daemon.supervisor.components]
        assert names == [
            "ari",
            "ami",
            "scheduler",
            "requests",
            "due-order",
            "settings",
            "pause-sweep",
            "call-in",
            "metrics",
            "events:metrics",
        ]
    finally:
        await daemon.ari.close()
        await daemon.redis.aclose()


async def test_the_feature_code_server_is_a_component_unless_listen_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(
        UNREACHABLE.replace("[feature_code]\nlisten =\n", "[feature_code]\nlisten = 127.0.0.1:4573\n")
    )
    file = config.load(path, other_sections=deployment.SECTIONS)
    daemon = Daemon(path, file, deployment.from_settings_file(file))
    try:
        names = [component.name for component in daemon.supervisor.components]
        assert names == [
            "ari",
            "ami",
            "scheduler",
            "requests",
            "due-order",
            "settings",
            "pause-sweep",
            "call-in",
            "agi",
        ]
    finally:
        await daemon.ari.close()
        await daemon.redis.aclose()


async def test_sigterm_while_waiting_for_ari_and_ami_stops_within_seconds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dummy = Dummy("dummy")
    daemon = daemon_with(tmp_path, dummy)
    running = asyncio.create_task(daemon.run())
    await asyncio.wait_for(dummy.started.wait(), 5)  # by now the scheduler waits for ARI and AMI (10 s)
    with caplog.at_level(logging.INFO):
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(running, 3) == 0
    messages = [record.getMessage() for record in caplog.records]
    assert "running" not in messages  # the scheduler never got past the wait
    assert messages[-1] == "stopped"


async def test_a_failing_auxiliary_is_restarted_while_the_callbacks_go_on() -> None:
    callbacks = Dummy("scheduler", essential=True)
    flaky = Dummy("metrics", failures=2)
    supervisor = Supervisor([callbacks, flaky], restart=Backoff(initial_s=0.3, cap_s=0.3, jitter=0.0))
    running = asyncio.create_task(supervisor.run())
    await until(lambda: flaky.journal.count("stop") == 1)
    await asyncio.sleep(0.05)
    assert supervisor.snapshot() == {"scheduler": True, "metrics": False}  # down while it waits
    await until(lambda: "tick" in flaky.journal)  # the third run holds
    assert flaky.journal.count("start") == 3
    assert supervisor.snapshot() == {"scheduler": True, "metrics": True}
    assert callbacks.journal.count("start") == 1  # never interrupted
    ticks = callbacks.journal.count("tick")
    await asyncio.sleep(0.05)
    assert callbacks.journal.count("tick") > ticks
    supervisor.stop()
    assert await asyncio.wait_for(running, 2) == 0


async def test_a_failing_essential_stops_the_daemon_with_its_name_and_exit_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order: list[str] = []

    @dataclass
    class Recorded(Dummy):
        async def run(self) -> None:
            try:
                await super().run()
            finally:
                order.append(self.name)

    first, broken, last = Recorded("ari", True), Recorded("ami", True, failures=1), Recorded("metrics")
    supervisor = Supervisor([first, broken, last], restart=FAST_RESTART)
    with caplog.at_level(logging.ERROR):
        assert await asyncio.wait_for(supervisor.run(), 3) == EXIT_COMPONENT_FAILED
    assert order == ["ami", "metrics", "ari"]  # the failed one, then the others last started first
    (record,) = [r for r in caplog.records if r.getMessage().startswith("essential component failed")]
    assert record.component == "ami"  # type: ignore[attr-defined]
    assert record.exc_info is not None and "ami broke" in str(record.exc_info[1])


async def test_an_essential_component_that_returns_counts_as_failed() -> None:
    @dataclass
    class Returns:
        name: str = "ari"
        essential: bool = True

        async def run(self) -> None:
            return None

    assert await asyncio.wait_for(Supervisor([Returns()]).run(), 2) == EXIT_COMPONENT_FAILED


async def test_restart_delay_grows_capped_and_resets_after_a_healthy_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]

    @dataclass
    class Clocked:
        name: str = "flaky"
        essential: bool = False
        runs: int = 0

        async def run(self) -> None:
            self.runs += 1
            now[0] += 100.0 if self.runs == 4 else 1.0  # the fourth run ran fine for a long time
            raise RuntimeError("again")

    flaky = Clocked()
    backoff = Backoff(initial_s=0.01, factor=2.0, cap_s=0.04, jitter=0.0)
    supervisor = Supervisor([flaky], restart=backoff, healthy_after_s=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR):
        running = asyncio.create_task(supervisor.run())
        await until(lambda: flaky.runs >= 6)
        supervisor.stop()
        assert await running == 0
    delays = [r.retry_in_s for r in caplog.records if r.getMessage() == "component failed, restarting"]  # type: ignore[attr-defined]
    assert delays[:6] == [0.01, 0.02, 0.04, 0.01, 0.02, 0.04]
    assert all(r.exc_info is not None for r in caplog.records)  # each failure with its traceback


@dataclass
class SwallowsOneCancel:
    """A component whose library swallowed the first cancellation (the Redis client can: the
    command returns instead) and goes on looping, as the daemon's Redis loops did on SIGTERM."""

    name: str = "swallower"
    essential: bool = True
    swallowed: int = 0

    async def run(self) -> None:
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if self.swallowed:
                    raise
                self.swallowed += 1


async def test_a_component_that_swallowed_its_cancellation_is_cancelled_again_and_stops_promptly() -> None:
    swallower = SwallowsOneCancel()
    supervisor = Supervisor([swallower])
    running = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0.05)
    supervisor.stop()
    assert await asyncio.wait_for(running, 1.0) == 0  # not the 5 s a single cancel would wait
    assert swallower.swallowed == 1
