"""Roles through the service (an agent's actor, run-time changes: permission, validation), on the lab's
Redis."""

from __future__ import annotations

import logging
import uuid

import pytest
from test_service import AGENT_1001, Directory, refused

from asterisk_cb import roles
from asterisk_cb.core import ini
from asterisk_cb.core.settings import OriginKind, from_documents
from asterisk_cb.deployment import SECTIONS
from asterisk_cb.service import ADMIN, Actor, ErrorCode, Permission, RolesService
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab

SETTINGS_ADMIN = Actor("ops", frozenset({Permission.MANAGE_SETTINGS}))
SUPERVISOR = Actor("boss", frozenset({Permission.SCHEDULE, Permission.MANAGE, Permission.VIEW_ALL}))
FILE = (
    "[roles]\nteamlead = schedule_callback, view_all_callbacks\n[agent_roles]\n1002 = teamlead\n"
    "[users]\nanna = teamlead\n"
)


@pytest.fixture
def service(store: Store) -> RolesService:
    sections = from_documents([ini.parse(FILE, "cb.conf")], SECTIONS).other_sections
    file = roles.from_sections(
        sections["roles"], sections["agent_roles"], Directory.agents, sections["users"]
    )
    return RolesService(store, file, Directory.agents)


async def granted(service: RolesService, agent: str) -> set[str]:
    actor = await service.actor_for_agent(agent)
    assert actor.name == agent
    return {permission.value for permission in actor.permissions}


async def agent_line(service: RolesService, agent: str) -> tuple[str, OriginKind]:
    (line,) = [
        line
        for line in await service.explain(ADMIN)
        if line.section == roles.AGENT_ROLES and line.name == agent and not line.ignored
    ]
    return line.text, line.origin.kind


async def test_an_agent_gets_its_roles_permissions(service: RolesService) -> None:
    assert await granted(service, "1001") == {"schedule_callback"}  # built-in default: agent
    assert await granted(service, "1002") == {"schedule_callback", "view_all_callbacks"}


async def test_a_run_time_role_wins_until_reset(service: RolesService) -> None:
    await service.set_agent_role(SETTINGS_ADMIN, "1002", "supervisor")
    assert await granted(service, "1002") == {"schedule_callback", "manage_callbacks", "view_all_callbacks"}
    assert await agent_line(service, "1002") == ("supervisor", OriginKind.RUNTIME)
    await service.reset_agent_role(SETTINGS_ADMIN, "1002")
    assert await granted(service, "1002") == {"schedule_callback", "view_all_callbacks"}
    assert await agent_line(service, "1002") == ("teamlead", OriginKind.FILE)


async def test_a_role_defined_at_run_time_can_be_the_default(service: RolesService) -> None:
    await service.define_role(ADMIN, "trainee", [])
    await service.set_agent_role(ADMIN, "default", "trainee")
    assert await granted(service, "1001") == set()
    assert await agent_line(service, "1001") == ("trainee (default)", OriginKind.RUNTIME)
    await service.define_role(ADMIN, "teamlead", ["schedule_callback", " manage_callbacks"])
    assert await granted(service, "1002") == {"schedule_callback", "manage_callbacks"}  # over the file's
    await service.reset_role(ADMIN, "teamlead")
    assert await granted(service, "1002") == {"schedule_callback", "view_all_callbacks"}


async def test_a_run_time_role_agents_hold_cannot_be_reset_from_under_them(service: RolesService) -> None:
    await service.define_role(ADMIN, "night", ["view_all_callbacks"])
    await service.set_agent_role(ADMIN, "1001", "night")
    error = await refused(service.reset_role(ADMIN, "night"), ErrorCode.CONFLICT, "role")
    assert error.message == (
        "role 'night' is held by 1001: give them another role (roles set-agent) or reset theirs first"
    )
    await service.reset_agent_role(ADMIN, "1001")
    await service.reset_role(ADMIN, "night")
    assert "night" not in {line.name for line in await service.explain(ADMIN)}


