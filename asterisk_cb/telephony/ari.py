"""Our own small ARI REST client on aiohttp: typed calls for the endpoints the daemon uses.

Why not a library: ari-py is synchronous and Python 2 only, aioari/asyncari/ari-client bring a second HTTP
stack or have no reconnect. ARI is a plain JSON/HTTP API described by Swagger 1.1, so ~20 typed methods
on the aiohttp session the API already depends on are less code than adapting any of them.
Every failure surfaces as an AriError subclass with a one-line message, never a library traceback.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from asterisk_cb.telephony.ari_events import Bridge, Channel
from asterisk_cb.telephony.tls import tls_context

Params = Mapping[str, str | int | float | bool | None]


@dataclass(frozen=True)
class AriSettings:
    """Where ARI is and who we are to it; `app` is the one Stasis application this daemon serves."""

    url: str  # e.g. http://127.0.0.1:8088/ari, or https://pbx.example:8089/ari (events then over wss://)
    username: str
    password: str
    app: str
    request_timeout_s: float = 5.0
    ca_file: str | None = None  # the CA that signed Asterisk's certificate (https://); None: the system's

    @property
    def events_url(self) -> str:
        """The events websocket for our application only (subscribeAll would flood us with every call)."""
        ws_base = "ws" + self.url.removeprefix("http") if self.url.startswith("http") else self.url
        return f"{ws_base.rstrip('/')}/events?app={quote(self.app)}&subscribeAll=false"


class AriError(Exception):
    """Any ARI failure; `status` is the HTTP status, 0 when Asterisk was not reached at all."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class AriUnavailable(AriError):
    """Asterisk did not answer: connection refused, reset, or the request timed out."""


class AriClosed(AriUnavailable):
    """The client was closed (the daemon is stopping): an effect still finishing is refused."""


class AriDeadlinePassed(AriError):
    """Not sent: the request's deadline (the dial fence's) passed before it could go out."""


class AriBadRequest(AriError):
    """400: a parameter we sent is wrong (a bug on our side or a bad setting)."""


class AriAuthError(AriError):
    """401/403: the ARI user or password in the settings is wrong."""


class AriNotFound(AriError):
    """404 on an object other than a channel (bridge, device, application, endpoint)."""


class ChannelGone(AriNotFound):
    """404 on a channel: it hung up meanwhile. Callers treat this as an outcome, not an error."""


class AriConflict(AriError):
    """409: the channel is not in our Stasis application (any more), or the id is taken."""


class ChannelNotInStasis(AriConflict):
    """409 on a channel's URL, 422 on addChannel: the channel is not in a Stasis app *yet* (created a
    moment ago: wait for its StasisStart, see AriEventStream.expect) or no more (it left for the
    dialplan). Measured on the lab Asterisk 22 right after create: addChannel failed 7 times in 20,
    dial 3 in 20."""


class AriStateError(AriError):
    """412: the object is in a state where the operation makes no sense (e.g. bridge a dead channel)."""


class AriServerError(AriError):
    """5xx: Asterisk failed internally."""


_ERRORS_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    401: AriAuthError,
    403: AriAuthError,
    404: AriNotFound,
    409: AriConflict,
    412: AriStateError,
    422: ChannelNotInStasis,
}


# On a channel's own URL, 404 means it hung up and 409 that it is not (yet, or any more) in Stasis.
_CHANNEL_ERRORS: Mapping[int, type[AriError]] = {404: ChannelGone, 409: ChannelNotInStasis}


def _error_for(status: int, text: str, overrides: Mapping[int, type[AriError]]) -> AriError:
    default = AriServerError if status >= 500 else AriError
    cls = overrides.get(status) or _ERRORS_BY_STATUS.get(status, default)
    return cls(text, status)


