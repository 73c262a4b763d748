"""How `asterisk-cb user set-password` reads the password: asked twice on a terminal without echo (two
different entries change nothing), or the first line of a pipe for a provisioning script."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from asterisk_cb import cli
from asterisk_cb.service_access import ErrorCode, ServiceError


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def typed(monkeypatch: pytest.MonkeyPatch, *entries: str) -> list[str]:
    """The terminal's entries, in order; the prompts shown are returned."""
    prompts: list[str] = []
    answers: Iterator[str] = iter(entries)

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(cli.sys, "stdin", Terminal())
    monkeypatch.setattr(cli.getpass, "getpass", getpass)
    return prompts


def test_on_a_terminal_the_password_is_asked_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = typed(monkeypatch, "pin 4711", "pin 4711")
    assert cli._read_password() == "pin 4711"
    assert prompts == ["new panel password: ", "again: "]


def test_two_different_entries_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    typed(monkeypatch, "pin 4711", "pin 4712")
    with pytest.raises(ServiceError) as refused:
        cli._read_password()
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, "password")


def test_from_a_pipe_the_first_line_without_its_line_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.sys, "stdin", io.StringIO("  spaced pass \r\nsecond line\n"))
    assert cli._read_password() == "  spaced pass "
