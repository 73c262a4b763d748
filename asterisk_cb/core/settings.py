"""What an admin can set, how each value is written and checked, and which value applies where.

Three layers, highest first for each option: the agent's section, the queue's section, ``[general]``;
within a scope a value changed at run time (kept in the store) wins over the file until it is reset;
an option set nowhere takes its default. ``explain`` says for every option where its effective value
came from, which is what ``asterisk-cb check-config`` prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import time, timedelta
from enum import StrEnum
from typing import Any

from asterisk_cb.core import rules
from asterisk_cb.core.durations import format_duration, parse_duration
from asterisk_cb.core.ini import Document

GENERAL = "general"
QUEUE_PREFIX = "queue/"
AGENT_PREFIX = "agent/"


@dataclass(frozen=True)
class CallerId:
    """The caller ID presented to the contact; empty parts leave the dialplan's own choice."""

    name: str = ""
    number: str = ""

    def __str__(self) -> str:
        if self.name:
            return f'"{self.name}" <{self.number}>' if self.number else f'"{self.name}"'
        return self.number


class OnCallIn(StrEnum):
    """What a contact calling in and talking to an agent does to its pending callbacks."""

    COMPLETE = "complete"  # they complete with the reason "contact called in"
    IGNORE = "ignore"  # nothing: they are dialled as scheduled


class CallInAgent(StrEnum):
    """Whose talk with the calling-in contact settles a callback."""

    OWNER = "owner"  # only the callback's own agent's
    ANY = "any"  # any agent's


# The longest prefix of the agent's caller ID name for a returning contact (the name must stay readable).
MAX_CALLER_ID_PREFIX = 20


@dataclass(frozen=True)
class Settings:
    """The effective settings for one callback (after agent > queue > general resolution)."""

    enabled: bool = True  # off: no new callbacks; scheduled ones are held (not dialled, not lost)
    paused: bool = False  # on: nothing is dialled, due callbacks wait, nothing is lost
    horizon: timedelta = timedelta(days=30)
    default_timezone: str = "UTC"
    reschedule_delay: timedelta = timedelta(minutes=1)
    max_agent_wait: timedelta = timedelta(hours=1)
    retry_interval: timedelta = timedelta(minutes=15)
    max_attempts: int = 3
    max_missed_agent_rings: int = 3
    failover_queue: str | None = None
    queue_max_attempts: int = 3
    queue_timeout: timedelta = timedelta(minutes=5)
    queue_priority: int = 0  # Queue() entry priority: 0 = behind callers already waiting
    agent_ring_timeout: timedelta = timedelta(seconds=20)
    contact_ring_timeout: timedelta = timedelta(seconds=40)
    amd: bool = False  # on: an answered contact goes through AMD(); a machine is hung up and retried
    caller_id: CallerId = CallerId()
    calling_hours: rules.CallingHours = rules.ANY_TIME
    announce_to_agent: bool = False  # on: the agent hears a beep and the contact's number first
    on_call_in: OnCallIn = OnCallIn.COMPLETE  # the contact calls in first: settle its pending callbacks
    call_in_agent: CallInAgent = CallInAgent.OWNER  # ... when it talks to the owner (or any agent)
    call_in_min_talk: timedelta = timedelta(seconds=20)  # ... for at least this long (bridged time)
    call_in_priority: int = 0  # Queue() priority the inbound hook gives a returning contact
    call_in_caller_id_prefix: str = ""  # put before the caller ID name the owning agent sees

    @property
    def due_limits(self) -> rules.DueLimits:
        """What a new or moved due time must satisfy."""
        return rules.DueLimits(self.horizon, self.calling_hours)

    @property
    def dials(self) -> bool:
        """False while callbacks must be held: feature off or paused."""
        return self.enabled and not self.paused


class OriginKind(StrEnum):
    """Where an effective value came from."""

    DEFAULT = "default"
    FILE = "file"
    RUNTIME = "runtime"


@dataclass(frozen=True)
class Origin:
    """Provenance of one value: default, a file line in a section, or a run-time override of a scope."""

    kind: OriginKind
    scope: str | None = None
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.kind is OriginKind.FILE:
            return f"{self.file}:{self.line} [{self.scope}]"
        if self.kind is OriginKind.RUNTIME:
            return f"runtime override [{self.scope}]"
        return "default"


