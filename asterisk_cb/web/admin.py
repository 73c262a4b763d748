"""The admin's page (``manage_settings``): the feature switch and the options an admin tunes most
(reschedule delay, retry interval, max attempts, failover queue from Asterisk's queues, calling hours)
for every callback (scope ``general``), the roles with their permissions, and each agent's role.

Every change goes through the same service calls as ``asterisk-cb settings set`` and ``roles``, with
the same validation: a refused value comes back beside its option.
"""

from __future__ import annotations

from aiohttp import web

from asterisk_cb.service_access import Permission
from asterisk_cb.telephony.ami import AmiError
from asterisk_cb.web.forms import Problems, asked
from asterisk_cb.web.panel import MOUNT, PageRoute, Visit
from asterisk_cb.web.render import page

SCOPE = "general"
TUNED = ("enabled", "reschedule_delay", "retry_interval", "max_attempts", "failover_queue", "calling_hours")


async def admin(visit: Visit) -> web.StreamResponse:
    return await _admin_page(visit, Problems())


async def _admin_page(visit: Visit, problems: Problems, status: int = 200) -> web.Response:
    door, actor = visit.door, visit.signed.actor
    lines = {line.option: line for line in await door.settings().explain(actor)}
    try:
        queues, queues_problem = await door.queues(), None
    except AmiError as error:
        queues, queues_problem = [], f"Asterisk's queues cannot be read now ({error}): type the name"
    return page(
        visit.request,
        "admin.html",
        status=status,
        lines=[lines[option] for option in TUNED],
        queues=queues,
        queues_problem=queues_problem,
        roles=await door.roles.explain(actor),
        permissions=[permission.value for permission in Permission],
        problems=problems,
        csrf=visit.csrf,
    )


async def set_setting(visit: Visit) -> web.StreamResponse:
    """Override one option for every callback, or (``reset``) go back to the config file's value."""
    option, problems = visit.form.get("option", ""), Problems()
    settings = visit.door.settings()
    if "reset" in visit.form:
        call = settings.reset_setting(visit.signed.actor, SCOPE, option)
    else:
        call = settings.set_setting(visit.signed.actor, SCOPE, option, visit.form.get("value", ""))
    await asked(call, problems)
    return await _done(visit, problems, option)


async def define_role(visit: Visit) -> web.StreamResponse:
    granted = list(visit.every("permission"))
    problems = Problems()
    await asked(
        visit.door.roles.define_role(visit.signed.actor, visit.form.get("role", ""), granted), problems
    )
    return await _done(visit, problems, "role")


async def set_agent_role(visit: Visit) -> web.StreamResponse:
    form, problems = visit.form, Problems()
    await asked(
        visit.door.roles.set_agent_role(visit.signed.actor, form.get("agent", ""), form.get("role", "")),
        problems,
    )
    return await _done(visit, problems, "agent_role")


async def _done(visit: Visit, problems: Problems, where: str) -> web.StreamResponse:
    """Back to the page (a reload does not post again), or the page with the refusal beside ``where``:
    the service names ``value``, ``role``, ``agent``...; shown beside the form that was sent."""
    if not problems:
        raise web.HTTPSeeOther(f"{MOUNT}/admin#{where}")
    problems.by_field = {where: " ".join(problems.by_field.values())}
    return await _admin_page(visit, problems, status=422)


ROUTES = (
    PageRoute("GET", "/admin", admin, Permission.MANAGE_SETTINGS),
    PageRoute("POST", "/admin/settings", set_setting, Permission.MANAGE_SETTINGS),
    PageRoute("POST", "/admin/roles", define_role, Permission.MANAGE_SETTINGS),
    PageRoute("POST", "/admin/agent-role", set_agent_role, Permission.MANAGE_SETTINGS),
)
