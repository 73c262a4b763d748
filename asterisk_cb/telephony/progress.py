"""What an ARI event, or a fresh look at the channels, means for a live callback: a lifecycle input.

Pure: the executor feeds events in and applies the inputs that come out; nothing here talks to
Asterisk or Redis, so every case is unit-tested with recorded event shapes.

Which event means what (measured on the lab's Asterisk 22):

* the agent leg is originated into our Stasis app: it enters the app (StasisStart) only once answered;
  it ends unanswered with ChannelDestroyed (cause 19 when ARI's ring timeout expires).
* the contact leg is a Local channel created in the app before it is dialled, so its StasisStart means
  nothing; its half ``;1`` turns Up when the far end answers; ChannelDestroyed carries the far end's
  cause because the outbound dialplan ends with ``Hangup(${HANGUPCAUSE})``.
* a Dial event may come before the end with its own status (BUSY, NOANSWER...): remembered per channel.
* queue phase: once the contact answered, a second Local channel ``Local/<queue>@<queue context>/n``
  (id ``queue_channel``) is created in the app and bridged with it; its dialplan half runs Queue(),
  which answers it only when a member takes the call: its ``;1`` turning Up is the member's answer,
  its end before that is the queue giving up (the context ends with ``Hangup(19)`` after Queue()).
* answering machine detection (setting ``amd``): the contact's ``;1`` turning Up is not yet an answer
  but ``Screen``: the executor sends that half out of the app into the AMD context (StasisEnd, it
  leaves the agent's bridge; the agent keeps hearing ringback). AMD() listens to the contact's side
  and Stasis() brings the half back: StasisStart with args ``amd,<AMDSTATUS>,<AMDCAUSE>``. MACHINE is
  ``ContactFailed(MACHINE)``; HUMAN and NOTSURE are the answer. Our app stays subscribed to the channel
  while it is out: a contact hanging up during AMD is its ChannelDestroyed (cause 16), a failed attempt.

Events the callback's state does not expect (a late event for a channel already dealt with, our own
hang-up after the outcome was recorded) yield no input.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from asterisk_cb.core import inputs as ev
from asterisk_cb.core.model import ARI_ID_PREFIX, Attempt, Callback, LegRole, Outcome, Phase, State
from asterisk_cb.telephony.ari_events import (
    AriEvent,
    Channel,
    ChannelDestroyed,
    ChannelEvent,
    ChannelStateChange,
    Dial,
    StasisStart,
)
from asterisk_cb.telephony.legs import LegEnd, agent_outcome, contact_outcome

UP = "Up"
DOWN = "Down"
AMD_ARG = "amd"  # first Stasis() argument of a contact leg back from the AMD context
AMD_APP = "AMD"  # the dialplan application a channel runs while AMD listens
MACHINE = "MACHINE"  # AMDSTATUS of a machine (the others: HUMAN, NOTSURE, HANGUP)


@dataclass(frozen=True)
class Screen:
    """The contact answered and ``amd`` is on: before the lifecycle hears of the answer, the executor
    sends the leg through AMD (``executor._screen``); its verdict comes back as a StasisStart."""

    leg: ev.LegInfo


def leg_channel(attempt: Attempt, role: LegRole) -> str | None:
    """The ARI channel id we chose for the attempt's ``role`` leg (the Local ``;1`` for the contact)."""
    leg = attempt.leg(role)
    return leg.channel_id if leg else None


def queue_channel_id(attempt_id: str) -> str:
    """Queue phase: the id of the Local channel that waits in the failover queue for the contact.
    Derived from the attempt id, which is on record before anything is dialled, so a resumer finds it."""
    return f"{ARI_ID_PREFIX}{attempt_id}-queue"


def queue_channel(attempt: Attempt) -> str | None:
    return queue_channel_id(attempt.id) if attempt.phase is Phase.QUEUE else None


