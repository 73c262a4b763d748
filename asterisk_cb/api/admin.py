"""``/api/v1/settings``, ``/roles``, ``/agents/{agent}/role`` and ``/me``: the CLI's ``check-config``
(settings part), ``settings set/reset`` and ``roles ...`` over HTTP, through the same services.

A run-time change applies to every daemon's next read; the services check ``manage_settings`` and
validate exactly as the config file is validated.
"""

from __future__ import annotations

from asterisk_cb.api.door import door_of
from asterisk_cb.api.errors import ApiError
from asterisk_cb.api.models import (
    AgentRole,
    Me,
    QueuesReply,
    RoleDefinition,
    RoleLineOut,
    RolesReply,
    SettingChange,
    SettingLine,
    SettingReset,
    SettingsQuery,
    SettingsReply,
)
from asterisk_cb.api.routing import Call, Route
from asterisk_cb.core.settings import OriginKind
from asterisk_cb.service_access import ErrorCode, Permission
from asterisk_cb.telephony.ami import AmiError


async def show_settings(call: Call) -> SettingsReply:
    query: SettingsQuery = call.query
    lines = await door_of(call.request).settings().explain(call.who, query.agent, query.queue)
    return SettingsReply(
        settings=[
            SettingLine(
                option=line.option,
                value=line.text,
                origin=str(line.origin),
                runtime=line.origin.kind is OriginKind.RUNTIME,
            )
            for line in lines
        ]
    )


async def set_setting(call: Call) -> SettingsReply:
    """Override one option in a scope until reset; the reply is the scope's settings."""
    body: SettingChange = call.body
    await door_of(call.request).settings().set_setting(call.who, body.scope, body.option, body.value)
    return await show_settings(_scope_query(call, body.scope))


async def reset_setting(call: Call) -> SettingsReply:
    """Drop one run-time override, or every one of the scope."""
    query: SettingReset = call.query
    await door_of(call.request).settings().reset_setting(call.who, query.scope, query.option)
    return await show_settings(_scope_query(call, query.scope))


def _scope_query(call: Call, scope: str) -> Call:
    """A call reading the effective settings of ``scope`` (already checked by the service)."""
    kind, _, name = scope.partition("/")
    query = SettingsQuery(agent=name if kind == "agent" else None, queue=name if kind == "queue" else None)
    return Call(call.request, call.actor, call.path, query)


async def show_roles(call: Call) -> RolesReply:
    lines = await door_of(call.request).roles.explain(call.who)
    return RolesReply(
        lines=[
            RoleLineOut(
                section=line.section,
                name=line.name,
                value=line.text,
                origin=str(line.origin),
                ignored=line.ignored,
            )
            for line in lines
        ]
    )


async def define_role(call: Call) -> RolesReply:
    body: RoleDefinition = call.body
    await door_of(call.request).roles.define_role(
        call.who, call.path["role"], [p.value for p in body.permissions]
    )
    return await show_roles(call)


async def reset_role(call: Call) -> RolesReply:
    await door_of(call.request).roles.reset_role(call.who, call.path["role"])
    return await show_roles(call)


async def set_agent_role(call: Call) -> RolesReply:
    body: AgentRole = call.body
    await door_of(call.request).roles.set_agent_role(call.who, call.path["agent"], body.role)
    return await show_roles(call)


async def reset_agent_role(call: Call) -> RolesReply:
    await door_of(call.request).roles.reset_agent_role(call.who, call.path["agent"])
    return await show_roles(call)


async def list_queues(call: Call) -> QueuesReply:
    """The queues Asterisk has, for a failover-queue picker; 503 while AMI is down."""
    try:
        queues = await door_of(call.request).queues()
    except AmiError as error:
        raise ApiError(ErrorCode.UNAVAILABLE, f"Asterisk's queues cannot be read now: {error}") from None
    return QueuesReply(queues=queues)


async def me(call: Call) -> Me:
    """Who the token stands for and what its role allows now (a panel greys out what it may not do)."""
    held = [permission for permission in Permission if call.who.may(permission)]
    return Me(name=call.who.name, permissions=held)


ROUTES = (
    Route("GET", "/me", me, "The caller and its permissions", Me, tag="access"),
    Route("GET", "/queues", list_queues, "The queues Asterisk has", QueuesReply, tag="settings"),
    Route(
        "GET",
        "/settings",
        show_settings,
        "Effective settings of a scope, each with its origin",
        SettingsReply,
        query=SettingsQuery,
        tag="settings",
    ),
    Route(
        "PUT",
        "/settings",
        set_setting,
        "Override an option in a scope until reset",
        SettingsReply,
        body=SettingChange,
        tag="settings",
    ),
    Route(
        "DELETE",
        "/settings",
        reset_setting,
        "Drop a run-time override (or a scope's every one)",
        SettingsReply,
        query=SettingReset,
        tag="settings",
    ),
    Route(
        "GET",
        "/roles",
        show_roles,
        "Roles, their permissions and each agent's role",
        RolesReply,
        tag="access",
    ),
    Route(
        "PUT",
        "/roles/{role}",
        define_role,
        "Define a role's permissions at run time",
        RolesReply,
        body=RoleDefinition,
        refusals=(409,),
        tag="access",
    ),
    Route(
        "DELETE",
        "/roles/{role}",
        reset_role,
        "Drop a role's run-time definition",
        RolesReply,
        refusals=(409,),
        tag="access",
    ),
    Route(
        "PUT",
        "/agents/{agent}/role",
        set_agent_role,
        "Give an agent (or default) a role at run time",
        RolesReply,
        body=AgentRole,
        tag="access",
    ),
    Route(
        "DELETE",
        "/agents/{agent}/role",
        reset_agent_role,
        "Drop an agent's run-time role",
        RolesReply,
        tag="access",
    ),
)
