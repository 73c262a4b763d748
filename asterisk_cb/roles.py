"""Roles: named sets of permissions, and which role each agent holds (pure: no IO).

Three layers, highest first, per entry: a value changed at run time (kept in the store), the config
file's ``[roles]`` and ``[agent_roles]``, the built-in roles below. An agent without an entry of its
own holds the role of the ``default`` entry (built-in: ``agent``). ``[users]`` names people who are
not agents (a supervisor, an admin reaching the API with a token) and the role each holds; a user's
role is fixed by the file, its permissions are the role's as they stand (a run-time ``roles define``
applies at once). The faces turn an agent id or user name into an ``Actor`` with its role's
permissions (the feature code's agent, the API's tokens); the CLI acts as an administrator and holds
no role.

A run-time value that no longer holds (a role reset under an agent, a permission of a newer version,
an agent removed from ``[agents]``) is left out and reported, never raised: raised, it would stop
every agent's look-up. The file's values are checked at load, so they always hold.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from asterisk_cb.core import rules
from asterisk_cb.core.settings import Assignment, Origin, OriginKind, SettingError
from asterisk_cb.service_access import Permission

ROLES = "roles"
AGENT_ROLES = "agent_roles"
USERS = "users"
DEFAULT = "default"  # the [agent_roles] entry for agents not listed

_BUILT_IN_ROLES = {
    "agent": frozenset({Permission.SCHEDULE}),
    "supervisor": frozenset({Permission.SCHEDULE, Permission.MANAGE, Permission.VIEW_ALL}),
    "admin": frozenset(Permission),
}


def format_permissions(permissions: Iterable[Permission]) -> str:
    """Permissions as written in ``[roles]``, in ``Permission``'s order (empty: may do nothing)."""
    held = set(permissions)
    return ", ".join(permission.value for permission in Permission if permission in held)


def parse_permissions(text: str) -> frozenset[Permission]:
    """``schedule_callback, view_all_callbacks``; empty means none. Raises ``ValueError``."""
    if not text.strip():
        return frozenset()
    known = {permission.value: permission for permission in Permission}
    permissions = set()
    for name in (part.strip() for part in text.split(",")):
        if name not in known:
            raise ValueError(f"{name!r} is not a permission (known: {', '.join(known)})")
        permissions.add(known[name])
    return frozenset(permissions)


@dataclass(frozen=True)
class RoleLayer:
    """One layer: role -> its permissions (``Assignment.value``: a frozenset of ``Permission``), and
    agent id or ``default`` -> its role (``Assignment.value``: the role's name); ``users``: user name ->
    its role's name (only the file's layer has users: they are not changed at run time)."""

    roles: Mapping[str, Assignment]
    agents: Mapping[str, Assignment]
    users: Mapping[str, Assignment] = field(default_factory=dict)


def _built_in() -> RoleLayer:
    origin = Origin(OriginKind.DEFAULT, ROLES)
    roles = {
        role: Assignment(permissions, format_permissions(permissions), origin)
        for role, permissions in _BUILT_IN_ROLES.items()
    }
    return RoleLayer(roles, {DEFAULT: Assignment("agent", "agent", Origin(OriginKind.DEFAULT, AGENT_ROLES))})


BUILT_IN = _built_in()
NO_ROLES = RoleLayer({}, {})


def check_role_name(role: str) -> str:
    """A role's name is an identifier, like an agent id (``rules.ValidationError`` of field ``role``)."""
    return rules.identifier(role, "role")


def check_agent(agent: str, known_agents: Collection[str]) -> str:
    """An agent of ``[agents]``: a role for any other would never apply, yet look granted in every
    listing (``rules.ValidationError`` of field ``agent``)."""
    rules.identifier(agent, "agent")
    if agent not in known_agents:
        raise rules.ValidationError("agent", f"unknown agent {agent!r} (not in [agents])")
    return agent


def check_agent_key(agent: str, known_agents: Collection[str]) -> str:
    """An ``[agent_roles]`` key: ``default`` or an agent of ``[agents]``."""
    return agent if agent == DEFAULT else check_agent(agent, known_agents)


