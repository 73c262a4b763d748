"""Typed ARI objects and events: the dozen shapes the daemon reads, parsed once at the edge.

The rest of the daemon never indexes raw ARI JSON, so a field renamed by a future Asterisk breaks here,
in one parser with a test, and not in the executor at call time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Json = Mapping[str, Any]


@dataclass(frozen=True)
class Party:
    """A caller or connected-line identity."""

    name: str = ""
    number: str = ""

    @classmethod
    def from_json(cls, data: Json | None) -> Party:
        data = data or {}
        return cls(name=data.get("name", ""), number=data.get("number", ""))


@dataclass(frozen=True)
class Channel:
    """An ARI channel as the daemon needs it; `state` is ARI's word (Down, Ring, Ringing, Up, Busy...)."""

    id: str
    name: str
    state: str
    caller: Party = field(default_factory=Party)
    connected: Party = field(default_factory=Party)
    context: str = ""
    exten: str = ""
    app_name: str = ""  # the dialplan application the channel runs now (Stasis, AMD, Dial...)
    creationtime: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Json) -> Channel:
        dialplan = data.get("dialplan") or {}
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            state=data.get("state", ""),
            caller=Party.from_json(data.get("caller")),
            connected=Party.from_json(data.get("connected")),
            context=dialplan.get("context", ""),
            exten=dialplan.get("exten", ""),
            app_name=dialplan.get("app_name", ""),
            creationtime=data.get("creationtime", ""),
            variables=dict(data.get("channelvars") or {}),
        )


@dataclass(frozen=True)
class Bridge:
    id: str
    bridge_type: str
    channels: tuple[str, ...]
    name: str = ""

    @classmethod
    def from_json(cls, data: Json) -> Bridge:
        return cls(
            id=data["id"],
            bridge_type=data.get("bridge_type", ""),
            channels=tuple(data.get("channels") or ()),
            name=data.get("name", ""),
        )


@dataclass(frozen=True)
class Playback:
    """A sound being played; `state` is queued, playing, done or failed."""

    id: str
    media_uri: str
    target_uri: str
    state: str

    @classmethod
    def from_json(cls, data: Json) -> Playback:
        return cls(
            id=data["id"],
            media_uri=data.get("media_uri", ""),
            target_uri=data.get("target_uri", ""),
            state=data.get("state", ""),
        )


@dataclass(frozen=True)
class AriEvent:
    """Common part of every event; `application` is the Stasis app the event was sent to."""

    type: str
    application: str
    timestamp: str


@dataclass(frozen=True)
class ChannelEvent(AriEvent):
    channel: Channel


@dataclass(frozen=True)
class StasisStart(ChannelEvent):
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelStateChange(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelDestroyed(ChannelEvent):
    """`cause` is the Q.850 hangup cause (16 normal, 17 busy, 19 no answer, 21 rejected, 1 unallocated)."""

    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True)
class ChannelHangupRequest(ChannelEvent):
    cause: int | None = None
    soft: bool = False


@dataclass(frozen=True)
class ChannelDtmfReceived(ChannelEvent):
    """A key pressed on the channel (e.g. the agent skipping the announcement)."""

    digit: str = ""
    duration_ms: int = 0


@dataclass(frozen=True)
class ChannelEnteredBridge(ChannelEvent):
    bridge: Bridge = field(default_factory=lambda: Bridge(id="", bridge_type="", channels=()))


@dataclass(frozen=True)
class ChannelLeftBridge(ChannelEvent):
    bridge: Bridge = field(default_factory=lambda: Bridge(id="", bridge_type="", channels=()))


@dataclass(frozen=True)
class ChannelVarset(AriEvent):
    """A variable set on a channel; `channel` is None for a global variable."""

    variable: str
    value: str
    channel: Channel | None = None


@dataclass(frozen=True)
class Dial(AriEvent):
    """Progress of a dial: `dialstatus` empty while ringing starts, then ANSWER, BUSY, NOANSWER, CANCEL..."""

    peer: Channel
    dialstatus: str
    caller: Channel | None = None
    dialstring: str = ""


@dataclass(frozen=True)
class BridgeDestroyed(AriEvent):
    bridge: Bridge


@dataclass(frozen=True)
class PlaybackStarted(AriEvent):
    playback: Playback


@dataclass(frozen=True)
class PlaybackFinished(AriEvent):
    playback: Playback


@dataclass(frozen=True)
class ApplicationReplaced(AriEvent):
    """Another websocket took our application name: this connection no longer gets its events."""


@dataclass(frozen=True)
class UnknownEvent(AriEvent):
    """Any event type this module does not model, kept whole for logging."""

    data: Json = field(default_factory=dict)


def _optional_channel(data: Json | None) -> Channel | None:
    return Channel.from_json(data) if data else None


def _channel_fields(data: Json) -> dict[str, Any]:
    return {"channel": Channel.from_json(data["channel"])}


_FIELD_PARSERS: dict[type[AriEvent], Callable[[Json], dict[str, Any]]] = {
    StasisStart: lambda d: {**_channel_fields(d), "args": tuple(d.get("args") or ())},
    StasisEnd: _channel_fields,
    ChannelStateChange: _channel_fields,
    ChannelDestroyed: lambda d: {
        **_channel_fields(d),
        "cause": int(d.get("cause", 0)),
        "cause_txt": d.get("cause_txt", ""),
    },
    ChannelHangupRequest: lambda d: {
        **_channel_fields(d),
        "cause": d.get("cause"),
        "soft": bool(d.get("soft", False)),
    },
    ChannelDtmfReceived: lambda d: {
        **_channel_fields(d),
        "digit": d["digit"],
        "duration_ms": int(d.get("duration_ms", 0)),
    },
    ChannelEnteredBridge: lambda d: {**_channel_fields(d), "bridge": Bridge.from_json(d["bridge"])},
    ChannelLeftBridge: lambda d: {**_channel_fields(d), "bridge": Bridge.from_json(d["bridge"])},
    ChannelVarset: lambda d: {
        "variable": d["variable"],
        "value": d.get("value", ""),
        "channel": _optional_channel(d.get("channel")),
    },
    Dial: lambda d: {
        "peer": Channel.from_json(d["peer"]),
        "dialstatus": d.get("dialstatus", ""),
        "caller": _optional_channel(d.get("caller")),
        "dialstring": d.get("dialstring", ""),
    },
    BridgeDestroyed: lambda d: {"bridge": Bridge.from_json(d["bridge"])},
    PlaybackStarted: lambda d: {"playback": Playback.from_json(d["playback"])},
    PlaybackFinished: lambda d: {"playback": Playback.from_json(d["playback"])},
    ApplicationReplaced: lambda d: {},
}
_BY_NAME: dict[str, type[AriEvent]] = {cls.__name__: cls for cls in _FIELD_PARSERS}


class EventParseError(ValueError):
    """A known event type whose JSON lacks a field we rely on."""


def parse_event(data: Json) -> AriEvent:
    """Typed event for `data`; an unmodelled type becomes UnknownEvent, a malformed known one raises."""
    type_name = str(data.get("type", ""))
    common = {
        "type": type_name,
        "application": data.get("application", ""),
        "timestamp": data.get("timestamp", ""),
    }
    cls = _BY_NAME.get(type_name)
    if cls is None:
        return UnknownEvent(**common, data=data)
    try:
        return cls(**common, **_FIELD_PARSERS[cls](data))
    except (KeyError, TypeError, ValueError) as exc:
        raise EventParseError(f"malformed {type_name} event: {exc!r}") from exc
