"""The model of Asterisk's pattern matching (tests/asterisk_patterns.py), which the unit tests use to
show the queue context's pattern matches every queue name the rules accept, decides like the lab's
Asterisk: ``dialplan show <exten>@<context>`` lists the extensions Asterisk matches for a call."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import asterisk_patterns
import pytest

pytestmark = pytest.mark.lab

# Extensions chosen to hit every rule: one character, dashes (skipped), dots and pluses, a leading
# underscore or digit, digits only.
EXTENS = ["a", "9", "sales", "a-b", "-a", "x.y", "q+1", "_x", "Support_2", "1", "12", "+12", "70199", "7019"]


def loaded_patterns(cli: Callable[..., str], context: str) -> list[str]:
    return re.findall(r"^\s*'(_[^']+)' =>", cli("cli", f"dialplan show {context}"), re.MULTILINE)


@pytest.mark.parametrize("context", ["callback-queue", "callback-outbound"])
def test_the_model_matches_as_the_lab_s_asterisk_does(
    lab: dict[str, Any], pbx_lab_run: Callable[..., str], context: str
) -> None:
    patterns = loaded_patterns(pbx_lab_run, context)
    assert patterns, f"no patterns loaded in {context}"
    for exten in EXTENS:
        shown = pbx_lab_run("cli", f"dialplan show {exten}@{context}")
        for pattern in patterns:
            assert (f"'{pattern}' =>" in shown) is asterisk_patterns.matches(pattern, exten), (pattern, exten)