def check_user(user: str, file: RoleLayer) -> str:
    """A user of ``[users]`` (``rules.ValidationError`` of field ``user``)."""
    rules.identifier(user, "user")
    if user not in file.users:
        raise rules.ValidationError("user", f"unknown user {user!r} (not in [users])")
    return user


def check_role_known(role: str, roles: Collection[str]) -> str:
    """A role an agent is given must be defined (built in, in the file, or at run time)."""
    if role not in roles:
        raise rules.ValidationError("role", f"unknown role {role!r} (known: {', '.join(sorted(roles))})")
    return role


Parse = Callable[[str, str], tuple[Any, str]]
"""(key, text as written) -> (value, text as shown); raises ``ValueError``."""


def from_sections(
    roles: Mapping[str, Assignment],
    agent_roles: Mapping[str, Assignment],
    known_agents: Collection[str],
    users: Mapping[str, Assignment] | None = None,
) -> RoleLayer:
    """The file's ``[roles]``, ``[agent_roles]`` and ``[users]`` (kept raw by ``core.settings``), checked;
    a bad name, permission, agent, user or role raises ``SettingError`` naming the file, the line and
    the option."""

    def raw(section: Mapping[str, Assignment]) -> dict[str, tuple[str, Origin]]:
        return {key: (found.value, found.origin) for key, found in section.items()}

    layer, refused = _layer(raw(roles), raw(agent_roles), known_agents, BUILT_IN.roles)
    defined = {*BUILT_IN.roles, *layer.roles}

    def user_entry(user: str, text: str) -> tuple[str, str]:
        """A name of its own: a user named like an agent would make an actor's name (recorded as
        created_by) and a token's identity ambiguous."""
        rules.identifier(user, "user")
        if user in known_agents:
            raise rules.ValidationError(
                "user", f"{user!r} is an agent id of [agents]: give the user another name"
            )
        role = check_role_known(text.strip(), defined)
        return role, role

    parsed_users, refused_users = _entries(raw(users or {}), user_entry)
    if refused or refused_users:
        raise [*refused, *refused_users][0]
    return RoleLayer(layer.roles, layer.agents, parsed_users)


@dataclass(frozen=True)
class RuntimeRoles:
    """The run-time values that hold, as a layer, and the refusal of each that does not."""

    layer: RoleLayer
    refused: tuple[SettingError, ...] = ()


def runtime_roles(
    roles: Mapping[str, str], agent_roles: Mapping[str, str], file: RoleLayer, known_agents: Collection[str]
) -> RuntimeRoles:
    """Parse run-time values as the store keeps them (role -> permissions text, agent -> role) over
    ``file``; one that does not hold is left out (the file's or built-in value applies) and reported."""

    def raw(values: Mapping[str, str], section: str) -> dict[str, tuple[str, Origin]]:
        return {key: (text, Origin(OriginKind.RUNTIME, section)) for key, text in values.items()}

    defined = {**BUILT_IN.roles, **file.roles}
    layer, refused = _layer(raw(roles, ROLES), raw(agent_roles, AGENT_ROLES), known_agents, defined)
    return RuntimeRoles(layer, tuple(refused))


def _layer(
    roles: Mapping[str, tuple[str, Origin]],
    agent_roles: Mapping[str, tuple[str, Origin]],
    known_agents: Collection[str],
    defined_below: Collection[str],
) -> tuple[RoleLayer, list[SettingError]]:
    """A layer's entries that hold (roles first: an agent may hold a role of this layer or below)."""
    parsed_roles, refused = _entries(roles, _role_entry)
    defined = {*defined_below, *parsed_roles}

    def agent_entry(agent: str, text: str) -> tuple[str, str]:
        check_agent_key(agent, known_agents)
        role = check_role_known(text.strip(), defined)
        return role, role

    parsed_agents, refused_agents = _entries(agent_roles, agent_entry)
    return RoleLayer(parsed_roles, parsed_agents), [*refused, *refused_agents]


