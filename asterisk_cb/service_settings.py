"""Run-time settings through the service: read the effective values, set and reset overrides.

An override changes how every daemon places calls from its next read on, so a face never writes one
itself: the service checks the actor's ``manage_settings`` permission and validates scope and value
exactly as the config file's are, before anything reaches Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from asterisk_cb.core.rules import ValidationError
from asterisk_cb.core.settings import (
    AGENT_PREFIX,
    OPTIONS,
    Effective,
    Layers,
    Origin,
    OriginKind,
    SettingError,
    Settings,
    SettingsFile,
    check_scope,
    explain,
    parse_value,
    resolve,
)
from asterisk_cb.service_access import Actor, ErrorCode, Permission, ServiceError, require


class SettingsStore(Protocol):
    """What the settings service needs from the store: the run-time overrides."""

    async def setting_layers(self) -> Layers: ...

    async def set_setting(self, scope: str, option: str, value: str) -> None: ...

    async def reset_setting(self, scope: str, option: str | None = None) -> None: ...


class Agents(Protocol):
    """Which agents exist (the config's ``[agents]``): an override for any other would never apply."""

    def has_agent(self, agent: str) -> bool: ...


async def effective_settings(
    file: SettingsFile, store: SettingsStore, agent: str | None, queue: str | None
) -> Settings:
    """Run-time overrides from the store over the file's values, agent > queue > general > default."""
    return resolve(file, await store.setting_layers(), agent, queue)


class SettingsService:
    """The config file's settings with the run-time overrides over them, read and changed."""

    def __init__(self, store: SettingsStore, file: SettingsFile, agents: Agents) -> None:
        self._store = store
        self._file = file
        self._agents = agents

    async def effective(self, agent: str | None, queue: str | None) -> Settings:
        """The settings a callback of ``agent`` from ``queue`` runs with (a ``CallbackService``'s
        ``settings_for``); no actor: the service asks this for its own checks."""
        return await effective_settings(self._file, self._store, agent, queue)

    async def explain(
        self, actor: Actor, agent: str | None = None, queue: str | None = None
    ) -> list[Effective]:
        """Every option's effective value for a scope and where it comes from (default, file, run time)."""
        require(actor, Permission.MANAGE_SETTINGS, "read the settings")
        return explain(self._file, await self._store.setting_layers(), agent, queue)

    async def set_setting(self, actor: Actor, scope: str, option: str, value: str) -> None:
        """Override ``option`` in ``scope`` until reset; a bad scope, option or value is refused."""
        require(actor, Permission.MANAGE_SETTINGS, "change settings")
        _check_scope(scope)
        agent = scope.removeprefix(AGENT_PREFIX)
        if agent != scope and not self._agents.has_agent(agent):
            message = f"scope: unknown agent {agent!r} (not in [agents])"
            raise ServiceError(ErrorCode.INVALID, message, "scope")
        with _as_invalid("option" if option not in OPTIONS else "value"):
            parse_value(option, value, Origin(OriginKind.RUNTIME, scope))
        await self._store.set_setting(scope, option, value)

    async def reset_setting(self, actor: Actor, scope: str, option: str | None = None) -> None:
        """Drop the override of ``option`` in ``scope`` (every override of the scope without one); also
        of an agent no longer in ``[agents]``, so its leftovers can be cleared."""
        require(actor, Permission.MANAGE_SETTINGS, "change settings")
        _check_scope(scope)
        await self._store.reset_setting(scope, option)


def _check_scope(scope: str) -> None:
    try:
        check_scope(scope)
    except ValidationError as error:
        raise ServiceError(ErrorCode.INVALID, str(error), "scope") from error


@contextmanager
def _as_invalid(field: str) -> Iterator[None]:
    """A ``SettingError`` (it names the option and where it was written) as an INVALID ``field``."""
    try:
        yield
    except SettingError as error:
        raise ServiceError(ErrorCode.INVALID, str(error), field) from error
