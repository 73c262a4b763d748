"""The dialplan admins #include (dialplan/) and the lab's (scripts/lab/asterisk/extensions.conf, which
the e2e tests and docker/render-asterisk-config.py use) must run the same contexts the daemon needs:
a fix tested in the lab must reach admins."""

from __future__ import annotations

from pathlib import Path

import pytest

from asterisk_cb.telephony import answer_marks

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "scripts" / "lab" / "asterisk" / "extensions.conf"


def context_lines(path: Path, context: str) -> list[str]:
    """The context's dialplan lines, comments and blank lines left out."""
    lines: list[str] = []
    inside = False
    for raw in path.read_text().splitlines():
        line = raw.split(";", 1)[0].rstrip()
        if line.startswith("["):
            inside = line == f"[{context}]"
        elif inside and line:
            lines.append(line)
    return lines


@pytest.mark.parametrize(
    ("shipped", "context"),
    [
        ("callback-outbound.conf", answer_marks.HANDLER_CONTEXT),
        ("callback-queue.conf", "callback-queue"),
        ("callback-amd.conf", "callback-amd"),
    ],
)
def test_the_shipped_context_is_the_one_the_lab_runs(shipped: str, context: str) -> None:
    lines = context_lines(ROOT / "dialplan" / shipped, context)
    assert lines, f"{shipped} has no [{context}]"
    assert lines == context_lines(LAB, context)


def test_the_answer_record_is_written_under_the_key_the_daemon_passes() -> None:
    """The handler writes DB(${ARG1}); the daemon passes ARG1 = <family>/<channel id>."""
    assert "Set(DB(${ARG1})=${EPOCH})" in "".join(context_lines(LAB, answer_marks.HANDLER_CONTEXT))
    handler = answer_marks.handler("acb-x-1-contact")
    assert handler == {"CHANNEL(hangup_handler_push)": "callback-answered,s,1(acb/acb-x-1-contact)"}