def _timeout_until(deadline: float | None, default_s: float, what: str) -> aiohttp.ClientTimeout | None:
    """The request's timeout: the session's own, or shorter so it ends at ``deadline``; a deadline
    already passed refuses the request before anything is sent."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise AriDeadlinePassed(f"{what} not sent: its deadline passed {-left:.3f}s ago")
    return aiohttp.ClientTimeout(total=min(left, default_s))


def _clean(params: Params) -> dict[str, str]:
    """aiohttp wants str query values; ARI wants lowercase booleans; None means "leave it out"."""
    cleaned: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        cleaned[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return cleaned


def _channel_path(channel_id: str, action: str = "") -> str:
    return f"/channels/{quote(channel_id, safe='')}" + (f"/{action}" if action else "")


def _bridge_path(bridge_id: str, action: str = "") -> str:
    return f"/bridges/{quote(bridge_id, safe='')}" + (f"/{action}" if action else "")


# An idle pooled connection is dropped before Asterisk drops it (http.conf session_keep_alive, 15 s
# by default, as aiohttp's own default): reusing one Asterisk has just closed fails the request
# ("Can not write request body", seen by bench/floor.py).
KEEPALIVE_S = 10.0


class AriClient:
    """REST half of ARI. One aiohttp session per client; use `async with AriClient(...)` or open/close."""

    def __init__(self, settings: AriSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> AriClient:
        self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def open(self) -> None:
        self._closed = False
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={
                    "Authorization": aiohttp.encode_basic_auth(self.settings.username, self.settings.password)
                },
                timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout_s),
                connector=aiohttp.TCPConnector(
                    ssl=tls_context(self.settings.ca_file), keepalive_timeout=KEEPALIVE_S
                ),
            )

    async def close(self) -> None:
        """Close the session; later requests raise ``AriClosed`` rather than open one nobody closes
        (a shielded effect may still be finishing when the daemon stops)."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared HTTP session (the event stream opens its websocket on it too), opened on first
        use."""
        if self._closed:
            raise AriClosed("the ARI client is closed")
        self.open()
        assert self._session is not None
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        errors: Mapping[int, type[AriError]] | None = None,
        deadline: float | None = None,
    ) -> Any:
        """One ARI call: JSON in, decoded JSON (or None for 204) out, or an AriError subclass.

        ``deadline`` (``time.monotonic()``): the request goes out only before it, and is given up at
        it. The dial fence sets it where the caller's lease ends (``runner``): checked here, as late
        as possible before the send, so that a process stalled since the fence sends nothing."""
        url = self.settings.url.rstrip("/") + path
        timeout = _timeout_until(deadline, self.settings.request_timeout_s, f"ARI {method} {path}")
        bounded = {"timeout": timeout} if timeout else {}  # None would mean no timeout at all
        try:
            async with self.session.request(
                method, url, params=_clean(params or {}), json=body, **bounded
            ) as resp:
                if resp.status >= 400:
                    raise _error_for(resp.status, await _error_text(resp, method, path), errors or {})
                if resp.status == 204 or resp.content_length == 0:
                    return None
                return await resp.json()
        except TimeoutError as exc:
            raise AriUnavailable(f"ARI {method} {path} timed out") from exc
        except aiohttp.ClientError as exc:
            raise AriUnavailable(f"ARI {method} {path} failed: {exc}") from exc

    async def _on_channel(
        self,
        method: str,
        channel_id: str,
        action: str = "",
        params: Params | None = None,
        deadline: float | None = None,
    ) -> Any:
        """A call on one channel's URL, with its errors told apart (ChannelGone, ChannelNotInStasis)."""
        path = _channel_path(channel_id, action)
        return await self.request(method, path, params, errors=_CHANNEL_ERRORS, deadline=deadline)

    # --- asterisk ---------------------------------------------------------------------------------

    async def asterisk_info(self) -> dict[str, Any]:
        return await self.request("GET", "/asterisk/info")

    async def ping(self) -> dict[str, Any]:
        """Cheap liveness check; answers {"ping": "pong", "asterisk_id": ..., "timestamp": ...}."""
        return await self.request("GET", "/asterisk/ping")

    # --- channels ---------------------------------------------------------------------------------

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app: str | None = None,
        app_args: str | None = None,
        other_channel_id: str | None = None,
        caller_id: str | None = None,
        timeout_s: int | None = None,
        variables: Mapping[str, str] | None = None,
        originator: str | None = None,
        deadline: float | None = None,
    ) -> Channel:
        """Dial `endpoint`; when answered it enters `app` (ours by default). `channel_id` makes retries
        idempotent: a second originate with the same id fails with 409 instead of ringing twice.
        `deadline`: see ``request``."""
        params: Params = {
            "endpoint": endpoint,
            "app": app or self.settings.app,
            "appArgs": app_args,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "callerId": caller_id,
            "timeout": timeout_s,
            "originator": originator,
        }
        body = {"variables": dict(variables or {})}
        return Channel.from_json(await self.request("POST", "/channels", params, body, deadline=deadline))

    async def create_channel(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app: str | None = None,
        app_args: str | None = None,
        other_channel_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        originator: str | None = None,
    ) -> Channel:
        """Create without dialling (then `dial`), so the executor can bridge before the far end rings.
        The channel enters our app asynchronously: wait for its StasisStart before bridging it."""
        params: Params = {
            "endpoint": endpoint,
            "app": app or self.settings.app,
            "appArgs": app_args,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
        }
        body = {"variables": dict(variables or {})}
        return Channel.from_json(await self.request("POST", "/channels/create", params, body))

    async def dial(
        self,
        channel_id: str,
        *,
        caller: str | None = None,
        timeout_s: int | None = None,
        deadline: float | None = None,
    ) -> None:
        """Dial a created channel; `timeout_s` is how long it rings, `deadline` see ``request``."""
        params: Params = {"caller": caller, "timeout": timeout_s}
        await self._on_channel("POST", channel_id, "dial", params, deadline)

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.from_json(await self._on_channel("GET", channel_id))

    async def list_channels(self) -> list[Channel]:
        return [Channel.from_json(item) for item in await self.request("GET", "/channels")]

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """`reason` is ARI's word: normal, busy, congestion, no_answer, rejected, unallocated..."""
        await self._on_channel("DELETE", channel_id, params={"reason": reason})

    async def answer(self, channel_id: str) -> None:
        await self._on_channel("POST", channel_id, "answer")

    async def ring(self, channel_id: str) -> None:
        """Send ringing indication to the channel (the agent hears ringback while the contact rings)."""
        await self._on_channel("POST", channel_id, "ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self._on_channel("DELETE", channel_id, "ring")

    async def play(self, channel_id: str, media: str, *, playback_id: str | None = None) -> str:
        """Start playing `media` (e.g. "sound:beep", "digits:1234"); returns the playback id."""
        action = "play" + (f"/{quote(playback_id, safe='')}" if playback_id else "")
        playback = await self._on_channel("POST", channel_id, action, {"media": media})
        return str(playback["id"])

    async def stop_playback(self, playback_id: str) -> None:
        """Stop a playback (the agent pressed the skip key). 404 if it already ended: AriNotFound."""
        await self.request("DELETE", f"/playbacks/{quote(playback_id, safe='')}")

    async def moh_start(self, channel_id: str, moh_class: str | None = None) -> None:
        await self._on_channel("POST", channel_id, "moh", {"mohClass": moh_class})

    async def moh_stop(self, channel_id: str) -> None:
        await self._on_channel("DELETE", channel_id, "moh")

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        await self._on_channel("POST", channel_id, "redirect", {"endpoint": endpoint})

    async def continue_in_dialplan(
        self, channel_id: str, *, context: str, extension: str, priority: int = 1
    ) -> None:
        """Leave Stasis and run the admin's dialplan (e.g. the failover queue's context)."""
        params: Params = {"context": context, "extension": extension, "priority": priority}
        await self._on_channel("POST", channel_id, "continue", params)

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        """The variable's value, None if unset. ARI answers 404 for both "no channel" and "no variable",
        so a 404 is told apart by asking for the channel: ChannelGone only when the channel is gone."""
        try:
            result = await self._on_channel("GET", channel_id, "variable", {"variable": name})
        except AriNotFound:
            await self.get_channel(channel_id)
            return None
        return str(result.get("value", ""))

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        params: Params = {"variable": name, "value": value}
        await self._on_channel("POST", channel_id, "variable", params)

    # --- bridges ----------------------------------------------------------------------------------

    async def create_bridge(self, bridge_id: str, *, bridge_type: str = "mixing", name: str = "") -> Bridge:
        params: Params = {"type": bridge_type, "name": name or None}
        return Bridge.from_json(await self.request("POST", _bridge_path(bridge_id), params))

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        """404: the bridge is gone. ChannelNotInStasis: the channel is not in Stasis (yet)."""
        await self.request("POST", _bridge_path(bridge_id, "addChannel"), {"channel": channel_id})

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", _bridge_path(bridge_id, "removeChannel"), {"channel": channel_id})

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", _bridge_path(bridge_id))

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return Bridge.from_json(await self.request("GET", _bridge_path(bridge_id)))

    async def list_bridges(self) -> list[Bridge]:
        return [Bridge.from_json(item) for item in await self.request("GET", "/bridges")]


async def _error_text(resp: aiohttp.ClientResponse, method: str, path: str) -> str:
    """ARI puts a human message in {"message": ...}; fall back to the status line."""
    try:
        detail = (await resp.json(content_type=None) or {}).get("message", "")
    except (TimeoutError, ValueError, aiohttp.ClientError, AttributeError):
        detail = ""
    return f"ARI {method} {path}: {resp.status} {detail or resp.reason}".strip()
