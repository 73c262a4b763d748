"""Recorded ARI events parse into the typed objects the daemon reads; bad input is refused clearly."""

from __future__ import annotations

import pytest
from ari_fake import load_fixture

from asterisk_cb.telephony.ari_events import (
    ApplicationReplaced,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelHangupRequest,
    ChannelStateChange,
    ChannelVarset,
    DeviceStateChanged,
    Dial,
    EventParseError,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    parse_event,
)


def _events_by_type() -> dict[str, dict]:
    return {event["type"]: event for event in load_fixture("ari_events.json")}


def test_every_recorded_event_type_has_its_class() -> None:
    classes = {
        "StasisStart": StasisStart,
        "StasisEnd": StasisEnd,
        "ChannelStateChange": ChannelStateChange,
        "ChannelDestroyed": ChannelDestroyed,
        "ChannelHangupRequest": ChannelHangupRequest,
        "ChannelVarset": ChannelVarset,
        "Dial": Dial,
        "DeviceStateChanged": DeviceStateChanged,
        "BridgeDestroyed": BridgeDestroyed,
        "ApplicationReplaced": ApplicationReplaced,
    }
    for type_name, data in _events_by_type().items():
        event = parse_event(data)
        assert isinstance(event, classes[type_name]), type_name
        assert event.application == data["application"]


def test_stasis_start_carries_args_and_channel() -> None:
    data = _events_by_type()["StasisStart"]
    event = parse_event(data)
    assert isinstance(event, StasisStart)
    assert event.args == tuple(data["args"])
    assert event.channel.id == data["channel"]["id"]
    assert event.channel.state == data["channel"]["state"]


def test_channel_destroyed_carries_q850_cause() -> None:
    data = _events_by_type()["ChannelDestroyed"]
    event = parse_event(data)
    assert isinstance(event, ChannelDestroyed)
    assert (event.cause, event.cause_txt) == (data["cause"], data["cause_txt"])


def test_dial_carries_dialstatus_and_peer() -> None:
    data = _events_by_type()["Dial"]
    event = parse_event(data)
    assert isinstance(event, Dial)
    assert event.dialstatus == data["dialstatus"]
    assert event.peer.id == data["peer"]["id"]


def test_device_state_changed() -> None:
    event = parse_event(_events_by_type()["DeviceStateChanged"])
    assert isinstance(event, DeviceStateChanged)
    assert event.device_state.name.startswith("PJSIP/")


def test_unmodelled_type_is_kept_whole() -> None:
    data = {"type": "PlaybackFinished", "application": "asterisk-cb", "playback": {"id": "p1"}}
    event = parse_event(data)
    assert isinstance(event, UnknownEvent)
    assert event.data == data


def test_known_type_missing_its_channel_is_refused() -> None:
    with pytest.raises(EventParseError, match="StasisStart"):
        parse_event({"type": "StasisStart", "application": "asterisk-cb"})