def watched_channels(attempt: Attempt) -> dict[str, LegRole]:
    """The channels whose events move the attempt forward, by id: every agent ring (one per device
    while they ring, the one that answered after), the contact, and the queue's Local channel, which
    stands for the member (it is answered when a member answers)."""
    watched = {
        leg.channel_id: leg.role
        for leg in attempt.legs
        if leg.role in (LegRole.AGENT, LegRole.CONTACT) and leg.channel_id is not None
    }
    if (waiting := queue_channel(attempt)) is not None:
        watched[waiting] = LegRole.MEMBER
    return watched


def _event_channel(event: AriEvent) -> Channel | None:
    if isinstance(event, ChannelEvent):
        return event.channel
    if isinstance(event, Dial):
        return event.peer
    return None


# Several of the agent's devices rang and none answered: the agent's outcome is the first of these any
# ring ended with. Busy first: a device that was already on a call means the agent is busy, which
# only re-checks later and burns no missed ring. Then a ring left to time out (the agent was away),
# then a decline (every phone that rang was declined, or the rest failed), then failures.
_MISS_PRECEDENCE = (Outcome.AGENT_BUSY, Outcome.AGENT_NO_ANSWER, Outcome.AGENT_REJECTED, Outcome.AGENT_FAILED)


def combined_miss(misses: Sequence[ev.AgentMissed]) -> ev.AgentMissed:
    """The agent's miss when every one of its rings ended unanswered (one ring: that ring's miss),
    with the leg details of the first ring that ended that way."""
    return min(misses, key=lambda missed: _MISS_PRECEDENCE.index(missed.outcome))


@dataclass
class LegWatch:
    """Follows the legs of one live callback.

    ``device_state_before``: each agent ring's device state just before it was rung, by channel id
    (tells a decline from a busy phone). While several devices ring, ``rings_ended`` keeps each
    ring's miss until the last one ends: only then is the agent's ring over (``combined_miss``)."""

    device_state_before: dict[str, str | None] = field(default_factory=dict)
    dialstatus: dict[str, str] = field(default_factory=dict)
    screen_answers: bool = False  # the setting amd: a contact's answer goes through AMD first
    rings_ended: dict[str, ev.AgentMissed] = field(default_factory=dict)

    def ring_failed(self, callback: Callback, channel_id: str) -> ev.Input | None:
        """One agent device could not be rung (the originate was refused): that ring is over."""
        return self._ring_over(callback, channel_id, ev.AgentMissed(Outcome.AGENT_FAILED))

    def reconciled(self, callback: Callback, alive: Mapping[str, Channel]) -> ev.Input | Screen | None:
        """``reconcile`` after a gap; agent rings that vanished unseen meanwhile count as failed, so
        the end of the last one still ringing ends the agent's ring."""
        attempt = callback.current_attempt
        if attempt is not None and callback.state is State.AGENT_RINGING:
            for leg in attempt.legs_of(LegRole.AGENT):
                if leg.channel_id and leg.channel_id not in alive:
                    self.rings_ended.setdefault(leg.channel_id, ev.AgentMissed(Outcome.AGENT_FAILED))
        return reconcile(callback, alive, self.screen_answers)

    def _ring_over(self, callback: Callback, channel_id: str, missed: ev.AgentMissed) -> ev.Input | None:
        self.rings_ended[channel_id] = missed
        attempt = callback.current_attempt
        rings = [leg.channel_id for leg in attempt.legs_of(LegRole.AGENT)] if attempt else []
        if not all(ring in self.rings_ended for ring in rings):
            return None
        return combined_miss([self.rings_ended[ring] for ring in rings if ring])

    def interpret(self, callback: Callback, event: AriEvent) -> ev.Input | Screen | None:
        """The input ``event`` stands for in ``callback``'s current state, if any."""
        attempt = callback.current_attempt
        channel = _event_channel(event)
        if attempt is None or channel is None:
            return None
        role = watched_channels(attempt).get(channel.id)
        if role is None:
            return None
        if isinstance(event, Dial):
            if event.dialstatus:
                self.dialstatus[channel.id] = event.dialstatus
            return None
        info = ev.LegInfo(uniqueid=channel.id)
        if isinstance(event, ChannelDestroyed):
            end = LegEnd(cause=event.cause, dialstatus=self.dialstatus.get(channel.id, ""))
            return self._ended(callback, role, end, channel.id)
        return _progressed(callback.state, role, event, info, self.screen_answers)

    def _ended(self, callback: Callback, role: LegRole, end: LegEnd, channel_id: str) -> ev.Input | None:
        info = ev.LegInfo(hangup_cause=end.cause, sip_code=end.sip_code, uniqueid=channel_id)
        state = callback.state
        if state is State.AGENT_RINGING and role is LegRole.AGENT:
            outcome = agent_outcome(end, self.device_state_before.get(channel_id))
            return self._ring_over(callback, channel_id, ev.AgentMissed(outcome, info))
        if state is State.CONTACT_RINGING:
            if role is LegRole.AGENT:
                return ev.AgentHungUp(info)
            return ev.ContactFailed(contact_outcome(end), info)
        if state is State.QUEUED:  # the contact hung up while waiting, or Queue() timed out
            return ev.QueueGaveUp(
                Outcome.ABANDONED if role is LegRole.CONTACT else Outcome.QUEUE_TIMEOUT, info
            )
        if state is State.IN_PROGRESS:
            return ev.CallEnded(info)
        return None


