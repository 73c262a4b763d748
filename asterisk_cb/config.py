"""Read the configuration file (and what it ``#include``s) into validated settings.

The only part of the settings code that touches files: parsing and validation live in the pure
``core.ini`` and ``core.settings``, so they are tested without a disk. Every refusal names the file,
the line and the option.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from asterisk_cb.core import ini
from asterisk_cb.core.settings import SettingsFile, from_documents

DEFAULT_PATH = Path("/etc/asterisk-cb/asterisk-cb.conf")
MAX_INCLUDE_DEPTH = 8


class ConfigError(ValueError):
    """The configuration cannot be used; the message names file, line and option where there is one."""


def load(path: Path = DEFAULT_PATH, other_sections: Iterable[str] = ()) -> SettingsFile:
    """Read ``path`` and its includes; validate the callback settings, keep ``other_sections`` raw."""
    try:
        return from_documents(documents(path), other_sections)
    except ValueError as error:  # SettingError, ValidationError
        raise ConfigError(str(error)) from error


def documents(path: Path) -> list[ini.Document]:
    """``path`` parsed, then every file it ``#include``s: what ``load`` reads (``secrecy`` checks each)."""
    try:
        return _read(path, None, (), 0)
    except ini.IniError as error:
        raise ConfigError(str(error)) from error


def _read(path: Path, section: str | None, chain: tuple[Path, ...], depth: int) -> list[ini.Document]:
    """``path`` parsed, followed by its includes in order (each continues the section it appears in)."""
    resolved = path.resolve()
    if resolved in chain:
        raise ConfigError(f"{path}: #include loop ({' -> '.join(str(p) for p in (*chain, resolved))})")
    if depth > MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{path}: #include nested deeper than {MAX_INCLUDE_DEPTH}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # editors on Windows like to add a BOM
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from error
    document = ini.parse(text, str(path), section)
    documents = [document]
    for include in document.includes:
        target = path.parent / include.path
        if not include.required and not target.exists():
            continue
        if include.required and not target.exists():
            raise ConfigError(f"{include.file}:{include.line}: #include {include.path}: no such file")
        documents += _read(target, include.section, (*chain, resolved), depth + 1)
    return documents