class SettingError(ValueError):
    """An invalid option or value, naming the option and where it was written."""

    def __init__(self, option: str, origin: Origin, reason: str) -> None:
        super().__init__(f"{origin}: {option}: {reason}")
        self.option = option
        self.origin = origin
        self.reason = reason


@dataclass(frozen=True)
class Assignment:
    """A parsed value, the text it was written as, and where."""

    value: Any
    text: str
    origin: Origin


# scope ("general", "queue/sales", "agent/1001") -> option -> assignment
Layers = dict[str, dict[str, Assignment]]


@dataclass(frozen=True)
class Effective:
    """One line of ``check-config``: option, its effective value as written, and its origin."""

    option: str
    text: str
    origin: Origin


@dataclass(frozen=True)
class SettingsFile:
    """Validated settings sections of the config file(s), plus the other sections left to their owners."""

    layers: Layers
    other_sections: dict[str, dict[str, Assignment]]


# ---- value syntax -------------------------------------------------------------------------------

_TRUE = {"yes", "true", "on", "1", "y"}
_FALSE = {"no", "false", "off", "0", "n"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})\Z")
_CALLER_ID = re.compile(r'\s*(?:"([^"]*)"|([^<"]*?))\s*(?:<([^>]*)>)?\s*\Z')


def parse_bool(text: str) -> bool:
    """Asterisk's booleans: yes/no, true/false, on/off, 1/0."""
    lowered = text.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError(f"{text!r} is not yes or no")


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text.strip()):
            raise ValueError(f"{text!r} is not a whole number")
        number = int(text)
        if not low <= number <= high:
            raise ValueError(f"{number} is outside {low}..{high}")
        return number

    return parse


def _bounded_duration(low: timedelta, high: timedelta) -> Callable[[str], timedelta]:
    def parse(text: str) -> timedelta:
        span = parse_duration(text)
        if not low <= span <= high:
            raise ValueError(f"{text!r} is outside {format_duration(low)}..{format_duration(high)}")
        return span

    return parse


def _optional_queue(text: str) -> str | None:
    return rules.queue_name(text.strip(), "value") if text.strip() else None


def _choice(kind: type[StrEnum]) -> Callable[[str], StrEnum]:
    def parse(text: str) -> StrEnum:
        try:
            return kind(text.strip().lower())
        except ValueError:
            raise ValueError(f"{text!r} is not one of {', '.join(kind)}") from None

    return parse


def _caller_id_prefix(text: str) -> str:
    return rules.safe_text(text, "value", MAX_CALLER_ID_PREFIX)


def _timezone_name(text: str) -> str:
    return rules.zone(text.strip()).key


def parse_caller_id(text: str) -> CallerId:
    """``"Name" <number>``, ``Name <number>``, ``number`` or empty."""
    match = _CALLER_ID.match(text)
    if not match:
        raise ValueError(f'{text!r} is not a caller ID like "Support" <+4930123456>')
    name, number = (match[1] if match[1] is not None else match[2] or ""), match[3]
    if number is None and name and re.fullmatch(r"\+?[0-9 -]+", name):
        name, number = "", name  # a bare number
    checked_number = rules.contact_number(number, "caller_id") if number else ""
    return CallerId(rules.safe_text(name, "caller_id", rules.MAX_NAME_LENGTH), checked_number)


def parse_calling_hours(text: str) -> rules.CallingHours:
    """``always``, or comma-separated ``<days> <HH:MM-HH:MM>...``; days: ``mon``, ``mon-fri``, ``daily``."""
    if text.strip().lower() in {"always", ""}:
        return rules.CallingHours()
    windows: list[rules.Window] = []
    for item in text.split(","):
        words = item.split()
        if len(words) < 2:
            raise ValueError(f"{item.strip()!r} needs days and hours, e.g. 'mon-fri 09:00-18:00'")
        days = _parse_days(words[0].lower())
        for span in words[1:]:
            start, end = _parse_span(span)
            windows.extend(rules.Window(day, start, end) for day in days)
    return rules.CallingHours(tuple(windows))


def _parse_days(word: str) -> list[int]:
    if word == "daily":
        return list(range(7))
    first, _, last = word.partition("-")
    if first not in _DAYS or (last and last not in _DAYS):
        raise ValueError(f"{word!r} is not a day or day range (mon, tue, ..., sun, mon-fri, daily)")
    start, stop = _DAYS.index(first), _DAYS.index(last or first)
    if stop < start:
        raise ValueError(f"day range {word!r} runs backwards")
    return list(range(start, stop + 1))


