"""The CSRF check: the session's token, exactly; nothing else, and never an empty one."""

from __future__ import annotations

import pytest

from asterisk_cb.web.csrf import csrf_ok


def test_the_sessions_token_passes() -> None:
    assert csrf_ok("KmX1YT15Z4TUma26DLUtsILp", "KmX1YT15Z4TUma26DLUtsILp")


@pytest.mark.parametrize(
    "sent", [None, "", "KmX1YT15Z4TUma26DLUtsILP", "KmX1YT15Z4TUma26DLUtsIL", "x" * 1000, "é"]
)
def test_anything_else_is_refused(sent: str | None) -> None:
    assert not csrf_ok("KmX1YT15Z4TUma26DLUtsILp", sent)


def test_a_session_without_a_token_accepts_nothing() -> None:
    assert not csrf_ok("", "")
