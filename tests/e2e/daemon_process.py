"""`asterisk-cb run` as real OS processes, for the end-to-end tests that kill and restart the daemon.

The in-process e2e daemon (conftest.py) proves the executor; these processes prove what an admin runs:
the entry point, the config file, the signal handlers, and what a SIGKILL really leaves behind (no
``finally``, no release of claims, a websocket cut mid-call). Each daemon of a test gets the test's
Redis namespace and its own ARI application name, as the README tells admins to do. ``[daemon]`` sets
a short lease and call check (``LEASE_S``, ``RECHECK_S``) as an admin could, so a take-over waits
seconds, not the default 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asterisk_cb.secrecy import write_private

ENTRY_POINT = Path(sys.executable).parent / "asterisk-cb"
SOURCE_ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 5.0  # [daemon] lease: a killed daemon's callbacks are taken over this long after
# [daemon] call_check: a call resumed by a daemon whose ARI application is not the one the channels sit
# in hears of their hangup only when it looks them up.
RECHECK_S = 5.0
START_TIMEOUT_S = 15.0
# Short delays a tester would write into [general]; tests change more with run-time overrides.
GENERAL = {"reschedule_delay": "2s", "retry_interval": "5s", "agent_ring_timeout": "20s"}
DAEMON = {"lease": f"{LEASE_S:.0f}s", "call_check": f"{RECHECK_S:.0f}s"}


NO_FEATURE_CODE = {"listen": ""}


def _options(section: str, options: Mapping[str, str]) -> str:
    return f"[{section}]\n" + "".join(f"{option} = {value}\n" for option, value in options.items())


def config_text(
    info: dict[str, Any],
    namespace: str,
    app: str,
    dialing: str = "",
    daemon: Mapping[str, str] = DAEMON,
    feature_code: Mapping[str, str] = NO_FEATURE_CODE,
    numbers: Mapping[str, str] | None = None,
    records: Mapping[str, str] | None = None,
    extra: str = "",
) -> str:
    """The config an admin would write for the lab PBX (cf. scripts/demo_callback.py); ``dialing``:
    more ``[dialing]`` lines; ``daemon``: the ``[daemon]`` options (bench/calls.py keeps the defaults,
    so it passes none); ``feature_code``: the ``[feature_code]`` options (by default no FastAGI server:
    several daemons of one test run on one host); ``numbers``: a ``[numbers]`` section (none by default);
    ``records``: a ``[records]`` section (none: no CEL writer); ``extra``: more sections as written
    (``[users]``, ``[api]``)."""
    general = "\n".join(f"{option} = {value}" for option, value in GENERAL.items())
    agents = "\n".join(f"{agent} = {spec['endpoint']}" for agent, spec in sorted(info["agents"].items()))
    ari, ami = info["ari"], info["ami"]
    return (
        f"[general]\n{general}\n\n"
        f"[redis]\nurl = {info['redis']['url']}\nnamespace = {namespace}\n\n"
        f"[ari]\nurl = {ari['url']}\nuser = {ari['user']}\npassword = {ari['password']}\napp = {app}\n\n"
        f"[ami]\nhost = {ami['host']}\nport = {ami['port']}\n"
        f"user = {ami['user']}\nsecret = {ami['secret']}\n\n"
        f"[dialing]\noutbound_context = {info['dialplan']['outbound_context']}\n{dialing}\n"
        f"[agents]\n{agents}\n\n"
        + (_options("daemon", daemon) if daemon else "")
        + _options("feature_code", feature_code)
        + (_options("numbers", numbers) if numbers else "")
        + (_options("records", records) if records else "")
        + extra
    )


def _source_first() -> dict[str, str]:
    """The environment with this checkout first on the daemon's path: the code under test is the tree
    the tests come from, also when the venv's editable install points at another one (a git worktree
    sharing the venv)."""
    paths = (str(SOURCE_ROOT), os.environ.get("PYTHONPATH", ""))
    return os.environ | {"PYTHONPATH": os.pathsep.join(path for path in paths if path)}


def log_tail(log: Path, lines: int) -> str:
    return "\n".join(log.read_text().splitlines()[-lines:]) if log.exists() else ""


@dataclass
class DaemonProcess:
    """One `asterisk-cb --config <file> run`, its JSON log in a file next to the config."""

    config: Path
    log: Path
    wrapper: tuple[str, ...] = ()  # what runs the entry point, e.g. a profiler (bench/calls.py --profile)
    environment: Mapping[str, str] = field(default_factory=dict)  # more variables, e.g. a fault hook
    process: subprocess.Popen[bytes] = field(init=False)

    def start(self) -> None:
        with self.log.open("ab") as log:
            command = [*self.wrapper, str(ENTRY_POINT), "--config", str(self.config), "run"]
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=_source_first() | dict(self.environment),
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running_lines(self) -> int:
        """How many times a daemon logging into this file said it runs (the log is shared by restarts)."""
        return self.log.read_text().count('"msg": "running"') if self.log.exists() else 0

    async def wait_running(self, seen_before: int) -> None:
        """Until this process logs "running" (ARI connected, scheduler about to claim)."""
        async with asyncio.timeout(START_TIMEOUT_S):
            while self.running_lines() <= seen_before:
                if self.process.poll() is not None:
                    raise AssertionError(f"asterisk-cb run exited {self.process.returncode}: {self.tail()}")
                await asyncio.sleep(0.1)

    def send(self, stop_signal: signal.Signals) -> None:
        self.process.send_signal(stop_signal)

    async def exited(self, timeout_s: float) -> int:
        """The exit code, waiting at most ``timeout_s`` (raises TimeoutExpired if still running)."""
        return await asyncio.to_thread(self.process.wait, timeout_s)

    def kill(self) -> None:
        """SIGKILL if still running, and reap it (cleanup after any test, passed or not)."""
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def tail(self, lines: int = 20) -> str:
        return log_tail(self.log, lines)


@dataclass
class Fleet:
    """The daemon processes of one test: all on one namespace, one ARI app (config file) per name."""

    info: dict[str, Any]
    namespace: str
    folder: Path
    started: list[DaemonProcess] = field(default_factory=list)
    dialing: str = ""  # more [dialing] lines for every daemon's config (e.g. "max_calls = 1\n")
    daemon: dict[str, str] = field(default_factory=lambda: dict(DAEMON))  # its [daemon] options
    feature_code: dict[str, str] = field(default_factory=lambda: dict(NO_FEATURE_CODE))  # [feature_code]
    numbers: dict[str, str] = field(default_factory=dict)  # a [numbers] section when not empty
    records: dict[str, str] = field(default_factory=dict)  # a [records] section (the CEL writer)
    extra: str = ""  # more sections, as written ([users], [api])

    async def start(self, app: str, environment: Mapping[str, str] | None = None) -> DaemonProcess:
        """Start `asterisk-cb run` for ``app`` (the same config file on a restart) and wait till it runs;
        ``environment``: more variables for the process (``asterisk_cb.faults``)."""
        config = self.folder / f"{app}.conf"
        if not config.exists():
            write_private(
                config,
                config_text(
                    self.info,
                    self.namespace,
                    app,
                    self.dialing,
                    self.daemon,
                    self.feature_code,
                    self.numbers,
                    self.records,
                    self.extra,
                ),
            )
        daemon = DaemonProcess(config, self.folder / f"{app}.log", environment=environment or {})
        seen = daemon.running_lines()
        daemon.start()
        self.started.append(daemon)
        await daemon.wait_running(seen)
        return daemon

    def kill_all(self) -> None:
        for daemon in self.started:
            daemon.kill()

    def print_logs(self, lines: int = 60) -> None:
        """The end of every daemon's log: what a failed test's report needs, the log files being gone
        with the test's tmp_path on a CI machine."""
        for log in sorted({daemon.log for daemon in self.started}):
            print(f"--- {log.name} (last {lines} lines)\n{log_tail(log, lines)}")
