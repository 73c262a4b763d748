"""What ARI events and channel snapshots mean for a live callback (the executor's pure half).

Callbacks are brought into each state by the real lifecycle; events have the shapes the lab's
Asterisk 22 sent (see asterisk_cb/telephony/progress.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from asterisk_cb.core import inputs as ev
from asterisk_cb.core import lifecycle
from asterisk_cb.core.model import Callback, LegRole, Outcome, State
from asterisk_cb.core.settings import Settings
from asterisk_cb.telephony.ari_events import AriEvent, Channel, parse_event
from asterisk_cb.telephony.progress import (
    LegWatch,
    Screen,
    marked_channels,
    reconcile,
    resume_inputs,
    watched_channels,
)

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SETTINGS = Settings()


def _callback_in(state: State) -> Callback:
    request = lifecycle.NewCallback("0612345678", "1001", NOW + timedelta(minutes=1), "test")
    callback = lifecycle.create(request, "acb-t1", NOW, SETTINGS).callback
    path: list[ev.Input] = [ev.Due(), ev.AgentAnswered(), ev.ContactAnswered()]
    steps = {State.AGENT_RINGING: 1, State.CONTACT_RINGING: 2, State.IN_PROGRESS: 3}[state]
    for happening in path[:steps]:
        callback = lifecycle.step(callback, happening, NOW + timedelta(minutes=1), SETTINGS).callback
    assert callback.state is state
    return callback


def _ids(callback: Callback) -> tuple[str, str]:
    attempt = callback.current_attempt
    assert attempt is not None
    by_role = {role: channel for channel, role in watched_channels(attempt).items()}
    return by_role[LegRole.AGENT], by_role[LegRole.CONTACT]


def _channel(channel_id: str, state: str = "Ringing") -> dict[str, Any]:
    return {"id": channel_id, "name": f"PJSIP/x-{channel_id}", "state": state}


def _event(kind: str, channel_id: str, state: str = "Ringing", **extra: Any) -> AriEvent:
    data: dict[str, Any] = {"type": kind, "application": "asterisk-cb", "timestamp": "t"}
    if kind == "Dial":
        data["peer"] = _channel(channel_id, state)
    else:
        data["channel"] = _channel(channel_id, state)
    return parse_event({**data, **extra})


def test_the_agent_answers_when_its_channel_enters_the_app() -> None:
    callback = _callback_in(State.AGENT_RINGING)
    agent, _ = _ids(callback)
    assert LegWatch().interpret(callback, _event("ChannelStateChange", agent, "Up")) is None
    assert LegWatch().interpret(callback, _event("StasisStart", agent, "Up")) == ev.AgentAnswered(
        ev.LegInfo(uniqueid=agent)
    )


@pytest.mark.parametrize(
    ("cause", "dialstatus", "before", "outcome"),
    [
        (19, "", "NOT_INUSE", Outcome.AGENT_NO_ANSWER),
        (21, "NOANSWER", "NOT_INUSE", Outcome.AGENT_REJECTED),
        (17, "BUSY", "NOT_INUSE", Outcome.AGENT_REJECTED),
        (17, "BUSY", "INUSE", Outcome.AGENT_BUSY),
    ],
)
def test_an_unanswered_agent_ring_is_a_miss_with_its_cause(
    cause: int, dialstatus: str, before: str, outcome: Outcome
) -> None:
    callback = _callback_in(State.AGENT_RINGING)
    agent, _ = _ids(callback)
    watch = LegWatch(device_state_before={agent: before})
    if dialstatus:
        assert watch.interpret(callback, _event("Dial", agent, dialstatus=dialstatus)) is None
    missed = watch.interpret(callback, _event("ChannelDestroyed", agent, cause=cause))
    assert missed == ev.AgentMissed(outcome, ev.LegInfo(hangup_cause=cause, uniqueid=agent))


def test_the_contact_answers_when_its_local_channel_turns_up_not_when_it_enters_the_app() -> None:
    callback = _callback_in(State.CONTACT_RINGING)
    _, contact = _ids(callback)
    watch = LegWatch()
    assert watch.interpret(callback, _event("StasisStart", contact, "Down")) is None
    assert watch.interpret(callback, _event("ChannelStateChange", contact, "Ringing")) is None
    answered = watch.interpret(callback, _event("ChannelStateChange", contact, "Up"))
    assert answered == ev.ContactAnswered(ev.LegInfo(uniqueid=contact))


def test_with_amd_an_answer_is_screened_and_the_verdict_decides() -> None:
    """Measured: the contact's ;1 turns Up, leaves the app for AMD, and comes back with the verdict."""
    callback = _callback_in(State.CONTACT_RINGING)
    _, contact = _ids(callback)
    watch, info = LegWatch(screen_answers=True), ev.LegInfo(uniqueid=contact)
    assert watch.interpret(callback, _event("ChannelStateChange", contact, "Up")) == Screen(info)
    assert watch.interpret(callback, _event("StasisEnd", contact, "Up")) is None

    def back(*args: str) -> object:
        return watch.interpret(callback, _event("StasisStart", contact, "Up", args=["amd", *args]))

    assert back("MACHINE", "LONGGREETING-1500-1500") == ev.ContactFailed(Outcome.MACHINE, info)
    assert back("HUMAN", "HUMAN-800-800") == ev.ContactAnswered(info)
    assert back("NOTSURE", "TOOLONG-5000") == ev.ContactAnswered(info)  # doubt connects
    assert watch.interpret(callback, _event("StasisStart", contact, "Up", args=["contact"])) is None


