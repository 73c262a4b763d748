"""The lab's services in start order, and which ones need which (Asterisk needs its CDR databases)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType

# name -> module implementing up(settings), down(settings) -> str, status(settings) -> str
_MODULES = {
    "redis": "lab.redis_lab",
    "postgres": "lab.postgres",
    "mariadb": "lab.mariadb",
    "asterisk": "lab.asterisk",
    "phones": "lab.phones",
}
NAMES = tuple(_MODULES)
_NEEDS = {"asterisk": ("postgres", "mariadb"), "phones": ("asterisk",)}


def get(name: str) -> ModuleType:
    return importlib.import_module(_MODULES[name])


def _validate(names: Iterable[str]) -> set[str]:
    chosen = set(names)
    unknown = chosen - set(NAMES)
    if unknown:
        raise SystemExit(
            f"pbx-lab: unknown service(s) {', '.join(sorted(unknown))}; known: {', '.join(NAMES)}"
        )
    return chosen


def with_dependencies(names: Iterable[str]) -> list[str]:
    """names plus everything they need, in start order (`up phones` also brings up Asterisk)."""
    chosen = _validate(names)
    for name in reversed(NAMES):
        if name in chosen:
            chosen.update(_NEEDS.get(name, ()))
    return [name for name in NAMES if name in chosen]


def with_dependents(names: Iterable[str]) -> list[str]:
    """names plus everything that needs them, in start order (`down asterisk` also stops the phones)."""
    chosen = _validate(names)
    for name in NAMES:
        if any(need in chosen for need in _NEEDS.get(name, ())):
            chosen.add(name)
    return [name for name in NAMES if name in chosen]
