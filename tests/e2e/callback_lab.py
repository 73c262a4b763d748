"""Helpers of the end-to-end tests: phones, INVITE logs, settings as a user sets them, callbacks to await.

Contact numbers are unique per test, so counting INVITEs per number in the SIPp logs is exact. Delays
are set the way a user sets them: run-time setting overrides in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from asterisk_cb import cli
from asterisk_cb.core import lifecycle
from asterisk_cb.core.codec import event_from_fields
from asterisk_cb.core.model import ARI_ID_PREFIX, Callback, Event, EventKind, LegRole
from asterisk_cb.core.settings import Settings as CallbackSettings
from asterisk_cb.core.settings import SettingsFile
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.secrecy import write_private
from asterisk_cb.service import effective_settings
from asterisk_cb.store import Store
from asterisk_cb.telephony.ari import AriClient, AriNotFound
from asterisk_cb.telephony.ari_stream import AriEventStream

T = TypeVar("T")
PBX_LAB = Path(__file__).resolve().parents[2] / "scripts" / "pbx-lab"
MEMBERS = ("1003", "1004")  # the lab's failover queue
AGENTS = ("1001", "1002", "1003", "1004")  # the agents the daemon is configured with
LEASE_MS = 3000  # short, so a stopped daemon's live calls are taken over within seconds
RECHECK_S = 2.0  # live calls are looked up after 2 s without events: exercised by every long ring/talk


def pbx_lab(*args: str) -> None:
    """`scripts/pbx-lab args...` with this process's ACB_LAB_* environment (tests/conftest.py has the
    same helper, but conftest modules cannot be imported from one another)."""
    result = subprocess.run(
        [sys.executable, str(PBX_LAB), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"pbx-lab {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")


@dataclass
class Invites:
    """One SIPp phone's INVITE log (`<unix time> <request-URI user> <Call-ID>` per line)."""

    path: Path

    def times(self, user: str) -> list[float]:
        if not self.path.exists():
            return []
        lines = (line.split() for line in self.path.read_text().splitlines())
        return [float(parts[0]) for parts in lines if len(parts) >= 2 and parts[1] == user]

    def cancel_reasons(self) -> list[str]:
        """The Reason header of every CANCEL the phone got (logged by a phone that rings until
        cancelled: `<unix time> CANCEL <Call-ID> <Reason>`), oldest first."""
        if not self.path.exists():
            return []
        lines = (line.split(maxsplit=3) for line in self.path.read_text().splitlines())
        return [parts[3] if len(parts) > 3 else "" for parts in lines if parts[1:2] == ["CANCEL"]]


class RestartDaemon(Protocol):
    """Stop the daemon (its calls stay up), do ``while_down``, wait ``down_s``, start a new one."""

    def __call__(
        self, down_s: float, while_down: Callable[[], Awaitable[object]] | None = None
    ) -> Awaitable[None]: ...


@dataclass
class Lab:
    """What a test drives: the store, the phones, and how to make and await a callback."""

    info: dict[str, Any]
    store: Store
    ari: AriClient  # the test's own look at Asterisk (not the daemon's)
    restart_daemon: RestartDaemon
    prefix: str
    redis: RedisClient  # the test's look at the keys the daemons wrote (the store keeps its client)
    daemon_ari_events: Callable[[], AriEventStream] | None = None  # the in-process daemon's (its app's)

    async def event_group_ready(self, group: str) -> None:
        """Wait until a started daemon's consumer group exists (the CEL writer's ``cel``): a new group
        starts at the stream's end, so an event written before it is never handled (README, Limits)."""

        async def exists() -> bool:
            return group in {found.name for found in await self.store.event_groups()}

        await until_equal(exists, True, 15)

    def contact_invites(self) -> Invites:
        return Invites(Path(self.info["contacts"]["invite_log"]))

    def agent_invites(self, agent: str) -> Invites:
        """An agent's phone, or a desk phone (1011), by its endpoint's name."""
        phones = self.info["agents"] | self.info["desk_phones"]
        return Invites(Path(phones[agent]["invite_log"]))

    @staticmethod
    def phone(agent: str, behaviour: str, ring_s: int = 0) -> None:
        pbx_lab("phone", agent, behaviour, "--ring-s", str(ring_s))

    async def set(self, **options: str) -> None:
        """Run-time overrides of the global settings, as `asterisk-cb settings` would write them."""
        for option, value in options.items():
            await self.store.set_setting("general", option, value)

    async def schedule(
        self, number: str, agent: str, in_s: float = 1.0, name: str = "", origin_linkedid: str | None = None
    ) -> Callback:
        """``origin_linkedid``: the linkedid of the call the callback was requested on, if any."""
        now = datetime.now(UTC)
        request = lifecycle.NewCallback(
            contact_number=number,
            agent=agent,
            due_at=now + timedelta(seconds=in_s),
            created_by="e2e",
            contact_name=name,
            origin_linkedid=origin_linkedid,
        )
        callback_id = f"{self.prefix}{uuid.uuid4().hex[:8]}"
        transition = lifecycle.create(request, callback_id, now, await settings_for(self.store, None))
        await self.store.create(transition.callback, transition.events)
        return transition.callback

    async def cli(self, tmp_path: Path, *args: str, sections: str = "") -> tuple[int, str, str]:
        """`asterisk-cb args...` as an admin types it, on this test's namespace: (exit code, stdout,
        stderr); ``sections``: more of the config file (e.g. ``[records]``). It runs in a thread: the
        command has its own event loop."""
        config = tmp_path / "asterisk-cb.conf"
        agents = "\n".join(f"{agent} = PJSIP/{agent}" for agent in AGENTS)
        write_private(
            config,
            f"[redis]\nurl = {self.info['redis']['url']}\nnamespace = {self.store.keys.namespace}\n"
            "[ari]\nuser = acb\npassword = unused\n[ami]\nuser = acb\nsecret = unused\n"
            f"[dialing]\noutbound_context = {self.info['dialplan']['outbound_context']}\n"
            f"[agents]\n{agents}\n" + sections,
        )

        def run() -> tuple[int, str, str]:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(["--config", str(config), *args])
            return code, out.getvalue(), err.getvalue()

        return await asyncio.to_thread(run)

    async def our_channels(self) -> list[str]:
        """Channels of this test's callbacks that Asterisk still holds (none once a callback is done)."""
        return [
            channel.id
            for channel in await self.ari.list_channels()
            if channel.id.startswith(ARI_ID_PREFIX + self.prefix)
        ]

    async def hang_up_leftovers(self) -> None:
        """After a test: end this test's calls so the next test finds its agents idle, and delete its
        answer marks (the daemon never does; the dialplan purges them only after 30 days)."""
        for mark in self.answer_marks():
            pbx_cli(f"database del {mark.strip('/').replace('/', ' ', 1)}")
        for channel_id in await self.our_channels():
            with contextlib.suppress(AriNotFound):
                await self.ari.hangup(channel_id)
        for bridge in await self.ari.list_bridges():
            if bridge.id.startswith(ARI_ID_PREFIX + self.prefix):
                with contextlib.suppress(AriNotFound):
                    await self.ari.destroy_bridge(bridge.id)

    def answer_marks(self) -> list[str]:
        """This test's entries in Asterisk's AstDB family ``acb`` (answers no daemon saw; see
        ``telephony.answer_marks``), as ``/acb/<channel id>``."""
        listing = pbx_cli("database show acb")
        return [line.split()[0] for line in listing.splitlines() if f"/{ARI_ID_PREFIX}{self.prefix}" in line]

    async def events(self, callback_id: str) -> list[Event]:
        """The callback's history as the event stream holds it, oldest first."""
        entries = await self.redis.xrange(self.store.keys.events)
        events = (event_from_fields(fields) for _, fields in entries)
        return [event for event in events if event.callback_id == callback_id]

    async def kinds(self, callback_id: str) -> list[EventKind]:
        return [event.kind for event in await self.events(callback_id)]

    async def wait_for(
        self, callback_id: str, done: Callable[[Callback], bool], timeout_s: float = 60
    ) -> Callback:
        async with asyncio.timeout(timeout_s):
            while True:
                callback = await self.store.get(callback_id)
                assert callback is not None
                if done(callback):
                    return callback
                await asyncio.sleep(0.1)


