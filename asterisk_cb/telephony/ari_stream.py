"""The ARI events websocket for our one Stasis application: dispatch, reconnect, resync, health.

When Asterisk restarts, the websocket drops, the application vanishes from Asterisk with it, and every
event in between is lost. So each (re)connect re-registers the app (connecting the websocket does that)
and hands a fresh snapshot of what we own (channel and bridge ids with our prefix) to the resync hooks
*before* any buffered event is dispatched: the hooks rebuild state from the snapshot, then the events
that arrived meanwhile move it forward in order.

The app subscribes to no extra event source. Device states come over AMI (DeviceStateChange) instead
of an ARI "deviceState:" subscription: Asterisk tears such a subscription down when the app's websocket
closes, and a close racing a device state event can deadlock ARI (asterisk/asterisk#2170; what the lab
showed after a SIGKILLed daemon). A daemon's crash must never wedge the admin's PBX.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from asterisk_cb.core.model import ARI_ID_PREFIX
from asterisk_cb.telephony.ari import AriClient, AriError
from asterisk_cb.telephony.ari_events import (
    ApplicationReplaced,
    AriEvent,
    Bridge,
    Channel,
    EventParseError,
    parse_event,
)
from asterisk_cb.telephony.backoff import Backoff
from asterisk_cb.telephony.fanout import Fanout
from asterisk_cb.telephony.health import HealthFlag

_log = logging.getLogger(__name__)

EventHandler = Callable[[AriEvent], Awaitable[None] | None]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class ResyncSnapshot:
    """What Asterisk holds right after a (re)connect, limited to what this daemon owns or watches."""

    channels: tuple[Channel, ...]
    bridges: tuple[Bridge, ...]


ResyncHook = Callable[[ResyncSnapshot], Awaitable[None] | None]


@dataclass(frozen=True)
class StreamSettings:
    """`owned_prefix` marks channel and bridge ids this daemon created (it chooses every id it uses)."""

    owned_prefix: str = ARI_ID_PREFIX
    heartbeat_s: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)


class _ConnectionLost(Exception):
    """The websocket ended; carries the reason for the health flag."""


class ApplicationTakenOver(Exception):
    """Another client registered our Stasis app name; reconnecting would only steal it back and forth."""


class AriEventStream:
    """Keeps one events websocket alive and fans its typed events out to subscribers, in order."""

    def __init__(
        self,
        client: AriClient,
        settings: StreamSettings | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.client = client
        self.settings = settings or StreamSettings()
        self.health = HealthFlag("ari")
        self._sleep = sleep
        self._uniform = uniform
        self._fanout: Fanout[AriEvent] = Fanout("ari", _log)
        self._resync_hooks: Fanout[ResyncSnapshot] = Fanout("ari", _log)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    # --- wiring -----------------------------------------------------------------------------------

    def subscribe(self, handler: EventHandler, *types: type[AriEvent]) -> Callable[[], None]:
        """Call `handler` for events of `types` (all events when none given); returns an unsubscriber."""
        return self._fanout.subscribe(handler, *types)

    def expect(self, predicate: Callable[[AriEvent], bool]) -> asyncio.Future[AriEvent]:
        """A future for the first event matching `predicate`, listening from now on: call it *before*
        the request that causes the event (e.g. create_channel, then await its StasisStart)."""
        future: asyncio.Future[AriEvent] = asyncio.get_running_loop().create_future()

        def check(event: AriEvent) -> None:
            if not future.done() and predicate(event):
                future.set_result(event)

        unsubscribe = self.subscribe(check)
        future.add_done_callback(lambda _done: unsubscribe())
        return future

    def on_resync(self, hook: ResyncHook) -> None:
        """Run `hook` with a fresh snapshot after every (re)connect, before that connection's events.
        A failing hook is logged like a failing event handler: it must not stop the reconnect loop."""
        self._resync_hooks.subscribe(hook)

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="ari-events")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._ready.clear()
        self.health.mark_down("stopped")

    async def wait_ready(self, timeout_s: float) -> None:
        """Until connected and resynced (raises TimeoutError otherwise)."""
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    async def run(self) -> None:
        """Connect, serve, and reconnect with capped jittered backoff, until cancelled or taken over."""
        attempt = 0
        while True:
            try:
                await self._serve_one_connection()
            except ApplicationTakenOver as exc:
                self._mark_down(str(exc))
                return
            except (_ConnectionLost, AriError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                if self.health.connected:
                    attempt = 0
                self._mark_down(_describe(exc))
            delay = self.settings.backoff.delay(attempt, self._uniform)
            attempt += 1
            _log.info("ARI reconnect scheduled", extra={"component": "ari", "retry_in_s": round(delay, 2)})
            await self._sleep(delay)

    # --- one connection ---------------------------------------------------------------------------

    async def _serve_one_connection(self) -> None:
        url = self.client.settings.events_url
        ws = await self.client.session.ws_connect(url, heartbeat=self.settings.heartbeat_s)
        async with ws:
            await self._run_resync()
            self.health.mark_up()
            self._ready.set()
            _log.info("ARI events connected", extra={"component": "ari", "app": self.client.settings.app})
            await self._pump(ws)

    async def _run_resync(self) -> None:
        await self._resync_hooks.dispatch(await self.take_snapshot(), "resync")

    async def take_snapshot(self) -> ResyncSnapshot:
        """Our channels and bridges (by id prefix), read over REST."""
        prefix = self.settings.owned_prefix
        channels = await self.client.list_channels()
        bridges = await self.client.list_bridges()
        return ResyncSnapshot(
            channels=tuple(ch for ch in channels if ch.id.startswith(prefix)),
            bridges=tuple(br for br in bridges if br.id.startswith(prefix)),
        )

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await self._handle_text(message.data)
            elif message.type == aiohttp.WSMsgType.ERROR:
                raise _ConnectionLost(f"websocket error: {ws.exception()!r}")
        raise _ConnectionLost(f"websocket closed (code {ws.close_code})")

    async def _handle_text(self, text: str) -> None:
        try:
            event = parse_event(json.loads(text))
        except (ValueError, EventParseError) as exc:
            _log.warning("ARI event skipped", extra={"component": "ari", "error": str(exc)})
            return
        await self.dispatch(event)
        if isinstance(event, ApplicationReplaced):
            raise ApplicationTakenOver(f"Stasis app {event.application!r} taken over by another ARI client")

    async def dispatch(self, event: AriEvent) -> None:
        """Hand `event` to each matching handler in turn (also how tests inject events)."""
        await self._fanout.dispatch(event, event.type)

    def _mark_down(self, error: str) -> None:
        was_up = self.health.connected
        self._ready.clear()
        self.health.mark_down(error)
        level = logging.WARNING if was_up else logging.INFO
        _log.log(level, "ARI events down", extra={"component": "ari", "error": error})


def _describe(exc: BaseException) -> str:
    """One line for the health flag and logs: the class and message, never a traceback."""
    text = str(exc) or exc.__class__.__name__
    return text if isinstance(exc, _ConnectionLost | AriError) else f"{exc.__class__.__name__}: {text}"
