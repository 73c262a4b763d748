"""Hypothesis strategies for core values, shared by the core unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from asterisk_cb.core.inputs import Cancel, ChangeRequest, Edit, Reschedule
from asterisk_cb.core.model import (
    Attempt,
    Callback,
    Event,
    EventKind,
    FinishReason,
    Leg,
    LegRole,
    Outcome,
    Phase,
    Source,
    State,
)

utc_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
# Any aware time in any zone: the codec must store the instant, whatever the zone.
aware_times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.timezones(),
    allow_imaginary=False,
)
texts = st.text(max_size=40)
optional_texts = st.none() | st.text(min_size=1, max_size=20)
small_counts = st.integers(min_value=0, max_value=1000)

legs = st.builds(
    Leg,
    role=st.sampled_from(LegRole),
    channel_id=optional_texts,
    local_peer_id=optional_texts,
    uniqueid=optional_texts,
    linkedid=optional_texts,
    endpoint=optional_texts,
)

attempts = st.builds(
    Attempt,
    id=st.text(min_size=1, max_size=30),
    phase=st.sampled_from(Phase),
    started_at=utc_times,
    legs=st.lists(legs, max_size=3).map(tuple),
    ended_at=st.none() | utc_times,
    outcome=st.none() | st.sampled_from(Outcome),
    hangup_cause=st.none() | st.integers(min_value=0, max_value=127),
    sip_code=st.none() | st.integers(min_value=100, max_value=699),
)

callbacks = st.builds(
    Callback,
    id=st.text(min_size=1, max_size=36),
    contact_number=st.text(min_size=1, max_size=16),
    agent=st.text(min_size=1, max_size=20),
    due_at=utc_times,
    timezone=st.text(min_size=1, max_size=30),
    created_by=texts,
    created_at=utc_times,
    contact_name=texts,
    queue=optional_texts,
    origin_uniqueid=optional_texts,
    origin_linkedid=optional_texts,
    source=st.sampled_from(Source),
    note=texts,
    state=st.sampled_from(State),
    phase=st.sampled_from(Phase),
    next_at=st.none() | utc_times,
    updated_at=st.none() | utc_times,
    finished_at=st.none() | utc_times,
    finish_reason=st.none() | st.sampled_from(FinishReason),
    cancelled_by=optional_texts,
    called_in_agent=optional_texts,
    called_in_talk_s=small_counts,
    agent_attempts=small_counts,
    queue_attempts=small_counts,
    missed_agent_rings=small_counts,
    held_seconds=st.integers(min_value=0, max_value=10**9),
    attempts=st.lists(attempts, max_size=4).map(tuple),
    version=st.integers(min_value=1, max_value=2**53),
)

events = st.builds(
    Event,
    callback_id=st.text(min_size=1, max_size=36),
    kind=st.sampled_from(EventKind),
    at=utc_times,
    version=st.integers(min_value=1, max_value=2**53),
    attributes=st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda key: key not in {"cb", "kind", "at", "v"}),
        st.text(max_size=30),
        max_size=5,
    ),
)

ONE_SECOND = timedelta(seconds=1)

changes = st.one_of(
    st.builds(Cancel, by=texts),
    st.builds(Reschedule, due_at=utc_times, by=texts),
    st.builds(
        Edit,
        by=texts,
        contact_number=optional_texts,
        contact_name=optional_texts,
        note=optional_texts,
        agent=optional_texts,
        timezone=optional_texts,
    ),
)
change_requests = st.builds(ChangeRequest, id=st.text(min_size=1, max_size=20), change=changes)