def test_with_amd_a_contact_hanging_up_during_amd_is_a_failed_attempt() -> None:
    callback = _callback_in(State.CONTACT_RINGING)
    _, contact = _ids(callback)
    watch = LegWatch(screen_answers=True)
    assert watch.interpret(callback, _event("Dial", contact, "Up", dialstatus="ANSWER")) is None
    ended = watch.interpret(callback, _event("ChannelDestroyed", contact, "Up", cause=16))
    assert ended == ev.ContactFailed(Outcome.FAILED, ev.LegInfo(hangup_cause=16, uniqueid=contact))


def test_with_amd_reconcile_leaves_a_contact_in_amd_to_it_and_screens_one_in_the_app() -> None:
    dialling = _callback_in(State.CONTACT_RINGING)
    agent, contact = _ids(dialling)
    in_amd = {agent: Channel(agent, "x", "Up"), contact: Channel(contact, "x", "Up", app_name="AMD")}
    in_app = {agent: Channel(agent, "x", "Up"), contact: Channel(contact, "x", "Up", app_name="Stasis")}
    assert reconcile(dialling, in_amd, screen=True) is None
    assert reconcile(dialling, in_app, screen=True) == Screen(ev.LegInfo(uniqueid=contact))
    assert reconcile(dialling, in_amd) == ev.ContactAnswered(ev.LegInfo(uniqueid=contact))


@pytest.mark.parametrize(
    ("cause", "outcome"),
    [(17, Outcome.BUSY), (19, Outcome.NO_ANSWER), (21, Outcome.REJECTED), (1, Outcome.UNALLOCATED)],
)
def test_a_contact_leg_that_ends_unanswered_fails_with_its_cause(cause: int, outcome: Outcome) -> None:
    callback = _callback_in(State.CONTACT_RINGING)
    _, contact = _ids(callback)
    failed = LegWatch().interpret(callback, _event("ChannelDestroyed", contact, cause=cause))
    assert failed == ev.ContactFailed(outcome, ev.LegInfo(hangup_cause=cause, uniqueid=contact))


def test_the_agent_hanging_up_while_the_contact_rings() -> None:
    callback = _callback_in(State.CONTACT_RINGING)
    agent, _ = _ids(callback)
    hung_up = LegWatch().interpret(callback, _event("ChannelDestroyed", agent, "Up", cause=16))
    assert isinstance(hung_up, ev.AgentHungUp)


@pytest.mark.parametrize("side", [0, 1])
def test_either_side_hanging_up_during_the_talk_ends_the_call(side: int) -> None:
    callback = _callback_in(State.IN_PROGRESS)
    channel = _ids(callback)[side]
    ended = LegWatch().interpret(callback, _event("ChannelDestroyed", channel, "Up", cause=16))
    assert ended == ev.CallEnded(ev.LegInfo(hangup_cause=16, uniqueid=channel))


def test_events_of_other_channels_and_unexpected_events_mean_nothing() -> None:
    ringing = _callback_in(State.AGENT_RINGING)
    agent, contact = _ids(ringing)
    watch = LegWatch()
    assert watch.interpret(ringing, _event("ChannelDestroyed", "someone-else", cause=16)) is None
    assert watch.interpret(ringing, _event("StasisEnd", agent, "Up")) is None
    talking = _callback_in(State.IN_PROGRESS)
    assert watch.interpret(talking, _event("StasisStart", contact, "Up")) is None


def _alive(*channels: tuple[str, str]) -> dict[str, Channel]:
    return {channel_id: Channel(channel_id, "x", state) for channel_id, state in channels}


@pytest.mark.parametrize("state", [State.AGENT_RINGING, State.CONTACT_RINGING, State.IN_PROGRESS])
def test_reconcile_every_channel_gone_is_a_lost_call(state: State) -> None:
    assert reconcile(_callback_in(state), _alive(("unrelated", "Up"))) == ev.CallLost()


