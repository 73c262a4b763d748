"""The contact calls in first: which talks settle a callback (settings), what settling does (lifecycle),
and the settings that steer it."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest
from lifecycle_paths import CELLS, SETTINGS, T0, scheduled_agent, scheduled_queue

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle as lc
from asterisk_cb.core import settings as cfg
from asterisk_cb.core.codec import callback_from_fields, callback_to_fields
from asterisk_cb.core.model import EventKind, FinishReason, State

NOW = T0 + timedelta(minutes=3)
OWNER = "1001"  # the agent of lifecycle_paths' callbacks


@pytest.mark.parametrize("cell", [scheduled_agent, scheduled_queue])
def test_a_scheduled_callback_completes_with_who_and_how_long(cell: object) -> None:
    before = cell()  # type: ignore[operator]
    transition = lc.step(before, ev.ContactCalledIn(OWNER, 25), NOW, SETTINGS)
    after = transition.callback
    assert (after.state, after.finish_reason) == (State.COMPLETED, FinishReason.CONTACT_CALLED_IN)
    assert (after.called_in_agent, after.called_in_talk_s, after.finished_at) == (OWNER, 25, NOW)
    assert after.next_at is None and after.phase is before.phase and after.attempts == before.attempts
    assert transition.effects == (), "nothing is dialled, nothing is waited for"
    [event] = transition.events
    assert event.kind is EventKind.COMPLETED
    assert event.attributes == {"reason": "contact_called_in", "agent": OWNER, "talk_s": "25"}


@pytest.mark.parametrize("cell", [name for name, make in CELLS.items() if not name.startswith("scheduled")])
def test_a_callback_whose_call_lives_or_that_is_finished_is_never_touched(cell: str) -> None:
    before = CELLS[cell]()
    with pytest.raises(lc.IllegalTransition) as raised:
        lc.step(before, ev.ContactCalledIn(OWNER, 600), NOW, SETTINGS)
    assert not isinstance(raised.value, lc.ChangeRefused), "not a person's change"


def test_the_agent_is_checked_like_any_agent_id() -> None:
    with pytest.raises(lc.rules.ValidationError):
        lc.step(scheduled_agent(), ev.ContactCalledIn("10 01", 25), NOW, SETTINGS)
    with pytest.raises(ValueError, match="negative"):
        ev.ContactCalledIn(OWNER, -1)


def test_the_record_round_trips_through_the_codec() -> None:
    after = lc.step(scheduled_agent(), ev.ContactCalledIn(OWNER, 25), NOW, SETTINGS).callback
    assert callback_from_fields(callback_to_fields(after)) == after
    assert "cia" not in callback_to_fields(scheduled_agent()), "nothing stored while it is not settled"


@pytest.mark.parametrize(
    ("agent", "talk_s", "changes", "settles"),
    [
        (OWNER, 20, {}, True),  # exactly the minimum
        (OWNER, 19, {}, False),
        ("1002", 600, {}, False),  # another agent: the owner's callback stays
        ("1002", 20, {"call_in_agent": cfg.CallInAgent.ANY}, True),
        (OWNER, 600, {"on_call_in": cfg.OnCallIn.IGNORE}, False),
        ("1002", 600, {"on_call_in": cfg.OnCallIn.IGNORE, "call_in_agent": cfg.CallInAgent.ANY}, False),
        (OWNER, 0, {"call_in_min_talk": timedelta(0)}, True),
        (OWNER, 59, {"call_in_min_talk": timedelta(minutes=1)}, False),
    ],
)
def test_which_talks_settle(agent: str, talk_s: int, changes: dict[str, object], settles: bool) -> None:
    settings = replace(SETTINGS, **changes)  # type: ignore[arg-type]
    assert lc.call_in_settles(scheduled_agent(), ev.ContactCalledIn(agent, talk_s), settings) is settles


# ---- settings -----------------------------------------------------------------------------------


def _general(text: str) -> cfg.Settings:
    origin = cfg.Origin(cfg.OriginKind.FILE, "general", "cb.conf", 2)
    layer = {
        option: cfg.parse_value(option, value, origin)
        for option, _, value in (line.partition(" = ") for line in text.splitlines())
    }
    return cfg.resolve(cfg.SettingsFile({"general": layer}, {}), {})


def test_call_in_defaults() -> None:
    settings = cfg.Settings()
    assert settings.on_call_in is cfg.OnCallIn.COMPLETE
    assert settings.call_in_agent is cfg.CallInAgent.OWNER
    assert settings.call_in_min_talk == timedelta(seconds=20)
    assert (settings.call_in_priority, settings.call_in_caller_id_prefix) == (0, "")


def test_call_in_values_parse_typed() -> None:
    settings = _general(
        "on_call_in = Ignore\ncall_in_agent = any\ncall_in_min_talk = 1m\n"
        "call_in_priority = 7\ncall_in_caller_id_prefix = CB:"
    )
    assert (settings.on_call_in, settings.call_in_agent) == (cfg.OnCallIn.IGNORE, cfg.CallInAgent.ANY)
    assert (settings.call_in_min_talk, settings.call_in_priority) == (timedelta(minutes=1), 7)
    assert settings.call_in_caller_id_prefix == "CB:"


def test_call_in_values_override_by_scope_at_run_time() -> None:
    runtime = cfg.runtime_layers({"agent/1001": {"call_in_agent": "any", "on_call_in": "ignore"}})
    assert not runtime.refused
    file = cfg.SettingsFile({}, {})
    assert cfg.resolve(file, runtime.layers, "1001").call_in_agent is cfg.CallInAgent.ANY
    assert cfg.resolve(file, runtime.layers, "1002").call_in_agent is cfg.CallInAgent.OWNER
    origins = {line.option: str(line.origin) for line in cfg.explain(file, runtime.layers, "1001")}
    assert origins["on_call_in"] == "runtime override [agent/1001]"
    assert origins["call_in_min_talk"] == "default"


@pytest.mark.parametrize(
    ("option", "text", "reason"),
    [
        ("on_call_in", "sometimes", "is not one of complete, ignore"),
        ("call_in_agent", "team", "is not one of owner, any"),
        ("call_in_min_talk", "2h", "outside 0s..1h"),
        ("call_in_min_talk", "-5s", "is not a duration"),
        ("call_in_priority", "1001", "outside 0..1000"),
        ("call_in_priority", "-1", "not a whole number"),
        ("call_in_caller_id_prefix", "CB,1", "dial strings"),
        ("call_in_caller_id_prefix", 'say "hi"', "dial strings"),
        ("call_in_caller_id_prefix", "x" * 21, "at most 20"),
    ],
)
def test_bad_call_in_values_are_refused_naming_the_option(option: str, text: str, reason: str) -> None:
    origin = cfg.Origin(cfg.OriginKind.FILE, "general", "cb.conf", 3)
    with pytest.raises(cfg.SettingError, match=re.escape(reason)) as raised:
        cfg.parse_value(option, text, origin)
    assert str(raised.value).startswith(f"cb.conf:3 [general]: {option}: ")