def _progressed(
    state: State, role: LegRole, event: AriEvent, info: ev.LegInfo, screen: bool
) -> ev.Input | Screen | None:
    """Answers: the agent's channel enters the app; the contact's Local channel turns Up (with AMD:
    to be screened, then its verdict); the queue's Local channel turns Up (a member took the call;
    the executor looks up who, see ``_with_member``)."""
    if isinstance(event, StasisStart):
        if state is State.AGENT_RINGING and role is LegRole.AGENT:
            return ev.AgentAnswered(info)
        if state is State.CONTACT_RINGING and role is LegRole.CONTACT and event.args[:1] == (AMD_ARG,):
            return amd_verdict(event.args[1:], info)
        return None
    if not isinstance(event, ChannelStateChange) or event.channel.state != UP:
        return None
    if state is State.CONTACT_RINGING and role is LegRole.CONTACT:
        return Screen(info) if screen else ev.ContactAnswered(info)
    if state is State.QUEUED and role is LegRole.MEMBER:
        return ev.MemberAnswered("", info)
    return None


def amd_verdict(results: tuple[str, ...], info: ev.LegInfo) -> ev.Input:
    """AMD's ``(AMDSTATUS, AMDCAUSE)``: a machine was not reached; HUMAN and NOTSURE are answers (a
    doubtful verdict connects, as without AMD: losing a person is worse than reaching a machine)."""
    if results[:1] == (MACHINE,):
        return ev.ContactFailed(Outcome.MACHINE, info)
    return ev.ContactAnswered(info)


def marked_channels(attempt: Attempt) -> dict[str, LegRole]:
    """The channels whose answer Asterisk records for a resumer (``answer_marks``): the contact's in
    the agent phase (the talk), the queue's Local channel in the queue phase (a member took it)."""
    wanted = LegRole.CONTACT if attempt.phase is Phase.AGENT else LegRole.MEMBER
    return {channel_id: role for channel_id, role in watched_channels(attempt).items() if role is wanted}


def resume_inputs(
    callback: Callback, alive: Mapping[str, Channel], answered: Collection[str] = ()
) -> tuple[ev.Input, ...]:
    """How a new holder takes over a live callback whose channels it just looked up (``alive``), given
    the channels Asterisk recorded as answered while nobody watched (``answered``).

    A recorded answer of a channel now gone is the answer, then the end of the talk: the contact
    was reached and is not dialled again.
    A contact leg still Down may never have been dialled (the previous holder died between creating
    it and dialling it) or be ringing a trunk that sends no progress: we cannot tell, and dialling it
    again could ring the contact twice at once. So it counts as lost (hung up; the lifecycle counts
    the attempt and retries later): the contact may ring once more than needed, never twice at once.
    """
    attempt = callback.current_attempt
    legs = watched_channels(attempt) if attempt else {}
    present = {role: alive[channel_id] for channel_id, role in legs.items() if channel_id in alive}
    unseen = _unseen_answer(callback.state, legs, present, answered)
    if unseen:
        return unseen
    if not present:
        return (ev.CallLost(),)
    contact = present.get(LegRole.CONTACT)
    if callback.state is State.CONTACT_RINGING and (contact is None or contact.state == DOWN):
        return (ev.CallLost(),)
    return (ev.CallResumed(),)


