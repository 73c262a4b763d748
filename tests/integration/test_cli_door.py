"""The command line through the service: paged listing, refused settings, due text the service reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_cli import config_file, run, scheduled_id, tomorrow

pytestmark = pytest.mark.lab

__all__ = ["config_file"]  # the fixture, shared with test_cli


def schedule(config: Path, at: str, *extra: str) -> int:
    return run(config, "schedule", "--agent", "1001", "--number", "+4930123456", "--at", at, *extra)


def listed_ids(output: str) -> list[str]:
    return re.findall(r"^([0-9a-f]{16})\s", output, re.MULTILINE)


def test_list_pages_with_limit_and_cursor(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for hours in range(1, 6):
        assert schedule(config_file, f"+{hours}h") == 0
    capsys.readouterr()
    assert run(config_file, "list") == 0
    everything = listed_ids(capsys.readouterr().out)
    assert len(everything) == 5

    seen: list[str] = []
    args: list[str] = ["--limit", "2"]
    while True:
        assert run(config_file, "list", *args) == 0
        out = capsys.readouterr().out
        seen += listed_ids(out)
        more = re.search(r"^next page: --cursor (\S+)$", out, re.MULTILINE)
        if more is None:
            break
        args = ["--limit", "2", "--cursor", more.group(1)]
    assert seen == everything


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--cursor", "garbage!"], "cursor: "), (["--limit", "0"], "limit: 0 is not between 1 and 500")],
)
def test_a_bad_cursor_or_limit_is_one_line_and_exit_2(
    config_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert run(config_file, "list", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("asterisk-cb: ")
    assert expected in err
    assert err.count("\n") == 1


def test_settings_set_with_a_bad_value_is_refused_clearly(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "settings", "set", "general", "horizon", "forever") == 2
    err = capsys.readouterr().err
    assert err.startswith("asterisk-cb: runtime override [general]: horizon: ")
    assert err.count("\n") == 1
    assert run(config_file, "settings", "set", "team/1", "max_attempts", "3") == 2
    assert "scope: 'team/1': use general, queue/<name> or agent/<id>" in capsys.readouterr().err
    assert run(config_file, "check-config") == 0
    assert re.search(r"horizon\s+30d\s+default", capsys.readouterr().out)


def test_reschedule_reads_a_local_time_in_the_callbacks_zone(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert schedule(config_file, tomorrow(), "--timezone", "America/New_York") == 0
    callback_id = scheduled_id(capsys.readouterr().out)
    day = tomorrow()[:10]
    assert run(config_file, "reschedule", callback_id, "--at", f"{day} 11:00") == 0
    assert re.search(rf"{day} 11:00 E[SD]T", capsys.readouterr().out)
