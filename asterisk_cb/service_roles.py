"""Roles through the service: an agent's or user's ``Actor``, and run-time changes of roles and agents'
roles.

The feature code (an agent's key press mid-call) and the API turn an agent id or a ``[users]`` name
into an ``Actor`` here, so every way in grants the same permissions. A change applies to every
daemon's next look-up; the service checks the actor's ``manage_settings`` permission and validates
names, permissions, agents and roles exactly as the config file's are, before anything reaches Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

from asterisk_cb import roles
from asterisk_cb.core import rules
from asterisk_cb.service_access import Actor, ErrorCode, Permission, ServiceError, require

log = logging.getLogger(__name__)
# Each run-time value that does not apply is logged once per process (it is read at every look-up);
# `asterisk-cb roles` lists them all, every time.
_logged: set[str] = set()


class RolesStore(Protocol):
    """What the roles service needs from the store: the run-time role definitions and agents' roles."""

    async def role_overrides(self) -> tuple[dict[str, str], dict[str, str]]: ...

    async def set_role(self, role: str, permissions: str) -> None: ...

    async def reset_role(self, role: str) -> None: ...

    async def set_agent_role(self, agent: str, role: str) -> None: ...

    async def reset_agent_role(self, agent: str) -> None: ...


class RolesService:
    """The config file's roles with the run-time changes over them, read and changed.

    ``agents``: the agent ids of ``[agents]`` (a role for any other would never apply)."""

    def __init__(self, store: RolesStore, file: roles.RoleLayer, agents: Collection[str]) -> None:
        self._store = store
        self._file = file
        self._agents = agents

    async def actor_for_agent(self, agent: str) -> Actor:
        """The agent as an ``Actor`` with its role's permissions; no actor asks: the faces call this to
        learn who asks. An agent not in ``[agents]`` is refused (INVALID, field ``agent``)."""
        with _as_invalid():
            roles.check_agent(agent, self._agents)
        runtime = await self._runtime()
        return Actor(agent, roles.permissions_of(agent, self._file, runtime.layer))

    async def actor_for_user(self, user: str) -> Actor:
        """The ``[users]`` user as an ``Actor`` with its role's permissions as they stand now (a role
        redefined at run time applies at once). A user not in ``[users]`` is refused (INVALID, field
        ``user``)."""
        with _as_invalid():
            roles.check_user(user, self._file)
        runtime = await self._runtime()
        return Actor(user, roles.user_permissions(user, self._file, runtime.layer))

    async def set_agent_role(self, actor: Actor, agent: str, role: str) -> None:
        """Give ``agent`` (or ``default``: every agent without an entry) ``role`` until reset."""
        require(actor, Permission.MANAGE_SETTINGS, "change roles")
        runtime = await self._runtime()
        with _as_invalid():
            roles.check_agent_key(agent, self._agents)
            roles.check_role_known(role, roles.defined_roles(self._file, runtime.layer))
        await self._store.set_agent_role(agent, role)

    async def reset_agent_role(self, actor: Actor, agent: str) -> None:
        """Drop ``agent``'s run-time role (the file's, or ``default``'s, applies again); also of an agent
        no longer in ``[agents]``, so its leftover can be cleared."""
        require(actor, Permission.MANAGE_SETTINGS, "change roles")
        with _as_invalid():
            rules.identifier(agent, "agent")
        await self._store.reset_agent_role(agent)

    async def define_role(self, actor: Actor, role: str, permissions: Iterable[str]) -> None:
        """Define ``role`` (new, or over the file's or built-in one) with ``permissions`` until reset;
        none is allowed: a role that may do nothing."""
        require(actor, Permission.MANAGE_SETTINGS, "change roles")
        with _as_invalid():
            roles.check_role_name(role)
        names = [name.strip() for name in permissions]
        try:
            granted = roles.parse_permissions(",".join(names)) if any(names) else frozenset()
        except ValueError as error:
            raise ServiceError(ErrorCode.INVALID, f"permissions: {error}", "permissions") from error
        await self._store.set_role(role, roles.format_permissions(granted))

    async def reset_role(self, actor: Actor, role: str) -> None:
        """Drop ``role``'s run-time definition (the file's or built-in one applies again). A role that
        exists only at run time and that agents still hold is refused (CONFLICT): give them another
        role first."""
        require(actor, Permission.MANAGE_SETTINGS, "change roles")
        with _as_invalid():
            roles.check_role_name(role)
        runtime = await self._runtime()
        if role not in {*roles.BUILT_IN.roles, *self._file.roles}:
            holders = sorted(agent for agent, held in runtime.layer.agents.items() if held.value == role)
            if holders:
                message = (
                    f"role {role!r} is held by {', '.join(holders)}: "
                    "give them another role (roles set-agent) or reset theirs first"
                )
                raise ServiceError(ErrorCode.CONFLICT, message, "role")
        await self._store.reset_role(role)

    async def explain(self, actor: Actor) -> list[roles.RoleLine]:
        """Every role, ``default``, every agent and every user, each with its value and origin; then the
        run-time values that do not apply and why."""
        require(actor, Permission.MANAGE_SETTINGS, "read the roles")
        return roles.explain(self._file, await self._runtime(), self._agents)

    async def _runtime(self) -> roles.RuntimeRoles:
        """The run-time values over the file; those that do not apply are left out and logged once."""
        runtime = roles.runtime_roles(*await self._store.role_overrides(), self._file, self._agents)
        for error in runtime.refused:
            if str(error) not in _logged:
                _logged.add(str(error))
                log.error("run-time role ignored", extra={"error": str(error)})
        return runtime


@contextmanager
def _as_invalid() -> Iterator[None]:
    """A refused name, agent or role as an INVALID of its field."""
    try:
        yield
    except rules.ValidationError as error:
        raise ServiceError(ErrorCode.INVALID, str(error), error.field) from error