def test_reconcile_finds_what_happened_while_nobody_watched() -> None:
    ringing = _callback_in(State.AGENT_RINGING)
    agent, contact = _ids(ringing)
    assert reconcile(ringing, _alive((agent, "Ringing"))) is None
    assert reconcile(ringing, _alive((agent, "Up"))) == ev.AgentAnswered(ev.LegInfo(uniqueid=agent))
    dialling = _callback_in(State.CONTACT_RINGING)
    assert reconcile(dialling, _alive((agent, "Up"), (contact, "Ringing"))) is None
    assert reconcile(dialling, _alive((agent, "Up"), (contact, "Up"))) == ev.ContactAnswered(
        ev.LegInfo(uniqueid=contact)
    )
    assert reconcile(dialling, _alive((contact, "Ringing"))) == ev.AgentHungUp()
    # answered, then the agent hung up, all unseen: the answer first (CallEnded follows on the next look)
    assert reconcile(dialling, _alive((contact, "Up"))) == ev.ContactAnswered(ev.LegInfo(uniqueid=contact))
    assert reconcile(dialling, _alive((agent, "Up"))) == ev.CallLost()
    talking = _callback_in(State.IN_PROGRESS)
    assert reconcile(talking, _alive((agent, "Up"), (contact, "Up"))) is None
    assert reconcile(talking, _alive((agent, "Up"))) == ev.CallEnded()


def test_reconciled_inputs_are_ones_the_lifecycle_takes() -> None:
    """Whatever reconcile says must be a legal step from the state it looked at."""
    for state in (State.AGENT_RINGING, State.CONTACT_RINGING, State.IN_PROGRESS):
        callback = _callback_in(state)
        agent, contact = _ids(callback)
        for alive in (
            _alive(),
            _alive((agent, "Up")),
            _alive((contact, "Up")),
            _alive((agent, "Up"), (contact, "Up")),
        ):
            happening = reconcile(callback, alive)
            if happening is not None:
                lifecycle.step(callback, happening, NOW + timedelta(minutes=2), SETTINGS)


def test_taking_over_follows_live_channels_and_never_redials() -> None:
    ringing = _callback_in(State.AGENT_RINGING)
    agent, _ = _ids(ringing)
    assert resume_inputs(ringing, _alive((agent, "Ringing"))) == (ev.CallResumed(),)
    assert resume_inputs(ringing, _alive()) == (ev.CallLost(),)
    talking = _callback_in(State.IN_PROGRESS)
    agent, contact = _ids(talking)
    assert resume_inputs(talking, _alive((agent, "Up"), (contact, "Up"))) == (ev.CallResumed(),)
    assert resume_inputs(talking, _alive((contact, "Up"))) == (ev.CallResumed(),)  # reconcile ends it


def test_taking_over_a_contact_leg_that_may_never_have_been_dialled_counts_it_lost() -> None:
    dialling = _callback_in(State.CONTACT_RINGING)
    agent, contact = _ids(dialling)
    assert resume_inputs(dialling, _alive((agent, "Up"), (contact, "Ringing"))) == (ev.CallResumed(),)
    assert resume_inputs(dialling, _alive((agent, "Up"), (contact, "Down"))) == (ev.CallLost(),)
    assert resume_inputs(dialling, _alive((agent, "Up"))) == (ev.CallLost(),)
    lost = lifecycle.step(dialling, ev.CallLost(), NOW + timedelta(minutes=2), SETTINGS)
    assert lost.callback.agent_attempts == 1  # counted, so the contact's rings stay bounded
    assert contact in next(e for e in lost.effects if type(e).__name__ == "HangUp").channel_ids


def test_an_answer_asterisk_recorded_while_nobody_watched_is_the_answer_then_the_end() -> None:
    """The contact answered and the call ended before the take-over: completed, never a lost ring."""
    dialling = _callback_in(State.CONTACT_RINGING)
    agent, contact = _ids(dialling)
    for alive in (_alive(), _alive((agent, "Up"))):  # the agent may still be there, alone
        inputs = resume_inputs(dialling, alive, answered={contact})
        assert inputs == (ev.ContactAnswered(ev.LegInfo(uniqueid=contact)), ev.CallEnded())
        callback = dialling
        for happening in inputs:
            callback = lifecycle.step(callback, happening, NOW + timedelta(minutes=2), SETTINGS).callback
        assert (callback.state, callback.agent_attempts) == (State.COMPLETED, 0)
    # a mark of a leg still there changes nothing: the leg is followed, its events tell the rest
    assert resume_inputs(dialling, _alive((agent, "Up"), (contact, "Up")), answered={contact}) == (
        ev.CallResumed(),
    )
    assert resume_inputs(dialling, _alive(), answered={agent}) == (ev.CallLost(),)  # agent legs: no mark


def test_the_answers_recorded_are_the_contacts_in_the_agent_phase() -> None:
    agent, contact = _ids(_callback_in(State.CONTACT_RINGING))
    attempt = _callback_in(State.CONTACT_RINGING).current_attempt
    assert attempt is not None
    assert marked_channels(attempt) == {contact: LegRole.CONTACT}
    assert agent not in marked_channels(attempt)