def _role_entry(role: str, text: str) -> tuple[frozenset[Permission], str]:
    check_role_name(role)
    permissions = parse_permissions(text)
    return permissions, format_permissions(permissions)


def _entries(
    entries: Mapping[str, tuple[str, Origin]], parse: Parse
) -> tuple[dict[str, Assignment], list[SettingError]]:
    parsed: dict[str, Assignment] = {}
    refused: list[SettingError] = []
    for key, (text, origin) in entries.items():
        try:
            value, shown = parse(key, text)
        except ValueError as error:  # ValidationError is a ValueError too
            reason = error.reason if isinstance(error, rules.ValidationError) else str(error)
            refused.append(SettingError(key, origin, reason))
            continue
        parsed[key] = Assignment(value, shown, origin)
    return parsed, refused


# ---- resolution ---------------------------------------------------------------------------------


def defined_roles(file: RoleLayer, runtime: RoleLayer) -> dict[str, Assignment]:
    """Every role and its effective permissions: run time over the file over the built-in ones."""
    return {**BUILT_IN.roles, **file.roles, **runtime.roles}


def role_of(agent: str, file: RoleLayer, runtime: RoleLayer) -> tuple[Assignment, bool]:
    """The agent's role (run time over file over built in, its own entry before ``default``), and
    whether it came from the ``default`` entry."""
    for key in (agent, DEFAULT):
        for layer in (runtime, file, BUILT_IN):
            found = layer.agents.get(key)
            if found is not None:
                return found, key == DEFAULT
    raise AssertionError("the built-in layer has a default role")


def permissions_of(agent: str, file: RoleLayer, runtime: RoleLayer) -> frozenset[Permission]:
    """What ``agent`` may do: its role's permissions (each layer's entries name roles defined)."""
    role, _ = role_of(agent, file, runtime)
    return _role_permissions(role.value, file, runtime)


def user_permissions(user: str, file: RoleLayer, runtime: RoleLayer) -> frozenset[Permission]:
    """What ``user`` (of ``file.users``) may do: its role's permissions as they stand now. Its role is
    built in or the file's (checked at load), so a run-time reset never leaves it undefined."""
    return _role_permissions(file.users[user].value, file, runtime)


def _role_permissions(role: str, file: RoleLayer, runtime: RoleLayer) -> frozenset[Permission]:
    permissions: frozenset[Permission] = defined_roles(file, runtime)[role].value
    return permissions


@dataclass(frozen=True)
class RoleLine:
    """One line of ``asterisk-cb roles`` and ``check-config``: a role and its permissions, or an agent
    (or ``default``) and its role, each with where it came from; ``ignored``: why a run-time value
    does not apply."""

    section: str  # ROLES, AGENT_ROLES or USERS
    name: str
    text: str
    origin: Origin
    ignored: str = ""


def explain(file: RoleLayer, runtime: RuntimeRoles, known_agents: Iterable[str]) -> list[RoleLine]:
    """Every role (built-in ones first), then ``default`` and every agent with its role, then every
    user with its role, then the run-time values that do not apply and why."""
    roles = defined_roles(file, runtime.layer)
    order = [*BUILT_IN.roles, *sorted(set(roles) - set(BUILT_IN.roles))]
    lines = [RoleLine(ROLES, role, roles[role].text, roles[role].origin) for role in order]
    default, _ = role_of(DEFAULT, file, runtime.layer)
    lines.append(RoleLine(AGENT_ROLES, DEFAULT, default.text, default.origin))
    for agent in sorted(known_agents):
        role, by_default = role_of(agent, file, runtime.layer)
        lines.append(
            RoleLine(AGENT_ROLES, agent, f"{role.text} (default)" if by_default else role.text, role.origin)
        )
    lines += [RoleLine(USERS, user, role.text, role.origin) for user, role in sorted(file.users.items())]
    lines += [
        RoleLine(error.origin.scope or "", error.option, "", error.origin, error.reason)
        for error in runtime.refused
    ]
    return lines
