"""The availability rules, on hand-made state and on AMI events recorded off the lab's Asterisk."""

from __future__ import annotations

from ami_fake import block_headers, transcript_blocks
from hypothesis import given
from hypothesis import strategies as st

from asterisk_cb.telephony.ami_events import QueueMember, parse_ami_event
from asterisk_cb.telephony.availability import ON_A_CALL, READY, AgentSpec, AvailabilityView, Reason
from asterisk_cb.telephony.availability_feed import apply_ami_event

NOW = 1_800_000_000.0
STATES = sorted(ON_A_CALL | {READY, "UNAVAILABLE", "INVALID", "UNKNOWN"})


def _member(queue: str = "support", interface: str = "PJSIP/1001", **fields: object) -> QueueMember:
    values: dict = {
        "queue": queue,
        "interface": interface,
        "state_interface": interface,
        "member_name": interface,
        "device_state": READY,
        "paused": False,
    }
    return QueueMember(**(values | fields))


def _view(*specs: AgentSpec, **states: str) -> AvailabilityView:
    view = AvailabilityView.of(specs)
    view.replace_device_states((f"PJSIP/{name.removeprefix('d')}", state) for name, state in states.items())
    return view


def _replay_blocks(view: AvailabilityView, blocks: list[str]) -> None:
    for block in blocks:
        event = parse_ami_event(block_headers(block))
        if event is not None:
            apply_ami_event(view, event)


def test_unknown_agent() -> None:
    assert _view().check("1001", NOW).reason is Reason.UNKNOWN_AGENT


def test_registered_idle_phone_is_available_and_rung() -> None:
    result = _view(AgentSpec("1001", devices=("PJSIP/1001",)), d1001="NOT_INUSE").check("1001", NOW)
    assert result.available
    assert result.ring == ("PJSIP/1001",)


def test_unregistered_or_never_seen_phone_is_offline() -> None:
    spec = AgentSpec("1001", devices=("PJSIP/1001",))
    assert _view(spec, d1001="UNAVAILABLE").check("1001", NOW).reason is Reason.OFFLINE
    result = _view(spec).check("1001", NOW)
    assert (result.reason, result.detail) == (Reason.OFFLINE, "no device ready (PJSIP/1001 UNKNOWN)")


def test_on_a_call_ringing_or_holding_is_busy() -> None:
    spec = AgentSpec("1001", devices=("PJSIP/1001",))
    for state in ("INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD"):
        result = _view(spec, d1001=state).check("1001", NOW)
        assert (result.reason, result.detail) == (Reason.BUSY, f"PJSIP/1001 is {state}")


def test_several_devices_ring_all_ready_ones_but_any_call_makes_busy() -> None:
    spec = AgentSpec("a", devices=("PJSIP/1001", "PJSIP/1002", "PJSIP/1003"))
    result = _view(spec, d1001="NOT_INUSE", d1002="UNAVAILABLE", d1003="NOT_INUSE").check("a", NOW)
    assert result.ring == ("PJSIP/1001", "PJSIP/1003")
    assert _view(spec, d1001="NOT_INUSE", d1002="INUSE").check("a", NOW).reason is Reason.BUSY


def test_pause_blocks_only_in_the_queues_named_for_the_agent() -> None:
    named = AgentSpec("1001", devices=("PJSIP/1001",), queues=("support",))
    view = _view(named, d1001="NOT_INUSE")
    view.set_member(_member("sales", paused=True, paused_reason="lunch"))
    assert view.check("1001", NOW).available
    view.set_member(_member("support", paused=True, paused_reason="lunch"))
    result = view.check("1001", NOW)
    assert (result.reason, result.detail) == (Reason.PAUSED, "paused in queue support (lunch)")


def test_memberships_of_an_agent_by_phone_or_member_name() -> None:
    view = AvailabilityView.of(
        [AgentSpec("1001", devices=("PJSIP/1001",)), AgentSpec("2001", member_name="bob")]
    )
    view.set_member(_member("support"))
    view.set_member(_member("sales", interface="Local/2001@agents/n", member_name="bob"))
    view.set_member(_member("sales", interface="PJSIP/1002"))
    assert [(m.queue, m.interface) for m in view.memberships_of("1001")] == [("support", "PJSIP/1001")]
    assert [(m.queue, m.interface) for m in view.memberships_of("2001")] == [("sales", "Local/2001@agents/n")]
    assert view.memberships_of("nobody") == []


