"""`doctor`'s line per event-stream consumer group: an unread or far-behind group holds back trimming."""

from __future__ import annotations

import pytest

from asterisk_cb.doctor import GROUP_BACKLOG_WARN, Verdict, _group_check
from asterisk_cb.store import GroupInfo


@pytest.mark.parametrize(
    ("consumers", "pending", "lag", "verdict"),
    [
        (2, 3, 0, Verdict.OK),
        (2, 3, None, Verdict.OK),  # Redis before 7.0 cannot tell the lag
        (0, 0, 0, Verdict.WARN),  # nobody reads it
        (1, 10, GROUP_BACKLOG_WARN, Verdict.WARN),
        (1, GROUP_BACKLOG_WARN, None, Verdict.WARN),
    ],
)
def test_a_group_without_reader_or_with_a_large_backlog_warns(
    consumers: int, pending: int, lag: int | None, verdict: Verdict
) -> None:
    check = _group_check(GroupInfo("cel", consumers, pending, "0-0", lag))
    assert check.name == "events group cel"
    assert check.verdict is verdict
    assert f"{pending} pending" in check.detail
    assert ("drop-group" in check.detail) is (verdict is Verdict.WARN)
