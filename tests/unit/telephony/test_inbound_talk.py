"""The inbound caller's talk time, from bridge and hangup events alone (telephony.inbound_talk)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from asterisk_cb.telephony.ami_events import BridgeEnter, ChannelRef, Hangup, parse_ami_event
from asterisk_cb.telephony.inbound_talk import Talk, TalkTracker

AGENTS = {"PJSIP/1001": "1001", "PJSIP/1002": "1002"}


def agent_of(channel: str) -> str | None:
    return AGENTS.get(channel.rsplit("-", 1)[0])


CALLER = ChannelRef("100.1", "100.1", "PJSIP/contacts-00000001", "+4930123456")
AGENT1 = ChannelRef("100.2", "100.1", "PJSIP/1001-00000002", "1001")
AGENT2 = ChannelRef("100.3", "100.1", "PJSIP/1002-00000003", "1002")


def test_talk_is_bridged_time_not_answer_time() -> None:
    """The caller was answered at 0 and waited in the queue (no bridge), an announcement bridge without
    an agent counts nothing either; then it talked 25 s with the agent."""
    tracker = TalkTracker(agent_of)
    tracker.bridge_enter("b1", CALLER, 290.0)
    tracker.bridge_leave("b1", CALLER, 300.0)
    tracker.bridge_enter("b2", CALLER, 310.0)
    tracker.bridge_enter("b2", AGENT1, 310.5)
    tracker.bridge_leave("b2", AGENT1, 335.5)
    assert tracker.hangup(CALLER, 336.0) == [Talk("+4930123456", "1001", 25.0, "100.1")]


def test_nothing_for_a_caller_who_never_met_an_agent() -> None:
    tracker = TalkTracker(agent_of)
    tracker.bridge_enter("b1", CALLER, 1.0)
    assert tracker.hangup(CALLER, 50.0) == []
    assert tracker.callers == 0


def test_a_transfer_reports_each_agent_and_a_hold_does_not_count() -> None:
    tracker = TalkTracker(agent_of)
    tracker.bridge_enter("b1", AGENT1, 0.0)
    tracker.bridge_enter("b1", CALLER, 0.0)
    tracker.bridge_leave("b1", CALLER, 10.0)  # parked / on hold outside the bridge for 60 s
    tracker.bridge_enter("b1", CALLER, 70.0)
    tracker.bridge_leave("b1", AGENT1, 75.0)  # blind transfer to 1002
    tracker.bridge_enter("b1", AGENT2, 80.0)
    talks = tracker.hangup(CALLER, 100.0)
    assert sorted(talks, key=lambda t: t.agent) == [
        Talk("+4930123456", "1001", 15.0, "100.1"),
        Talk("+4930123456", "1002", 20.0, "100.1"),
    ]


def test_hangup_without_bridge_leave_closes_the_talk() -> None:
    tracker = TalkTracker(agent_of)
    tracker.bridge_enter("b1", CALLER, 0.0)
    tracker.bridge_enter("b1", AGENT1, 2.0)
    assert tracker.hangup(CALLER, 27.0) == [Talk("+4930123456", "1001", 25.0, "100.1")]
    assert tracker.hangup(AGENT1, 27.0) == []


def test_a_missed_bridge_leave_is_repaired_by_the_next_enter() -> None:
    tracker = TalkTracker(agent_of)
    tracker.bridge_enter("b1", CALLER, 0.0)
    tracker.bridge_enter("b1", AGENT1, 0.0)
    tracker.bridge_enter("b2", CALLER, 5.0)  # moved without a BridgeLeave seen
    assert tracker.hangup(CALLER, 30.0) == [Talk("+4930123456", "1001", 5.0, "100.1")]


def test_not_a_caller_the_callback_legs_and_the_agents_own_calls() -> None:
    """A callback: the agent's channel is first (originated), the contact's leg follows it."""
    tracker = TalkTracker(agent_of)
    agent_first = ChannelRef("200.1", "200.1", "PJSIP/1001-00000010", "1001")
    contact_leg = ChannelRef(
        "200.2", "200.1", "Local/+4930123456@callback-outbound-00000001;1", "+4930123456"
    )
    tracker.bridge_enter("b9", agent_first, 0.0)
    tracker.bridge_enter("b9", contact_leg, 1.0)
    assert tracker.hangup(contact_leg, 60.0) == []
    assert tracker.hangup(agent_first, 60.0) == []


def test_anonymous_callers_are_not_followed() -> None:
    tracker = TalkTracker(agent_of)
    anonymous = ChannelRef("300.1", "300.1", "PJSIP/trunk-00000001", "")
    tracker.bridge_enter("b1", anonymous, 0.0)
    tracker.bridge_enter("b1", AGENT1, 0.0)
    assert tracker.hangup(anonymous, 40.0) == []


def test_the_followed_callers_are_capped_and_forgotten_after_missed_events() -> None:
    tracker = TalkTracker(agent_of, max_callers=2)
    for n in range(5):
        tracker.bridge_enter(f"b{n}", ChannelRef(f"{n}.1", f"{n}.1", f"PJSIP/t-{n}", "555"), 0.0)
    assert tracker.callers == 2
    tracker.forget_all()
    assert tracker.callers == 0
    assert tracker.hangup(CALLER, 1.0) == []


def test_ami_headers_parse_into_channel_refs() -> None:
    event = parse_ami_event({
        "Event": "BridgeEnter", "BridgeUniqueid": "abc", "Channel": "PJSIP/contacts-00000001",
        "Uniqueid": "100.1", "Linkedid": "100.1", "CallerIDNum": "+4930123456",
    })  # fmt: skip
    assert isinstance(event, BridgeEnter)
    assert (event.bridge, event.member) == ("abc", CALLER)
    hangup = parse_ami_event({"Event": "Hangup", "Uniqueid": "100.2", "Linkedid": "100.1"})
    assert isinstance(hangup, Hangup)
    assert hangup.member == ChannelRef("100.2", "100.1", "", "")


# Random interleavings: whatever the order, the talk reported never exceeds the time the caller was
# bridged with that agent, and equals the overlap of both being in the same bridge.
_steps = st.lists(
    st.tuples(st.sampled_from(["enter", "leave"]), st.sampled_from(["caller", "a1", "a2"]),
              st.sampled_from(["b1", "b2"]), st.floats(0, 10)),
    max_size=30,
)  # fmt: skip


@given(_steps)
def test_reported_talk_equals_the_shared_bridge_time(steps: list[tuple[str, str, str, float]]) -> None:
    refs = {"caller": CALLER, "a1": AGENT1, "a2": AGENT2}
    tracker = TalkTracker(agent_of)
    where: dict[str, str | None] = dict.fromkeys(refs)
    expected = {"1001": 0.0, "1002": 0.0}
    now = 0.0
    for action, who, bridge, gap in steps:
        for agent_key, agent in (("a1", "1001"), ("a2", "1002")):
            if where["caller"] is not None and where["caller"] == where[agent_key]:
                expected[agent] += gap
        now += gap
        if action == "enter":
            tracker.bridge_enter(bridge, refs[who], now)
            where[who] = bridge
        elif where[who] is not None:
            tracker.bridge_leave(where[who] or "", refs[who], now)
            where[who] = None
    talks = {talk.agent: talk.seconds for talk in tracker.hangup(CALLER, now)}
    for agent, seconds in expected.items():
        assert abs(talks.get(agent, 0.0) - seconds) < 1e-6