def _parse_span(span: str) -> tuple[time, time | None]:
    match = _HOURS.match(span)
    if not match:
        raise ValueError(f"{span!r} is not a span like 09:00-18:00")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if start_h > 23 or start_m > 59 or end_m > 59 or end_h > 24 or (end_h == 24 and end_m):
        raise ValueError(f"{span!r} is not a valid time span")
    end = None if end_h == 24 else time(end_h, end_m)
    start = time(start_h, start_m)
    if end is not None and end <= start:
        raise ValueError(f"{span!r} ends before it starts (split spans that cross midnight)")
    return start, end


@dataclass(frozen=True)
class Option:
    """How one option is read from text, and its default as an admin would write it."""

    parse: Callable[[str], Any]
    default: str


_SECOND, _DAY = timedelta(seconds=1), timedelta(days=1)
OPTIONS: dict[str, Option] = {
    "enabled": Option(parse_bool, "yes"),
    "paused": Option(parse_bool, "no"),
    "horizon": Option(_bounded_duration(timedelta(minutes=1), timedelta(days=366)), "30d"),
    "default_timezone": Option(_timezone_name, "UTC"),
    "reschedule_delay": Option(_bounded_duration(_SECOND, _DAY), "1m"),
    "max_agent_wait": Option(_bounded_duration(timedelta(0), timedelta(days=30)), "1h"),
    "retry_interval": Option(_bounded_duration(_SECOND, timedelta(days=7)), "15m"),
    "max_attempts": Option(_bounded_int(1, 100), "3"),
    "max_missed_agent_rings": Option(_bounded_int(1, 100), "3"),
    "failover_queue": Option(_optional_queue, ""),
    "queue_max_attempts": Option(_bounded_int(1, 100), "3"),
    "queue_timeout": Option(_bounded_duration(_SECOND, _DAY), "5m"),
    "queue_priority": Option(_bounded_int(0, 1000), "0"),
    "agent_ring_timeout": Option(_bounded_duration(_SECOND, timedelta(minutes=10)), "20s"),
    "contact_ring_timeout": Option(_bounded_duration(_SECOND, timedelta(minutes=10)), "40s"),
    "amd": Option(parse_bool, "no"),
    "caller_id": Option(parse_caller_id, ""),
    "calling_hours": Option(parse_calling_hours, "always"),
    "announce_to_agent": Option(parse_bool, "no"),
    "on_call_in": Option(_choice(OnCallIn), "complete"),
    "call_in_agent": Option(_choice(CallInAgent), "owner"),
    "call_in_min_talk": Option(_bounded_duration(timedelta(0), timedelta(hours=1)), "20s"),
    "call_in_priority": Option(_bounded_int(0, 1000), "0"),
    "call_in_caller_id_prefix": Option(_caller_id_prefix, ""),
}
assert set(OPTIONS) == {f.name for f in fields(Settings)}, "every Settings field has exactly one Option"


def parse_value(option: str, text: str, origin: Origin) -> Assignment:
    """Check one ``option = text``; raises ``SettingError`` naming the option and its origin."""
    spec = OPTIONS.get(option)
    if spec is None:
        raise SettingError(option, origin, f"unknown option (known: {', '.join(OPTIONS)})")
    try:
        return Assignment(spec.parse(text), text.strip(), origin)
    except ValueError as error:  # ValidationError is a ValueError too
        reason = error.reason if isinstance(error, rules.ValidationError) else str(error)
        raise SettingError(option, origin, reason) from error


_DEFAULT_ASSIGNMENTS = {
    option: parse_value(option, spec.default, Origin(OriginKind.DEFAULT)) for option, spec in OPTIONS.items()
}


def is_settings_scope(section: str) -> bool:
    """``[general]``, ``[queue/<name>]`` and ``[agent/<id>]`` hold callback settings."""
    return section == GENERAL or section.startswith((QUEUE_PREFIX, AGENT_PREFIX))


