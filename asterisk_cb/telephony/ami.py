"""AMI over panoramisk: login, reconnect with backoff, typed events, and the few actions we send.

panoramisk does the wire protocol; this module adds what a daemon needs around it: a capped jittered
reconnect (panoramisk retries every 2 s forever and logs tracebacks), a health flag, a re-seed of
device and queue state on every FullyBooted (Asterisk sends it at login when booted, or later when a
restarting Asterisk finishes booting: seeding at login could read half-loaded queues), delivered
*before* the events that raced it, and actions that fail with AmiError instead of hanging.

Least rights (manager.conf, checked on Asterisk 22 with `manager show command`): `read = system,call,agent`
(FullyBooted is `system`, DeviceStateChange `call`, QueueMember* and AgentLogin/Logoff `agent`) and
`write = agent,reporting` (QueuePause and Agents need `agent`; DeviceStateList, Getvar and DBGet are
allowed by `reporting`, which grants no call control; QueueStatus needs none), with an `eventfilter` per
event name (README "Least rights and TLS"). Over TLS (`tls`), the certificate is checked against `ca_file`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from panoramisk import Manager

from asterisk_cb.telephony.ami_events import (
    AgentStatus,
    AmiEvent,
    DeviceStateChange,
    FullyBooted,
    QueueMember,
    QueueMemberEvent,
    parse_ami_event,
)
from asterisk_cb.telephony.backoff import Backoff
from asterisk_cb.telephony.fanout import Fanout
from asterisk_cb.telephony.health import HealthFlag
from asterisk_cb.telephony.tls import tls_context

_log = logging.getLogger(__name__)

AmiHandler = Callable[[AmiEvent], Awaitable[None] | None]

# Actions whose loss on a dropped link we handle ourselves (panoramisk would replay them much later).
_OUR_ACTIONS = ("ping", "login", "logoff", "queuepause", "queuestatus", "devicestatelist", "agents")


@dataclass(frozen=True)
class AmiSettings:
    username: str
    secret: str
    host: str = "127.0.0.1"
    port: int = 5038
    agent_pool: bool = False  # the admin uses app_agent_pool: also seed agent logins (Agents action)
    tls: bool = False  # manager.conf tlsenable: the secret and events are encrypted (port 5039 by default)
    ca_file: str | None = None  # the CA that signed Asterisk's certificate; None: the system's CAs
    action_timeout_s: float = 5.0
    ping_interval_s: int = 10
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(frozen=True)
class AmiSnapshot:
    """Device states and queue memberships read right after a login."""

    device_states: tuple[DeviceStateChange, ...]
    members: tuple[QueueMember, ...]
    agent_logins: dict[str, str] | None = None  # agent -> device; None when app_agent_pool is not used


AmiResyncHook = Callable[[AmiSnapshot], Awaitable[None] | None]


class AmiError(Exception):
    """An AMI action failed or could not be sent; the message is one line for logs and history."""


class AmiUnavailable(AmiError):
    """Not logged in, or the link dropped before the answer came."""


class AmiNoAnswer(AmiUnavailable):
    """The action went out but its answer never came (timeout, link dropped): Asterisk may or may not
    have carried it out. Not logged in is the plain ``AmiUnavailable``: nothing was sent."""


class _Resync:
    """Queue marker: seed state here, after the events received before it and before those after."""


# The Login's event mask: the classes of every event the daemon handles (FullyBooted and Shutdown are
# "system", DeviceStateChange, Bridge* and Hangup "call", QueueMember* and AgentLogin/Logoff "agent").
# It cuts nothing more for the README's user with its event filter, but an AMI user set up without the
# filter lines hears 68 events per callback instead of 173 (bench/README.md, "AMI events").
EVENT_CLASSES = "system,call,agent"


class _Manager(Manager):
    """panoramisk's Manager with its reconnect policy and logging handed to AmiConnection."""

    def __init__(self, link: AmiConnection, **config: Any) -> None:
        super().__init__(**config)
        self._link = link

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        exc = None if f.cancelled() else f.exception()
        if exc is None and self._link._manager is not self:  # connected after AmiConnection.stop()
            transport, _protocol = f.result()
            transport.close()
            return
        if exc is not None:
            self._link._link_failed(f"connect to {self.config['host']}:{self.config['port']} failed: {exc}")
            return
        super().connection_made(f)

    def login(self, future: asyncio.Future[Any]) -> bool:
        if future.cancelled() or future.exception() is not None:
            self.authenticated_future = None
            return False
        authenticated = bool(super().login(future))
        self._link._logged_in(authenticated, str(future.result().get("Message", "")))
        return authenticated

    def ping(self) -> None:
        """panoramisk's ping timer: fire-and-forget there; here an unanswered Ping drops the link."""
        self.pinger = self.loop.call_later(self.ping_interval, self.ping)
        self._link._check_alive()

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        self._link._link_failed(_loss_reason(exc))