def _unseen_answer(
    state: State, legs: Mapping[str, LegRole], present: Mapping[LegRole, Channel], answered: Collection[str]
) -> tuple[ev.Input, ...]:
    """The answer and the end of a channel that was answered and hung up while nobody watched."""
    for channel_id, role in legs.items():
        if channel_id not in answered or role in present:
            continue
        leg = ev.LegInfo(uniqueid=channel_id)
        if state is State.CONTACT_RINGING and role is LegRole.CONTACT:
            return ev.ContactAnswered(leg), ev.CallEnded()
        if state is State.QUEUED and role is LegRole.MEMBER:
            return ev.MemberAnswered("", leg), ev.CallEnded()
    return ()


def reconcile(
    callback: Callback, alive: Mapping[str, Channel], screen: bool = False
) -> ev.Input | Screen | None:
    """After a gap in the events (reconnect, resumed claim): the input that explains which of the
    attempt's channels still exist (``alive``, by id) and in which state; None when nothing changed.

    A channel that vanished unseen has an unknown cause: every leg gone is ``CallLost`` (the lifecycle
    decides what that counts as); one side of a live call gone is that side's normal end. With
    ``screen`` (AMD on) an answered contact still running AMD is left to it (its verdict will come);
    one in our app is screened (again, if its verdict went unseen: it costs the contact a few seconds).
    """
    attempt = callback.current_attempt
    if attempt is None:
        return None
    legs = watched_channels(attempt)
    present = {role: alive[channel_id] for channel_id, role in legs.items() if channel_id in alive}
    if not present:
        return ev.CallLost()
    agent, contact = present.get(LegRole.AGENT), present.get(LegRole.CONTACT)
    state = callback.state
    if state is State.AGENT_RINGING:  # one of the agent's rings answered unseen
        rings = (alive.get(ring) for ring, role in legs.items() if role is LegRole.AGENT)
        answered = next((ring for ring in rings if ring is not None and ring.state == UP), None)
        return ev.AgentAnswered(ev.LegInfo(uniqueid=answered.id)) if answered else None
    if state is State.CONTACT_RINGING:
        return _reconcile_contact_ring(legs, agent, contact, screen)
    if state is State.QUEUED:
        return _reconcile_queue(present.get(LegRole.MEMBER), contact)
    if state is State.IN_PROGRESS and len(present) < len(legs):
        return ev.CallEnded()
    return None


def _reconcile_queue(waiting: Channel | None, contact: Channel | None) -> ev.Input | None:
    """The queue's Local channel Up is a member's answer seen late. Gone while the contact is still
    there: Queue() gave up unseen (or a holder died before creating the channel); the contact would
    otherwise wait in silence, so that queue attempt is over."""
    if waiting is not None:
        return ev.MemberAnswered("", ev.LegInfo(uniqueid=waiting.id)) if waiting.state == UP else None
    return ev.QueueGaveUp(Outcome.QUEUE_TIMEOUT) if contact is not None else None


def _reconcile_contact_ring(
    legs: Mapping[str, LegRole], agent: Channel | None, contact: Channel | None, screen: bool
) -> ev.Input | Screen | None:
    """An Up contact answered, even if the agent is gone since (that talk is over: CallEnded comes
    next); with AMD on, it is screened first (or left to AMD while it listens). Otherwise the agent
    gone is its hang-up while the contact rang."""
    if contact is not None and contact.state == UP:
        if screen and contact.app_name == AMD_APP:
            return None
        info = ev.LegInfo(uniqueid=contact.id)
        return Screen(info) if screen else ev.ContactAnswered(info)
    if LegRole.AGENT in legs.values() and agent is None:
        return ev.AgentHungUp()
    return ev.CallLost() if contact is None else None