def test_pause_in_any_queue_blocks_when_none_is_named() -> None:
    view = _view(AgentSpec("1001", devices=("PJSIP/1001",)), d1001="NOT_INUSE")
    view.set_member(_member("sales", paused=True))
    assert view.check("1001", NOW).reason is Reason.PAUSED


def test_wrap_up_after_a_queue_call_and_after_a_callback() -> None:
    view = _view(AgentSpec("1001", devices=("PJSIP/1001",), wrapup_s=30), d1001="NOT_INUSE")
    view.set_member(_member(last_call=int(NOW) - 10))
    result = view.check("1001", NOW)
    assert (result.reason, result.detail) == (Reason.WRAP_UP, "in wrap-up for 20 s more")
    assert view.check("1001", NOW + 21).available
    view.start_wrap_up("1001", NOW + 60)
    assert view.check("1001", NOW + 59).reason is Reason.WRAP_UP
    assert view.check("1001", NOW + 61).available


def test_hot_desking_agent_from_recorded_queue_events() -> None:
    """Recorded: agent-2001 added as Local/2001@acb-rec/n watching Custom:acb-agent2001, set idle,
    paused and unpaused (reason callback), set in use, then removed."""
    view = AvailabilityView.of([AgentSpec("2001", member_name="agent-2001")])
    assert view.check("2001", NOW).reason is Reason.NO_DEVICE
    blocks = transcript_blocks("ami_queue.txt")
    cut = next(i for i, b in enumerate(blocks) if "Message: Interface paused successfully" in b)
    _replay_blocks(view, blocks[:cut])
    result = view.check("2001", NOW)
    assert result.ring == ("Local/2001@acb-rec/n",)
    assert view.watched_devices() == ["Custom:acb-agent2001"]
    _replay_blocks(view, blocks[cut : cut + 4])
    assert view.check("2001", NOW).detail == "paused in queue support (callback)"
    _replay_blocks(view, blocks[cut + 4 :])
    assert view.check("2001", NOW).reason is Reason.NO_DEVICE  # removed from the queue at the end


def test_agent_pool_login_gives_the_phone_and_logoff_takes_it_away() -> None:
    view = AvailabilityView.of([AgentSpec("alice", pool_agent="1001")])
    blocks = transcript_blocks("ami_agent_pool.txt")
    logoff = next(i for i, b in enumerate(blocks) if b.startswith("Event: AgentLogoff"))
    _replay_blocks(view, blocks[:logoff])
    view.set_device_state("Local/agentlogin@acb-rec", "NOT_INUSE")
    assert view.check("alice", NOW).ring == ("Local/agentlogin@acb-rec",)
    _replay_blocks(view, blocks[logoff:])
    assert view.check("alice", NOW).reason is Reason.NO_DEVICE


def test_seed_replaces_what_a_lost_connection_left_behind() -> None:
    view = _view(AgentSpec("1001", devices=("PJSIP/1001",)), d1001="INUSE")
    view.set_member(_member("support", paused=True))
    view.replace_device_states([("PJSIP/1001", "NOT_INUSE")])
    view.replace_members([_member("support")])
    assert view.check("1001", NOW).available


@given(st.lists(st.sampled_from(STATES), min_size=1, max_size=4))
def test_available_means_every_rung_device_idle_and_none_on_a_call(states: list[str]) -> None:
    devices = tuple(f"PJSIP/{1001 + i}" for i in range(len(states)))
    view = AvailabilityView.of([AgentSpec("a", devices=devices)])
    view.replace_device_states(zip(devices, states, strict=True))
    result = view.check("a", NOW)
    if result.available:
        assert result.ring
        assert all(view.device_states[d] == READY for d in result.ring)
        assert not set(states) & ON_A_CALL
    else:
        assert result.ring == ()
        assert (result.reason is Reason.BUSY) == bool(set(states) & ON_A_CALL)


def test_agent_at_finds_the_owner_of_a_phone() -> None:
    """A feature code keyed on a channel finds its agent: fixed phones, a hot-desker's current phone."""
    view = _view(
        AgentSpec("1001", devices=("PJSIP/1001", "PJSIP/1011")),
        AgentSpec("alice", member_name="Alice"),
        AgentSpec("1003", devices=("PJSIP/shared",)),
        AgentSpec("1004", devices=("PJSIP/shared",)),
    )
    view.set_member(_member(interface="PJSIP/1002", member_name="Alice"))
    assert view.agent_at("PJSIP/1011") == "1001"
    assert view.agent_at("PJSIP/1002") == "alice"
    assert view.agent_at("PJSIP/shared") is None  # two agents: nobody's for sure
    assert view.agent_at("PJSIP/9999") is None
