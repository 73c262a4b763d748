"""A small parser for Asterisk-style INI text that keeps the line of every value.

Why our own: configparser forgets line numbers, and an admin told "max_attempts is invalid" wants to
know which of five sections meant it. The dialect is Asterisk's: ``[section]``, ``key = value`` (or
``key => value``), ``;`` comments (``\\;`` for a literal semicolon), ``;-- block comments --;`` and
``#include`` / ``#tryinclude`` lines, which are returned for the caller to resolve (this module reads
no files). Templates (``[name](!)``) are refused rather than half-supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SECTION = re.compile(r"\[([^\[\]]+)\]\s*(\(.*\))?\Z")
_INCLUDE = re.compile(r"#(include|tryinclude)\s+(.+)\Z")
_ESCAPED_SEMICOLON = "\x00"


class IniError(ValueError):
    """A syntax error, with the file and line it was found on."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(f"{file}:{line}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Entry:
    """One ``key = value`` line."""

    key: str
    value: str
    file: str
    line: int


@dataclass(frozen=True)
class Include:
    """An ``#include`` line: ``path`` as written (relative to the including file), ``required`` unless try."""

    path: str
    required: bool
    file: str
    line: int
    section: str | None  # the section open at the include, which the included entries continue


@dataclass
class Section:
    """A ``[name]`` and its entries, in file order."""

    name: str
    file: str
    line: int
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Document:
    """A parsed file: its sections in order and the includes it asks for."""

    file: str
    sections: list[Section] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)


def parse(text: str, file: str, section: str | None = None) -> Document:
    """Parse ``text`` (named ``file`` in errors); ``section`` continues an including file's section."""
    document = Document(file)
    current = Section(section, file, 0) if section else None
    if current:
        document.sections.append(current)
    in_block_comment, block_start = False, 0
    for number, raw in enumerate(text.splitlines(), start=1):
        was_in_block = in_block_comment
        line, in_block_comment = _strip_comments(raw, in_block_comment)
        if in_block_comment and not was_in_block:
            block_start = number
        if line:
            current = _parse_line(document, current, line, number)
    if in_block_comment:
        raise IniError(file, block_start, "block comment ';--' is never closed with '--;'")
    return document


def _parse_line(document: Document, current: Section | None, line: str, number: int) -> Section | None:
    """Add one meaningful line to ``document``; returns the section open after it."""
    file = document.file
    include = _INCLUDE.match(line)
    if include:
        path = include[2].strip().strip('"').strip("<>")
        document.includes.append(
            Include(path, include[1] == "include", file, number, current.name if current else None)
        )
    elif line.startswith("["):
        current = _section(line, file, number)
        document.sections.append(current)
    elif current is None:
        raise IniError(file, number, f"{line!r} comes before any [section]")
    else:
        current.entries.append(_entry(line, file, number))
    return current


def _strip_comments(raw: str, in_block_comment: bool) -> tuple[str, bool]:
    """Drop ``;`` comments and ``;-- ... --;`` blocks; returns the remaining text and the block state."""
    line = raw.replace("\\;", _ESCAPED_SEMICOLON)
    kept = ""
    while line:
        if in_block_comment:
            end = line.find("--;")
            if end < 0:
                return kept.strip().replace(_ESCAPED_SEMICOLON, ";"), True
            line, in_block_comment = line[end + 3 :], False
            continue
        start = line.find(";")
        if start < 0:
            kept += line
            break
        kept += line[:start]
        if line.startswith(";--", start):
            line, in_block_comment = line[start + 3 :], True
        else:
            break
    return kept.strip().replace(_ESCAPED_SEMICOLON, ";"), in_block_comment


def _section(line: str, file: str, number: int) -> Section:
    match = _SECTION.match(line)
    if not match:
        raise IniError(file, number, f"{line!r} is not a valid [section] header")
    if match[2]:
        raise IniError(file, number, f"section templates {match[2]} are not supported")
    return Section(match[1].strip(), file, number)


def _entry(line: str, file: str, number: int) -> Entry:
    key, separator, value = line.partition("=")
    if not separator:
        raise IniError(file, number, f"{line!r} is not 'key = value'")
    value = value[1:] if value.startswith(">") else value  # Asterisk's "key => value"
    key = key.strip()
    if not key:
        raise IniError(file, number, "an option name is missing before '='")
    return Entry(key, value.strip(), file, number)