def _loss_reason(exc: object) -> str:
    """panoramisk reports Asterisk's own Shutdown event as the "exception" of a clean shutdown."""
    if isinstance(exc, Mapping) and str(exc.get("Event", "")).lower() == "shutdown":
        restart = str(exc.get("Restart", "")).lower() == "true"
        return "Asterisk restarting" if restart else "Asterisk shut down"
    return "connection lost" + ("" if exc is None else f": {_first_line(exc)}")


def _first_line(value: object) -> str:
    text = str(value).strip().splitlines()
    return text[0] if text else value.__class__.__name__


class AmiConnection:
    """One logged-in AMI link kept alive; typed events fan out to subscribers in arrival order."""

    def __init__(
        self,
        settings: AmiSettings,
        *,
        watched_devices: Callable[[], Iterable[str]] = tuple,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.settings = settings
        self.watched_devices = watched_devices  # devices an agent rings: seeded even when not cached
        self.health = HealthFlag("ami")
        self._uniform = uniform
        self._fanout: Fanout[AmiEvent] = Fanout("ami", _log)
        self._resync_hooks: Fanout[AmiSnapshot] = Fanout("ami", _log)
        self._inbox: asyncio.Queue[AmiEvent | _Resync] = asyncio.Queue()
        self._pending: set[asyncio.Future[Any]] = set()
        self._manager: _Manager | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._attempt = 0
        self._liveness_checks: set[asyncio.Task[None]] = set()
        self._authenticated = asyncio.Event()
        self._ready = asyncio.Event()

    # --- wiring -----------------------------------------------------------------------------------

    def subscribe(self, handler: AmiHandler, *types: type[AmiEvent]) -> Callable[[], None]:
        """Call `handler` for events of `types` (all events when none given); returns an unsubscriber."""
        return self._fanout.subscribe(handler, *types)

    def on_resync(self, hook: AmiResyncHook) -> None:
        """Run `hook` with fresh device and queue state on every FullyBooted, before later events."""
        self._resync_hooks.subscribe(hook)

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._manager = _Manager(
            self,
            host=self.settings.host,
            port=self.settings.port,
            username=self.settings.username,
            secret=self.settings.secret,
            ping_delay=self.settings.ping_interval_s,
            ping_interval=self.settings.ping_interval_s,
            forgetable_actions=_OUR_ACTIONS,
            events=EVENT_CLASSES,
            ssl=tls_context(self.settings.ca_file) if self.settings.tls else False,
            loop=loop,
            log=logging.getLogger("panoramisk.asterisk_cb"),
        )
        self._manager.register_event("*", self._on_message)
        self._consumer = asyncio.create_task(self._consume(), name="ami-events")
        self._manager.connect()

    async def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.close()
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        self._fail_pending("AMI connection stopped")
        self._ready.clear()
        self.health.mark_down("stopped")

    async def wait_ready(self, timeout_s: float) -> None:
        """Until logged in and seeded (raises TimeoutError otherwise)."""
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    # --- actions ----------------------------------------------------------------------------------

    async def send(self, action: Mapping[str, str]) -> Any:
        """Send one action; the answer (a Message, or a list for event-list actions) or AmiError."""
        manager = self._manager
        if manager is None or not self._authenticated.is_set():
            raise AmiUnavailable(f"AMI {action.get('Action')}: not logged in")
        future = manager.send_action(dict(action))
        self._pending.add(future)
        try:
            answer = await asyncio.wait_for(asyncio.shield(future), self.settings.action_timeout_s)
        except TimeoutError:
            raise AmiNoAnswer(f"AMI {action.get('Action')}: no answer in time") from None
        finally:
            self._pending.discard(future)
        first = answer[0] if isinstance(answer, list) else answer
        if first.get("Response") in ("Error", "Fail", "Failure"):
            raise AmiError(f"AMI {action.get('Action')} refused: {first.get('Message', '')}")
        return answer

    async def queue_pause(
        self, interface: str, paused: bool, *, queue: str = "", reason: str = "callback"
    ) -> None:
        """(Un)pause `interface` in `queue` (all its queues when empty); the reason shows in queue logs."""
        action = {"Action": "QueuePause", "Interface": interface, "Paused": str(paused).lower()}
        if queue:
            action["Queue"] = queue
        if reason:
            action["Reason"] = reason
        await self.send(action)

    async def queue_members(self, queue: str = "") -> list[QueueMember]:
        """Every membership (of `queue`, or of all queues) via QueueStatus."""
        action = {"Action": "QueueStatus"} | ({"Queue": queue} if queue else {})
        answer = await self.send(action)
        events = (parse_ami_event(message) for message in _as_list(answer))
        return [event.member for event in events if isinstance(event, QueueMemberEvent)]

    async def queue_names(self) -> list[str]:
        """Every queue Asterisk has, members or not (QueueStatus's QueueParams entries), sorted."""
        answer = await self.send({"Action": "QueueStatus"})
        return sorted({str(m["Queue"]) for m in _as_list(answer) if m.get("Event") == "QueueParams"})

    async def device_states(self) -> list[DeviceStateChange]:
        """Every device in Asterisk's device state cache, via DeviceStateList (res_manager_devicestate)."""
        answer = await self.send({"Action": "DeviceStateList"})
        events = (parse_ami_event(message) for message in _as_list(answer))
        return [event for event in events if isinstance(event, DeviceStateChange)]

    async def device_state(self, device: str) -> DeviceStateChange:
        """One device's state computed now (DEVICE_STATE()): a device that never changed state since
        Asterisk started (an idle IAX2 or DAHDI line, say) is not in the cache DeviceStateList reads."""
        answer = await self.send({"Action": "Getvar", "Variable": f"DEVICE_STATE({device})"})
        return DeviceStateChange("DeviceStateChange", device, str(answer.get("Value") or "UNKNOWN"))

    async def known_device_states(self, devices: Iterable[str]) -> tuple[DeviceStateChange, ...]:
        """The cache, plus each of ``devices`` the cache does not hold yet (what the seed and
        ``doctor`` need: an idle phone must not look unknown)."""
        listed = {event.device: event for event in await self.device_states()}
        missing = [device for device in devices if device not in listed]
        return (*listed.values(), *[await self.device_state(device) for device in missing])

    async def agent_logins(self) -> dict[str, str]:
        """app_agent_pool agents logged in now, and the phone each sits at (Agents action)."""
        answer = await self.send({"Action": "Agents"})
        events = (parse_ami_event(message) for message in _as_list(answer))
        return {e.agent: e.device for e in events if isinstance(e, AgentStatus) and e.device}

    async def take_snapshot(self) -> AmiSnapshot:
        return AmiSnapshot(
            device_states=await self.known_device_states(self.watched_devices()),
            members=tuple(await self.queue_members()),
            agent_logins=await self.agent_logins() if self.settings.agent_pool else None,
        )

    # --- panoramisk callbacks (sync, on the loop) --------------------------------------------------

    def _on_message(self, _manager: Manager, message: Mapping[str, str]) -> None:
        event = parse_ami_event(message)
        if event is not None:
            self._inbox.put_nowait(event)
        if isinstance(event, FullyBooted):
            self._inbox.put_nowait(_Resync())

    def _logged_in(self, authenticated: bool, message: str) -> None:
        if not authenticated:
            self._drop(f"login refused: {message or 'no reason given'}")
            return
        self._authenticated.set()
        self._attempt = 0

    def _drop(self, error: str) -> None:
        """Give up on this connection (bad login, failed seed) and retry it later with backoff.

        Closing the protocol ourselves does not call back into connection_lost, so we report here."""
        self._link_failed(error)
        if self._manager is not None and self._manager.protocol is not None:
            self._manager.protocol.close()

    def _link_failed(self, error: str) -> None:
        """Any loss: mark down, fail waiting actions, and schedule the next connect with backoff."""
        self._authenticated.clear()
        self._ready.clear()
        self._fail_pending(f"AMI {error}")
        was_up = self.health.connected
        self.health.mark_down(error)
        if self._manager is None:
            return
        delay = self.settings.backoff.delay(self._attempt, self._uniform)
        self._attempt += 1
        level = logging.WARNING if was_up else logging.INFO
        _log.log(level, "AMI down", extra={"component": "ami", "error": error, "retry_in_s": round(delay, 2)})
        if self._retry is not None:
            self._retry.cancel()
        self._retry = asyncio.get_running_loop().call_later(delay, self._manager.connect)

    def _check_alive(self) -> None:
        """Ping; a link that stays silent past the action timeout is half-open (TCP never closed): drop it."""
        if not self._authenticated.is_set():
            return
        task = asyncio.get_running_loop().create_task(self._ping(self._manager))
        self._liveness_checks.add(task)
        task.add_done_callback(self._liveness_checks.discard)

    async def _ping(self, manager: _Manager | None) -> None:
        try:
            await self.send({"Action": "Ping"})
        except AmiUnavailable as exc:
            if manager is self._manager and self._authenticated.is_set():
                self._drop(f"no answer to Ping ({exc})")
        except AmiError:
            return  # an answer, even a refusal, proves the link is alive

    def _fail_pending(self, reason: str) -> None:
        for future in list(self._pending):
            if not future.done():
                future.set_exception(AmiNoAnswer(reason))
        self._pending.clear()

    # --- event consumer ---------------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            item = await self._inbox.get()
            if isinstance(item, _Resync):
                await self._resync()
            else:
                await self._dispatch(item)

    async def _resync(self) -> None:
        try:
            # FullyBooted can be parsed a moment before panoramisk reports the login that preceded it.
            await asyncio.wait_for(self._authenticated.wait(), self.settings.action_timeout_s)
            snapshot = await self.take_snapshot()
        except (AmiError, TimeoutError) as exc:
            self._drop(f"resync failed: {_first_line(exc) if str(exc) else 'not logged in'}")
            return
        await self._resync_hooks.dispatch(snapshot, "resync")
        self.health.mark_up()
        self._ready.set()
        _log.info("AMI connected", extra={"component": "ami", "host": self.settings.host})

    async def _dispatch(self, event: AmiEvent) -> None:
        await self._fanout.dispatch(event, event.name)


def _as_list(answer: Any) -> list[Any]:
    return answer if isinstance(answer, list) else [answer]
