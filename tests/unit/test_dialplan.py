"""The dialplan admins #include (dialplan/) and the lab's (scripts/lab/asterisk/extensions.conf, which
the e2e tests and docker/render-asterisk-config.py use) must run the same contexts the daemon needs:
a fix tested in the lab must reach admins."""

from __future__ import annotations

import re
from pathlib import Path

import asterisk_patterns  # tests/: the model of Asterisk's pattern matching
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asterisk_cb import feature_code, inbound_hook
from asterisk_cb.core import rules
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
        ("callback-outbound.conf", "callback-outbound"),
        ("callback-outbound.conf", "callback-cdr-mark"),
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


def queue_pattern() -> str:
    (line, *_) = context_lines(ROOT / "dialplan" / "callback-queue.conf", "callback-queue")
    return line.removeprefix("exten => ").split(",", 1)[0]


@pytest.mark.parametrize(
    ("pattern", "exten", "expected"),
    [
        ("_X.", "1", False),  # "." needs at least one more character
        ("_X.", "12", True),
        ("_X!", "1", True),  # "!" also matches nothing
        ("_[a-c]X", "b7", True),
        ("_[a-c]X", "d7", False),
        ("_1-2-3", "123", True),  # dashes are eye candy on both sides
        ("_NXX", "1-23", False),
        ("s", "s", True),
    ],
)
def test_the_pattern_model_follows_asterisk_s_documented_rules(
    pattern: str, exten: str, expected: bool
) -> None:
    assert asterisk_patterns.matches(pattern, exten) is expected


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", fullmatch=True))
@example("a")  # one character: "_[a-zA-Z0-9]." missed these
@example("9")
def test_every_queue_name_the_rules_accept_reaches_the_queue_context(name: str) -> None:
    """The failover phase dials Local/<queue>@callback-queue: the context's one pattern must match every
    queue name ``rules.queue_name`` accepts, or the contact is answered and then dropped."""
    assert rules.queue_name(name) == name
    assert asterisk_patterns.matches(queue_pattern(), name)


@given(st.from_regex(r"\+[0-9]{1,15}|[0-9]{1,20}", fullmatch=True))
@example("7")  # one digit: "_X." would miss it
@example("+1")
def test_every_contact_number_the_rules_accept_is_marked_then_routed(number: str) -> None:
    """The daemon dials Local/<number>@callback-outbound: its one pattern must match every number
    ``rules.contact_number`` accepts, run the CDR mark, then hand the same number to the route."""
    assert rules.contact_number(number) == number
    (pattern_line, route) = context_lines(ROOT / "dialplan" / "callback-outbound.conf", "callback-outbound")
    pattern = pattern_line.removeprefix("exten => ").split(",", 1)[0]
    assert asterisk_patterns.matches(pattern, number)
    assert pattern_line.endswith(",1,Gosub(callback-cdr-mark,s,1)")
    assert route == " same => n,Goto(callback-outbound-route,${EXTEN},1)"


@pytest.mark.parametrize("name", ["a@b", "_x", ".x", "@x", "+x", "-x", "", "x" * 65, "a b"])
def test_queue_names_the_local_channel_or_the_pattern_cannot_carry_are_refused(name: str) -> None:
    with pytest.raises(rules.ValidationError, match="not a valid queue name"):
        rules.queue_name(name)


REQUEST = ROOT / "dialplan" / "callback-request.conf"


def test_the_lab_arms_the_feature_code_admins_get() -> None:
    shipped = [line for line in context_lines_of_file(ROOT / "dialplan" / "features-callback.conf")]
    assert shipped == ["acb-request => *7,self,Gosub(acb-request,s,1),default"]
    assert shipped[0] in context_lines(
        ROOT / "scripts" / "lab" / "asterisk" / "features.conf", "applicationmap"
    )


def context_lines_of_file(path: Path) -> list[str]:
    """A snippet without a section header: its lines, comments and blank lines left out."""
    return [line for raw in path.read_text().splitlines() if (line := raw.split(";", 1)[0].rstrip())]


def test_the_gosub_asks_the_route_the_daemon_serves_and_reads_what_it_writes() -> None:
    """The daemon's answer variables and AGI route, and the Gosub's, are one contract."""
    text = REQUEST.read_text()
    assert f"}}/{feature_code.ROUTE})" in text
    read = set(re.findall(r"SHARED\((ACB_R_[A-Z]+)\)", text))
    written = set(re.findall(r'"(ACB_R_[A-Z]+)"', Path(feature_code.__file__).read_text()))
    assert read <= written and read, (read, written)
    steps = set(re.findall(r"acb-request-ask,s,1\((\w+)\)", text))
    assert steps == {step.value for step in feature_code.Step}


def test_every_refusal_the_daemon_sends_is_spoken() -> None:
    """acb-request-refused has a prompt for each reason (a catch-all for the rest); not_agent is silent
    and the wrong-entry reasons are re-prompted before it is reached."""
    lines = context_lines(REQUEST, "acb-request-refused")
    named = {line.split("=>", 1)[1].split(",", 1)[0].strip() for line in lines if line.startswith("exten")}
    assert {"forbidden", "disabled", "number", "ended"} <= named
    assert "_[a-z]." in named  # error and anything a newer daemon may add: "please try again"
    re_prompted = {feature_code.Reason.NOT_AGENT, feature_code.Reason.HOURS, feature_code.Reason.TIME}
    for reason in set(feature_code.Reason) - re_prompted:
        assert reason.value in named or re.fullmatch(r"[a-z].+", reason.value), reason


INBOUND = ROOT / "dialplan" / "callback-inbound.conf"


def test_the_inbound_hook_asks_the_route_the_daemon_serves_and_reads_all_it_writes() -> None:
    """The hook's answer variables and AGI route, and the Gosub's, are one contract: every field the
    daemon writes is read (Answer.fields), and the status the Gosub waits for comes last."""
    text = INBOUND.read_text()
    assert f"}}/{inbound_hook.ROUTE})" in text
    read = set(re.findall(r"SHARED\((ACB_I_[A-Z]+)\)", text))
    fields = inbound_hook.Answer(inbound_hook.Status.UNKNOWN).fields()
    assert read == set(fields)
    assert list(fields)[-1] == "ACB_I_STATUS"
    for status in inbound_hook.Status:  # each status the daemon sends is one the Gosub knows
        assert f"{status.value}" in text


def test_the_readme_names_every_variable_the_hook_sets() -> None:
    text = INBOUND.read_text()
    readme = (ROOT / "README.md").read_text()
    set_by_the_gosub = set(re.findall(r"Set\((ACB_(?:INBOUND|CALLBACK_[A-Z_]+))=", text))
    assert "ACB_INBOUND" in set_by_the_gosub and len(set_by_the_gosub) == 9
    for name in set_by_the_gosub:
        assert f"| `{name}` |" in readme, name


def test_the_lab_routes_support_through_the_hook_admins_get() -> None:
    """The lab copies the shipped file (never a copy of its own) and its support route is the README's."""
    assert "callback-inbound.conf" in (ROOT / "scripts" / "lab" / "asterisk.py").read_text()
    route = context_lines(ROOT / "scripts" / "lab" / "asterisk" / "extensions.conf", "lab-inbound")
    assert any("Gosub(acb-inbound,s,1)" in line for line in route)
    assert any("Gosub(acb-inbound-owner,s,1(15))" in line for line in route)
    assert any("QUEUE_PRIO=${ACB_CALLBACK_PRIORITY}" in line for line in route)
