"""ARI events recorded off the lab's Asterisk 22 parse into the typed objects the daemon reads."""

from __future__ import annotations

import pytest
from ari_fake import load_fixture

from asterisk_cb.telephony.ari_events import (
    ApplicationReplaced,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelVarset,
    Dial,
    EventParseError,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    parse_event,
)

RECORDED = load_fixture("ari_events.json")


def _first(type_name: str, **fields: object) -> dict:
    """The first recorded event of `type_name` whose top-level fields match `fields`."""
    return next(
        e for e in RECORDED if e["type"] == type_name and all(e.get(k) == v for k, v in fields.items())
    )


def test_every_recorded_event_type_has_its_class() -> None:
    classes = {
        "StasisStart": StasisStart,
        "StasisEnd": StasisEnd,
        "ChannelStateChange": ChannelStateChange,
        "ChannelDestroyed": ChannelDestroyed,
        "ChannelHangupRequest": ChannelHangupRequest,
        "ChannelVarset": ChannelVarset,
        "Dial": Dial,
        "BridgeDestroyed": BridgeDestroyed,
        "ApplicationReplaced": ApplicationReplaced,
        "ChannelDtmfReceived": ChannelDtmfReceived,
        "ChannelEnteredBridge": ChannelEnteredBridge,
        "ChannelLeftBridge": ChannelLeftBridge,
        "PlaybackStarted": PlaybackStarted,
        "PlaybackFinished": PlaybackFinished,
    }
    for data in RECORDED:
        event = parse_event(data)
        assert isinstance(event, classes.get(data["type"], UnknownEvent)), data["type"]
        assert event.application == data["application"]
    assert {e["type"] for e in RECORDED} >= set(classes)


def test_stasis_start_carries_args_and_channel() -> None:
    data = _first("StasisStart")
    event = parse_event(data)
    assert isinstance(event, StasisStart)
    assert event.args == ("agent", "cb-1")
    assert event.channel.id == data["channel"]["id"]
    assert event.channel.state == data["channel"]["state"]


def test_channel_destroyed_carries_q850_cause() -> None:
    event = parse_event(_first("ChannelDestroyed", cause=17))
    assert isinstance(event, ChannelDestroyed)
    assert (event.cause, event.cause_txt) == (17, "User busy")


def test_dial_carries_dialstatus_and_peer() -> None:
    event = parse_event(_first("Dial", dialstatus="BUSY"))
    assert isinstance(event, Dial)
    assert event.dialstatus == "BUSY"
    assert event.peer.id == "acb-rec-2"


def test_dtmf_bridge_and_playback_events() -> None:
    dtmf = parse_event(_first("ChannelDtmfReceived"))
    assert isinstance(dtmf, ChannelDtmfReceived)
    assert (dtmf.digit, dtmf.duration_ms, dtmf.channel.id) == ("5", 100, "acb-rec-4")
    entered = parse_event(_first("ChannelEnteredBridge"))
    assert isinstance(entered, ChannelEnteredBridge)
    assert (entered.bridge.id, entered.bridge.channels) == ("acb-rec-br", ("acb-rec-1",))
    finished = parse_event(_first("PlaybackFinished"))
    assert isinstance(finished, PlaybackFinished)
    assert (finished.playback.id, finished.playback.state) == ("acb-rec-pb1", "done")


def test_unmodelled_type_is_kept_whole() -> None:
    data = {"type": "ChannelDialplan", "application": "asterisk-cb", "dialplan_app": "Dial"}
    event = parse_event(data)
    assert isinstance(event, UnknownEvent)
    assert event.data == data


def test_known_type_missing_its_channel_is_refused() -> None:
    with pytest.raises(EventParseError, match="StasisStart"):
        parse_event({"type": "StasisStart", "application": "asterisk-cb"})
