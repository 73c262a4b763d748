"""`doctor`'s line on Redis replicas: whether each ring's commit waits for one, and when that is wrong."""

from __future__ import annotations

import pytest

from asterisk_cb.doctor import Verdict, _replicas_check
from asterisk_cb.redis_conn import ReplicaMode, ReplicaWait


@pytest.mark.parametrize(
    ("mode", "replicas", "verdict", "words"),
    [
        (ReplicaMode.AUTO, 1, Verdict.OK, "each ring waits for one"),
        (ReplicaMode.ON, 2, Verdict.OK, "each ring waits for one"),
        (ReplicaMode.OFF, 1, Verdict.WARN, "a failover can lose a ring's commit"),
        (ReplicaMode.AUTO, 0, Verdict.OK, "single Redis"),
        (ReplicaMode.OFF, 0, Verdict.OK, "single Redis"),
        (ReplicaMode.ON, 0, Verdict.FAIL, "no callback will be dialled"),
    ],
)
def test_replica_wait_against_the_replicas_found(
    mode: ReplicaMode, replicas: int, verdict: Verdict, words: str
) -> None:
    check = _replicas_check(ReplicaWait(mode), replicas)
    assert (check.name, check.verdict) == ("redis replicas", verdict)
    assert words in check.detail
    assert f"replica_wait = {mode.value}" in check.detail
