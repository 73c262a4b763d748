"""Asterisk's extension pattern matching, as a model for tests: does a dialled extension match a
pattern the way Asterisk 22's default matcher (``_extension_match_core`` in main/pbx.c, E_MATCH)
decides it? ``tests/integration/test_dialplan_lab.py`` checks this model against the lab's Asterisk.

Covered: literal extensions, ``_`` patterns with ``X``, ``Z``, ``N``, ``[...]`` sets and ranges, the
wildcards ``.`` (one or more characters) and ``!`` (zero or more), and ``-`` ignored on both sides.
"""

from __future__ import annotations

_CLASSES = {"X": "0123456789", "Z": "123456789", "N": "23456789"}


def matches(pattern: str, exten: str) -> bool:
    """True when Asterisk would run ``pattern``'s extension for a call to ``exten``."""
    if not pattern.startswith("_"):
        return pattern.replace("-", "") == exten.replace("-", "")
    body, data, position = pattern[1:], exten.replace("-", ""), 0
    while position < len(body):
        char = body[position]
        if char == "-":  # eye candy (outside a set)
            position += 1
            continue
        if char in ".!":
            return bool(data) or char == "!"
        if not data:
            return False  # the pattern needs more characters than the extension has
        if char == "[":
            end = body.index("]", position)
            allowed, position = _expand(body[position + 1 : end]), end + 1
        else:
            allowed, position = _CLASSES.get(char, char), position + 1
        if data[0] not in allowed:
            return False
        data = data[1:]
    return not data


def _expand(members: str) -> str:
    """A ``[...]`` set's characters, ranges like ``a-z`` spelled out."""
    chars, index = [], 0
    while index < len(members):
        if index + 2 < len(members) and members[index + 1] == "-":
            chars += [chr(code) for code in range(ord(members[index]), ord(members[index + 2]) + 1)]
            index += 3
        else:
            chars.append(members[index])
            index += 1
    return "".join(chars)