async def settings_for(store: Store, callback: Callback | None) -> CallbackSettings:
    """Effective settings for a callback: defaults < run-time overrides (agent > queue > global)."""
    agent, queue = (callback.agent, callback.queue) if callback else (None, None)
    return await effective_settings(SettingsFile({}, {}), store, agent, queue)


@contextlib.asynccontextmanager
async def bounded(what: str, timeout_s: float = 60) -> AsyncIterator[None]:
    """A fixture's clean-up that may not hang the suite: past ``timeout_s`` it fails, printing every
    asyncio task's stack (what a hang report needs; pytest-timeout shows only the threads')."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError:
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stdout)
        raise AssertionError(f"{what} took over {timeout_s:.0f} s (task stacks above)") from None


async def device_state(lab: Lab, phone: str) -> str:
    """What Asterisk says of the lab phone's device now (ARI's REST read; the daemon itself learns
    device states over AMI)."""
    return str((await lab.ari.request("GET", f"/deviceStates/PJSIP%2F{phone}"))["state"])


async def channel_app(lab: Lab, channel_id: str) -> str | None:
    """The dialplan application the channel runs (Stasis, AMD, Queue...); None before it exists or
    once it is gone (a ring is committed before its channel is created)."""
    try:
        return (await lab.ari.get_channel(channel_id)).app_name
    except AriNotFound:
        return None


def leg_channel(callback: Callback, role: LegRole) -> str:
    """The channel id of the last attempt's ``role`` leg, which the test knows was placed."""
    leg = callback.attempts[-1].leg(role)
    assert leg is not None and leg.channel_id is not None
    return leg.channel_id


async def until(predicate: Callable[[], bool], timeout_s: float = 10) -> None:
    """Wait for a condition other processes make true (a SIPp log line, a device state)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the condition is a file other processes write
            await asyncio.sleep(0.05)


async def until_equal(probe: Callable[[], Awaitable[T]], expected: T, timeout_s: float = 10) -> None:
    """Wait until an async probe (e.g. a REST look at Asterisk) answers ``expected``."""
    async with asyncio.timeout(timeout_s):
        while await probe() != expected:  # noqa: ASYNC110 - polling Asterisk over REST
            await asyncio.sleep(0.1)


def invite_times(info: dict[str, Any], user: str) -> list[float]:
    """Every INVITE for ``user`` in every SIPp log of the lab (a restarted phone starts a new file)."""
    times = []
    for path in Path(info["contacts"]["invite_dir"]).glob("*"):
        for parts in (line.split() for line in path.read_text().splitlines()):
            if len(parts) >= 2 and parts[1] == user:
                times.append(float(parts[0]))
    return sorted(times)


def unique_number(behaviour_prefix: str) -> str:
    """A contact number no other test dials: the lab's behaviour prefix + random digits."""
    return behaviour_prefix + "".join(random.choices("0123456789", k=12 - len(behaviour_prefix)))


def pbx_cli(command: str) -> str:
    """One Asterisk CLI command on the lab (the root console: AstDB is not the daemon's to change)."""
    return subprocess.run(
        [sys.executable, str(PBX_LAB), "cli", command], capture_output=True, text=True, timeout=30, check=True
    ).stdout