@pytest.mark.parametrize("actor", [AGENT_1001, SUPERVISOR])
async def test_changing_or_reading_roles_needs_manage_settings(service: RolesService, actor: Actor) -> None:
    await refused(service.set_agent_role(actor, "1001", "admin"), ErrorCode.FORBIDDEN)
    await refused(service.reset_agent_role(actor, "1002"), ErrorCode.FORBIDDEN)
    await refused(service.define_role(actor, "agent", list(Permission)), ErrorCode.FORBIDDEN)
    await refused(service.reset_role(actor, "teamlead"), ErrorCode.FORBIDDEN)
    await refused(service.explain(actor), ErrorCode.FORBIDDEN)
    assert await granted(service, "1001") == {"schedule_callback"}


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (("set_agent_role", "9999", "admin"), "agent", "unknown agent '9999' (not in [agents])"),
        (("set_agent_role", "1001;x", "admin"), "agent", "'1001;x' is not a valid name"),
        (("set_agent_role", "1001", "boss"), "role", "unknown role 'boss' (known: admin, agent, supervisor"),
        (("define_role", "team lead", ["schedule_callback"]), "role", "'team lead' is not a valid name"),
        (("define_role", "x", ["schedule_callback", "fly"]), "permissions", "'fly' is not a permission"),
        (("reset_agent_role", "", None), "agent", "'' is not a valid name"),
        (("reset_role", "a/b", None), "role", "'a/b' is not a valid name"),
    ],
)
async def test_a_bad_agent_role_or_permission_is_refused_naming_the_field(
    service: RolesService, store: Store, change: tuple[str, str, object], field: str, reason: str
) -> None:
    method, *args = change
    call = getattr(service, method)(ADMIN, *(arg for arg in args if arg is not None))
    error = await refused(call, ErrorCode.INVALID, field)
    assert reason in error.message
    assert await store.role_overrides() == ({}, {})  # nothing was written


@pytest.mark.parametrize("agent", ["9999", "default", "a b"])
async def test_an_actor_for_an_agent_not_in_agents_is_refused(service: RolesService, agent: str) -> None:
    await refused(service.actor_for_agent(agent), ErrorCode.INVALID, "agent")


async def test_a_left_over_role_of_a_removed_agent_can_be_reset(service: RolesService, store: Store) -> None:
    await store.set_agent_role("1003", "admin")  # set while 1003 was in [agents]
    await service.reset_agent_role(ADMIN, "1003")
    assert await store.role_overrides() == ({}, {})


async def test_a_run_time_value_that_does_not_hold_is_ignored_listed_and_logged_once(
    service: RolesService, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Written by a newer version sharing the Redis (or by hand): every look-up still answers."""
    bad = f"fly-{uuid.uuid4().hex[:6]}"
    await store.set_role("teamlead", f"schedule_callback, {bad}")
    gone = f"gone-{uuid.uuid4().hex[:6]}"
    await store.set_agent_role("1001", gone)
    with caplog.at_level(logging.ERROR, "asterisk_cb.service_roles"):
        for _ in range(3):
            assert await granted(service, "1002") == {"schedule_callback", "view_all_callbacks"}
            assert await granted(service, "1001") == {"schedule_callback"}
    known = ", ".join(Permission)
    assert [record.error for record in caplog.records] == [  # type: ignore[attr-defined]
        f"runtime override [roles]: teamlead: '{bad}' is not a permission (known: {known})",
        f"runtime override [agent_roles]: 1001: unknown role '{gone}' (known: admin, agent, supervisor, "
        "teamlead)",
    ]
    ignored = [(line.name, line.ignored) for line in await service.explain(ADMIN) if line.ignored]
    assert [name for name, _ in ignored] == ["teamlead", "1001"]


async def test_a_user_gets_its_roles_permissions_as_they_stand_now(service: RolesService) -> None:
    assert await service.actor_for_user("anna") == Actor(
        "anna", frozenset({Permission.SCHEDULE, Permission.VIEW_ALL})
    )
    await service.define_role(ADMIN, "teamlead", ["manage_settings"])
    assert await service.actor_for_user("anna") == Actor("anna", frozenset({Permission.MANAGE_SETTINGS}))
    (line,) = [line for line in await service.explain(ADMIN) if line.section == roles.USERS]
    assert (line.name, line.text, line.origin.kind) == ("anna", "teamlead", OriginKind.FILE)


@pytest.mark.parametrize("user", ["bob", "1001", "a b", ""])
async def test_an_actor_for_a_user_not_in_users_is_refused(service: RolesService, user: str) -> None:
    await refused(service.actor_for_user(user), ErrorCode.INVALID, "user")