def from_documents(documents: Iterable[Document], other_sections: Iterable[str] = ()) -> SettingsFile:
    """Validate the settings sections of parsed files; keep ``other_sections`` raw for their owners.

    A section named neither way, an unknown option or an option set twice in one scope is refused.
    """
    allowed_other = set(other_sections)
    layers: Layers = {}
    others: dict[str, dict[str, Assignment]] = {}
    for document in documents:
        for section in document.sections:
            settings_scope = is_settings_scope(section.name)
            _check_scope_name(
                section.name,
                settings_scope,
                allowed_other,
                Origin(OriginKind.FILE, section.name, section.file, section.line),
            )
            target = (layers if settings_scope else others).setdefault(section.name, {})
            for entry in section.entries:
                origin = Origin(OriginKind.FILE, section.name, entry.file, entry.line)
                if entry.key in target:
                    raise SettingError(entry.key, origin, f"already set at {target[entry.key].origin}")
                target[entry.key] = (
                    parse_value(entry.key, entry.value, origin)
                    if settings_scope
                    else Assignment(entry.value, entry.value, origin)
                )
    return SettingsFile(layers, others)


def check_scope(scope: str) -> str:
    """``general``, ``queue/<name>`` (``rules.queue_name``) or ``agent/<id>`` (``rules.identifier``);
    refused as a ``ValidationError`` of field ``scope``."""
    kind, _, name = scope.partition("/")
    if scope == GENERAL:
        return scope
    if f"{kind}/" == QUEUE_PREFIX:
        rules.queue_name(name, "scope")
    elif f"{kind}/" == AGENT_PREFIX:
        rules.identifier(name, "scope")
    else:
        raise rules.ValidationError("scope", f"{scope!r}: use general, queue/<name> or agent/<id>")
    return scope


def _check_scope_name(name: str, settings_scope: bool, allowed_other: set[str], origin: Origin) -> None:
    if settings_scope:
        try:
            check_scope(name)
        except rules.ValidationError as error:
            raise SettingError(f"[{name}]", origin, error.reason) from error
        return
    if name not in allowed_other:
        known = ", ".join(sorted({GENERAL, "queue/<name>", "agent/<id>", *allowed_other}))
        raise SettingError(f"[{name}]", origin, f"unknown section (known: {known})")


@dataclass(frozen=True)
class RuntimeOverrides:
    """The run-time overrides that parse, ready for ``resolve``, and the refusal of each that does not."""

    layers: Layers
    refused: tuple[SettingError, ...] = ()


def runtime_layers(overrides: Mapping[str, Mapping[str, str]]) -> RuntimeOverrides:
    """Parse run-time overrides as the store keeps them: scope -> option -> text.

    One that does not parse (written by a newer version sharing the Redis, or by hand) is left out and
    reported rather than raised: raised, it would stop every settings lookup of every agent. Setting
    one through the service refuses such a value in the first place.
    """
    layers: Layers = {}
    refused: list[SettingError] = []
    for scope, values in overrides.items():
        origin = Origin(OriginKind.RUNTIME, scope)
        try:
            check_scope(scope)
        except rules.ValidationError as error:
            refused.append(SettingError(scope, origin, error.reason))
            continue
        for option, text in values.items():
            try:
                layers.setdefault(scope, {})[option] = parse_value(option, text, origin)
            except SettingError as error:
                refused.append(error)
    return RuntimeOverrides(layers, tuple(refused))


def scope_chain(agent: str | None, queue: str | None) -> list[str]:
    """Scopes to look in, highest precedence first."""
    chain = [AGENT_PREFIX + agent] if agent else []
    chain += [QUEUE_PREFIX + queue] if queue else []
    return [*chain, GENERAL]


def _lookup(option: str, chain: list[str], stacks: list[Layers]) -> Assignment:
    for scope in chain:
        for layers in stacks:
            found = layers.get(scope, {}).get(option)
            if found is not None:
                return found
    return _DEFAULT_ASSIGNMENTS[option]


def resolve(
    file: SettingsFile, runtime: Layers, agent: str | None = None, queue: str | None = None
) -> Settings:
    """The effective settings for a callback owned by ``agent`` that came from ``queue``."""
    chain, stacks = scope_chain(agent, queue), [runtime, file.layers]
    return Settings(**{option: _lookup(option, chain, stacks).value for option in OPTIONS})


def explain(
    file: SettingsFile, runtime: Layers, agent: str | None = None, queue: str | None = None
) -> list[Effective]:
    """Every option with its effective value (as it would be written) and where it came from."""
    chain, stacks = scope_chain(agent, queue), [runtime, file.layers]
    lines = []
    for option in OPTIONS:
        found = _lookup(option, chain, stacks)
        lines.append(Effective(option, found.text, found.origin))
    return lines
