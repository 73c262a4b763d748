"""``asterisk-cb``: the admin's command line. Every change goes through the service, like the API's.

The CLI runs on the PBX host with read access to the config file, so it acts as an administrator
(recorded as ``cli:<login name>``). Errors are one line on stderr and a non-zero exit code, never a
traceback: 2 for bad usage or input, 3 for a refusal (not found, conflict), 4 when Redis is unreachable.

``cancel``, ``reschedule`` and ``assign`` of a callback whose call rings are handed to the daemon
holding the call; the command waits ``--wait`` seconds for it and says what happened: applied (the
ring was hung up), refused (exit 3: the contact answered first), or requested and not applied yet
(exit 0: the request is on record and the daemon, or the one taking the call over, will deal with it).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from asterisk_cb import config, daemon, deployment, doctor, logs, roles, secrecy
from asterisk_cb.core import rules
from asterisk_cb.core.durations import parse_duration
from asterisk_cb.core.inputs import Edit
from asterisk_cb.core.model import Callback, FinishReason, State
from asterisk_cb.core.settings import SettingError, SettingsFile, explain, resolve
from asterisk_cb.keys import Keys
from asterisk_cb.records import cdr_calls, cdr_read, migrate
from asterisk_cb.records import settings as records_settings
from asterisk_cb.records.cdr_sql import CallsFilter
from asterisk_cb.records.database import DatabaseDown
from asterisk_cb.service import (
    ADMIN,
    DEFAULT_LIMIT,
    REQUEST_WAIT_S,
    Actor,
    CallbackService,
    Change,
    ChangeOutcome,
    ErrorCode,
    Permission,
    Query,
    RolesService,
    ScheduleRequest,
    ServiceError,
    SettingsService,
)
from asterisk_cb.service_events import EventGroupsService
from asterisk_cb.service_index import ContactIndexService
from asterisk_cb.service_passwords import PasswordService
from asterisk_cb.service_tokens import DEFAULT_LIFETIME, TokenInfo, TokenService
from asterisk_cb.store import Store
from asterisk_cb.table import render_table

CONFIG_ENV = "ASTERISK_CB_CONFIG"
EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE = 2, 3, 4
TYPE_CALLBACKS = "scheduled-callbacks"  # calls --type: the CDR report's name for them
MAX_WAIT_S = 600  # --wait: longer than any lease takeover, short enough to be a typo's limit


@dataclass(frozen=True)
class Context:
    """What every command gets: the loaded config and a way to open the store."""

    file: SettingsFile
    site: deployment.Deployment
    actor: Actor


@asynccontextmanager
async def open_store(site: deployment.Deployment) -> AsyncIterator[Store]:
    redis = site.redis.connect("asterisk-cb-cli")
    try:
        yield Store(redis, Keys(site.redis.namespace, site.numbers))
    finally:
        await redis.aclose()


def make_settings(context: Context, store: Store) -> SettingsService:
    return SettingsService(store, context.file, context.site)


def make_roles(context: Context, store: Store) -> RolesService:
    return RolesService(store, context.site.roles, context.site.agents)


def make_tokens(context: Context, store: Store) -> TokenService:
    return TokenService(store, make_roles(context, store), lambda: datetime.now(UTC))


def make_service(context: Context, store: Store) -> CallbackService:
    settings_for = make_settings(context, store).effective
    return CallbackService(store, context.site, settings_for, lambda: datetime.now(UTC))


# ---- commands ---------------------------------------------------------------------------------------


async def cmd_check_config(context: Context, args: argparse.Namespace) -> int:
    """Each option's effective value for a scope, and where it came from (default, file line, runtime),
    then the connections, the agents and the roles."""
    try:
        async with open_store(context.site) as store:
            lines = await make_settings(context, store).explain(context.actor, args.agent, args.queue)
            role_lines = await make_roles(context, store).explain(context.actor)
    except (RedisConnectionError, RedisTimeoutError, OSError) as error:
        print(f"note: Redis unreachable ({error}): run-time overrides not shown", file=sys.stderr)
        lines = explain(context.file, {}, args.agent, args.queue)
        role_lines = roles.explain(
            context.site.roles, roles.RuntimeRoles(roles.NO_ROLES), context.site.agents
        )
    rows = [(line.option, line.text, str(line.origin)) for line in lines]
    print(render_table(("option", "value", "from"), rows))
    print()
    connections = deployment.explain(context.site, context.file.other_sections)
    print(render_table(("connection option", "value", "from"), connections))
    agents = [(agent, deployment.agent_targets(spec)) for agent, spec in sorted(context.site.agents.items())]
    print()
    print(render_table(("agent", "devices"), agents or [("(none)", "add agents to [agents]")]))
    print()
    print_roles(role_lines)
    secrecy.refuse_exposed(args.config)  # the values are fine, but `run` would refuse the file
    return 0


async def cmd_schedule(context: Context, args: argparse.Namespace) -> int:
    request = ScheduleRequest(
        contact_number=args.number,
        agent=args.agent,
        due_at=args.at,
        timezone=args.timezone,
        contact_name=args.name,
        queue=args.queue,
        note=args.note,
    )
    async with open_store(context.site) as store:
        service = make_service(context, store)
        created = await service.schedule(context.actor, request, idempotency_key=args.idempotency_key)
    print_callbacks([created.callback])
    if not created.created:
        print("(already scheduled by an earlier request with this idempotency key)")
    return 0


async def cmd_list(context: Context, args: argparse.Namespace) -> int:
    query = Query(args.agent, State(args.state) if args.state else None, args.number, args.call)
    async with open_store(context.site) as store:
        service = make_service(context, store)
        if args.limit is None and args.cursor is None:
            print_callbacks(await service.list(context.actor, query))
            return 0
        limit = DEFAULT_LIMIT if args.limit is None else args.limit
        page = await service.list_page(context.actor, query, limit=limit, cursor=args.cursor)
    print_callbacks(page.callbacks)
    if page.next_cursor is not None:
        print(f"next page: --cursor {page.next_cursor}")
    return 0


async def cmd_show(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        callback = await make_service(context, store).get(context.actor, args.id)
    details = [
        ("id", callback.id),
        ("state", describe_state(callback)),
        ("contact", f"{callback.contact_name} <{callback.contact_number}>".strip()),
        ("agent", callback.agent),
        ("queue", callback.queue or "-"),
        ("due", local_time(callback.due_at, callback.timezone)),
        ("next", local_time(callback.next_at, callback.timezone) if callback.next_at else "-"),
        ("attempts", f"agent phase {callback.agent_attempts}, queue phase {callback.queue_attempts}"),
        ("missed rings", str(callback.missed_agent_rings)),
        ("created", f"{local_time(callback.created_at, callback.timezone)} by {callback.created_by}"),
        ("from call", callback.origin_uniqueid or "-"),
        ("note", callback.note or "-"),
    ]
    print(render_table(("field", "value"), details))
    history = [
        (
            attempt.id,
            attempt.phase.value,
            local_time(attempt.started_at, callback.timezone),
            attempt.outcome.value if attempt.outcome else "(live)",
            str(attempt.hangup_cause or "-"),
        )
        for attempt in callback.attempts
    ]
    if history:
        print()
        print(render_table(("attempt", "phase", "started", "outcome", "cause"), history))
    return 0


async def cmd_cancel(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        change = await make_service(context, store).cancel(context.actor, args.id, args.wait)
    return print_change(change)


async def cmd_reschedule(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        change = await make_service(context, store).reschedule(context.actor, args.id, args.at, args.wait)
    return print_change(change)


async def cmd_assign(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        edit = Edit(by=context.actor.name, agent=args.agent)
        change = await make_service(context, store).edit(context.actor, args.id, edit, args.wait)
    return print_change(change)


_CHANGE_TEXT = {
    ChangeOutcome.APPLIED: "done",
    ChangeOutcome.APPLIED_BY_HOLDER: "done: its call was ringing and has been hung up",
    ChangeOutcome.PENDING: (
        "requested: its call is ringing and the daemon holding it has not applied the change yet; "
        "it will (or refuse it if the contact answers first): see `asterisk-cb show`"
    ),
}


def print_change(change: Change) -> int:
    print(_CHANGE_TEXT[change.outcome])
    print_callbacks([change.callback])
    return 0


async def cmd_settings_set(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        await make_settings(context, store).set_setting(context.actor, args.scope, args.option, args.value)
    print(f"[{args.scope}] {args.option} = {args.value} (run-time override, until reset)")
    return 0


async def cmd_settings_reset(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        await make_settings(context, store).reset_setting(context.actor, args.scope, args.option)
    print(f"[{args.scope}] {args.option or 'all options'}: back to the config file")
    return 0


async def cmd_roles(context: Context, args: argparse.Namespace) -> int:
    """Every role and its permissions, then every agent's role, each with where it came from."""
    async with open_store(context.site) as store:
        print_roles(await make_roles(context, store).explain(context.actor))
    return 0


async def cmd_roles_set_agent(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        await make_roles(context, store).set_agent_role(context.actor, args.agent, args.role)
    print(f"[{roles.AGENT_ROLES}] {args.agent} = {args.role} (run-time value, until reset)")
    return 0


async def cmd_roles_reset_agent(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        await make_roles(context, store).reset_agent_role(context.actor, args.agent)
    print(f"[{roles.AGENT_ROLES}] {args.agent}: back to the config file")
    return 0


async def cmd_roles_define(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        await make_roles(context, store).define_role(context.actor, args.role, args.permissions.split(","))
    granted = roles.format_permissions(roles.parse_permissions(args.permissions))
    print(f"[{roles.ROLES}] {args.role} = {granted or '(nothing)'} (run-time value, until reset)")
    return 0


async def cmd_roles_reset_role(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        await make_roles(context, store).reset_role(context.actor, args.role)
    print(f"[{roles.ROLES}] {args.role}: back to the config file (or the built-in role)")
    return 0


async def cmd_token_create(context: Context, args: argparse.Namespace) -> int:
    """The token alone on stdout (a script can capture it), the warning that it is not shown again on
    stderr: only its hash is kept."""
    async with open_store(context.site) as store:
        text, info = await make_tokens(context, store).create(
            context.actor, agent=args.agent, user=args.user, lifetime=args.expires, label=args.label
        )
    print(text)
    expires = local_time(info.expires_at, _zone(context))
    note = f"token {info.token_id} for {info.kind} {info.name}, expires {expires}"
    print(f"{note}: shown this once, not stored; keep it now", file=sys.stderr)
    return 0


async def cmd_token_list(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        tokens = await make_tokens(context, store).list(context.actor)
    print_tokens(tokens, _zone(context))
    return 0


async def cmd_token_revoke(context: Context, args: argparse.Namespace) -> int:
    async with open_store(context.site) as store:
        info = await make_tokens(context, store).revoke(context.actor, args.id)
    print(f"token {info.token_id} ({info.kind} {info.name}) revoked")
    return 0


def _zone(context: Context) -> str:
    """Times the CLI prints outside a callback are in the file's default_timezone."""
    return resolve(context.file, {}).default_timezone


async def cmd_doctor(context: Context, args: argparse.Namespace) -> int:
    """Check Redis, ARI, AMI, agents' devices, the outbound context and failover queues; exit 1 on a FAIL."""
    checks = await doctor.run_checks(args.config, context.file, context.site)
    print(render_table(("check", "result", "detail"), [(c.name, c.verdict.value, c.detail) for c in checks]))
    return 1 if any(check.verdict is doctor.Verdict.FAIL for check in checks) else 0


async def cmd_events_groups(context: Context, args: argparse.Namespace) -> int:
    """The event stream's consumer groups: an unread one holds back trimming (see ``doctor``)."""
    async with open_store(context.site) as store:
        groups = await EventGroupsService(store).groups(context.actor)
    rows = [
        (group.name, str(group.consumers), str(group.pending), group.lag_text, group.last_delivered)
        for group in groups
    ]
    print(render_table(("group", "consumers", "pending", "lag", "last delivered"), rows))
    print(f"{len(rows)} group(s)")
    return 0


async def cmd_events_drop_group(context: Context, args: argparse.Namespace) -> int:
    """Remove a group nobody reads any more; a daemon still consuming it would create it anew."""
    async with open_store(context.site) as store:
        group = await EventGroupsService(store).drop(context.actor, args.name)
    print(f"group {group.name} dropped ({group.pending} pending, lag {group.lag_text})")
    return 0


async def cmd_db_migrate(context: Context, args: argparse.Namespace) -> int:
    """Create the CEL writer's marker table (idempotent); ``--dry-run`` prints the SQL and connects to
    nothing; ``--dsn`` runs it as another user (one allowed to create tables)."""
    site = context.site.records
    if args.dsn is not None:
        site = dataclasses.replace(site, dsn=args.dsn)
    if site.dsn is None:
        return _fail("[records] dsn is empty: no CEL writer, nothing to migrate", EXIT_USAGE)
    if args.dry_run:
        print("\n".join(migrate.statements(site)))
        return 0
    try:
        await migrate.migrate(site)
    except DatabaseDown as error:
        return _fail(f"cannot migrate: {error}", EXIT_UNREACHABLE)
    print(f"marker table {site.marker_table} ready in {site.dsn.shown}")
    return 0


async def cmd_calls(context: Context, args: argparse.Namespace) -> int:
    """Callback calls in Asterisk's cdr table, read over ``[records] dsn`` (or ``--dsn``): README "CDR:
    finding callback calls". Read only; needs no Redis."""
    site = context.site.records
    if args.dsn is not None:
        site = dataclasses.replace(site, dsn=args.dsn)
    if site.dsn is None:
        return _fail("[records] dsn is empty and no --dsn: no database to read the cdr from", EXIT_USAGE)
    if args.since is None and args.linkedid is None:
        return _fail("calls: give --since (or --linkedid for one originating call)", EXIT_USAGE)
    try:
        rows = await cdr_read.read_calls(site, context.site.dialing.cdr_mark, calls_filter(context, args))
    except DatabaseDown as error:
        return _fail(f"cannot read the cdr table: {error}", EXIT_UNREACHABLE)
    except cdr_read.CdrUnreadable as error:
        return _fail(f"cannot read the cdr table: {error}", EXIT_REFUSED)
    devices = {agent: spec.devices for agent, spec in context.site.agents.items()}
    calls = cdr_calls.call_rows(rows, cdr_calls.device_agents(devices), usegmtime=site.usegmtime)
    print_calls(cdr_calls.of_agent(calls, args.agent) if args.agent else calls, as_json=args.json)
    return 0


def calls_filter(context: Context, args: argparse.Namespace) -> CallsFilter:
    """``--since``/``--until`` as ISO 8601 (local to the file's default_timezone without an offset) or
    a duration before now (``2h``, ``--since=-2h``); ``ValidationError`` (exit 2) for anything else."""
    zone = rules.zone(_zone(context))
    now = datetime.now(UTC)
    since, until = (
        rules.parse_moment(text, zone, option, now=now) if text is not None else None
        for option, text in (("--since", args.since), ("--until", args.until))
    )
    return CallsFilter(since=since, until=until, linkedid=args.linkedid)


def _dsn(text: str) -> records_settings.Dsn | None:
    """``--dsn``: refused by argparse (exit 2) with the URL's password hidden."""
    try:
        return records_settings.parse_dsn(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


async def cmd_reindex_contacts(context: Context, args: argparse.Namespace) -> int:
    """Rebuild the contact index for the numbering plan in [numbers] (after an upgrade or a change)."""
    async with open_store(context.site) as store:
        moved = await ContactIndexService(store).reindex(context.actor)
    print(f"contact index rebuilt for [numbers]: {moved} moved")
    return 0


async def cmd_run(context: Context, args: argparse.Namespace) -> int:
    """The daemon, in the foreground (systemd runs it so); logs are JSON lines on stderr. Exit 1 when an
    essential component failed. A config file others can read, or still holding change-me, is refused."""
    secrecy.refuse_exposed(args.config)
    logs.configure(args.log_level)
    return await daemon.Daemon(args.config, context.file, context.site).run()


# ---- output -----------------------------------------------------------------------------------------


def print_callbacks(callbacks: Sequence[Callback]) -> None:
    rows = [
        (
            callback.id,
            describe_state(callback),
            local_time(callback.next_at or callback.due_at, callback.timezone),
            callback.agent,
            callback.contact_number,
            callback.contact_name,
            str(callback.agent_attempts + callback.queue_attempts),
        )
        for callback in callbacks
    ]
    print(render_table(("id", "state", "next/due", "agent", "number", "name", "tries"), rows))
    print(f"{len(rows)} callback(s)")


def print_calls(calls: Sequence[cdr_calls.CallRow], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([{**dataclasses.asdict(call), "time": call.time.isoformat()} for call in calls]))
        return
    headers = ("time", "callback", "agent", "contact", "attempt", "phase", "leg", "outcome", "billsec")
    rows = [
        (
            call.time.strftime("%Y-%m-%d %H:%M:%S"),
            call.callback,
            call.agent,
            call.contact,
            call.attempt,
            call.phase,
            call.leg,
            call.outcome,
            str(call.billsec),
            call.linkedid,
        )
        for call in calls
    ]
    print(render_table((*headers, "linkedid"), rows))
    print(f"{len(rows)} row(s)")


def print_tokens(tokens: Sequence[TokenInfo], zone: str) -> None:
    rows = [
        (
            token.token_id,
            token.kind,
            token.name,
            local_time(token.created_at, zone),
            local_time(token.expires_at, zone),
            token.label,
        )
        for token in tokens
    ]
    print(render_table(("id", "kind", "name", "created", "expires", "label"), rows))
    print(f"{len(rows)} token(s)")


def print_roles(lines: Sequence[roles.RoleLine]) -> None:
    """Roles, then agents' roles, then users' roles if there are users; a run-time value that does not
    apply is listed with the reason."""
    tables = {roles.ROLES: ("role", "permissions", "from"), roles.AGENT_ROLES: ("agent", "role", "from")}
    if any(line.section == roles.USERS for line in lines):
        tables[roles.USERS] = ("user", "role", "from")
    printed = [
        render_table(
            headers,
            [
                (line.name, line.text or "(nothing)", _role_origin(line))
                for line in lines
                if line.section == section
            ],
        )
        for section, headers in tables.items()
    ]
    print("\n\n".join(printed))


def _role_origin(line: roles.RoleLine) -> str:
    return f"{line.origin} (ignored: {line.ignored})" if line.ignored else str(line.origin)


def describe_state(callback: Callback) -> str:
    if callback.finish_reason is FinishReason.CONTACT_CALLED_IN:
        talk = f"talked to {callback.called_in_agent} for {callback.called_in_talk_s} s"
        return f"{callback.state.value}: contact called in ({talk})"
    if callback.finish_reason is not None:
        return f"{callback.state.value} ({callback.finish_reason.value})"
    return f"{callback.state.value} ({callback.phase.value} phase)"


def local_time(moment: datetime, zone_name: str) -> str:
    return moment.astimezone(rules.zone(zone_name)).strftime("%Y-%m-%d %H:%M %Z")


# ---- parsing and running ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asterisk-cb", description="Scheduled callbacks for Asterisk.")
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get(CONFIG_ENV, str(config.DEFAULT_PATH))),
        help=f"config file (default: ${CONFIG_ENV} or {config.DEFAULT_PATH})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser("doctor", help="check that this deployment can place callbacks").set_defaults(
        run=cmd_doctor
    )
    run = commands.add_parser("run", help="run the callback daemon in the foreground")
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    run.set_defaults(run=cmd_run)

    check = commands.add_parser("check-config", help="validate the config; show effective values and origins")
    check.add_argument("--agent")
    check.add_argument("--queue")
    check.set_defaults(run=cmd_check_config)

    schedule = commands.add_parser("schedule", help="schedule a callback")
    schedule.add_argument("--agent", required=True, help="owning agent id (as in [agents])")
    schedule.add_argument("--number", required=True, help="contact number: +E.164 or digits")
    schedule.add_argument(
        "--at",
        required=True,
        help="due time: ISO 8601 (local to --timezone if no offset), or +2h, +90m from now",
    )
    schedule.add_argument("--timezone", help="the contact's IANA zone (default: default_timezone)")
    schedule.add_argument("--name", default="", help="contact name")
    schedule.add_argument("--queue", help="queue of the call it was requested from")
    schedule.add_argument("--note", default="")
    schedule.add_argument("--idempotency-key", help="a retried command with the same key schedules once")
    schedule.set_defaults(run=cmd_schedule)

    listing = commands.add_parser("list", help="list callbacks (oldest due first)")
    listing.add_argument("--agent")
    listing.add_argument("--state", choices=[state.value for state in State])
    listing.add_argument("--number", help="pending callbacks of this contact number (any form)")
    listing.add_argument("--call", help="uniqueid or linkedid of the originating call")
    listing.add_argument(
        "--limit", type=int, help=f"at most this many (default {DEFAULT_LIMIT} with --cursor)"
    )
    listing.add_argument("--cursor", help="continue after the page that printed this `next page` cursor")
    listing.set_defaults(run=cmd_list)

    show = commands.add_parser("show", help="a callback and its attempts")
    show.add_argument("id")
    show.set_defaults(run=cmd_show)

    _change_parser(commands, "cancel", "cancel (a ringing call is hung up)", cmd_cancel)
    reschedule = _change_parser(commands, "reschedule", "move a callback's due time", cmd_reschedule)
    reschedule.add_argument(
        "--at",
        required=True,
        help="new due time (local to the contact's zone if no offset), or +2h, +90m from now",
    )
    assign = _change_parser(commands, "assign", "hand a callback to another agent", cmd_assign)
    assign.add_argument("--agent", required=True)

    _settings_parser(commands)
    _roles_parser(commands)
    _token_parser(commands)
    _user_parser(commands)
    _events_parser(commands)
    _db_parser(commands)
    _calls_parser(commands)
    commands.add_parser(
        "reindex-contacts", help="rebuild the contact index (after an upgrade or a change of [numbers])"
    ).set_defaults(run=cmd_reindex_contacts)
    return parser


def _settings_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    settings = commands.add_parser("settings", help="change settings at run time (wins over the file)")
    actions = settings.add_subparsers(dest="action", required=True, metavar="action")
    set_cmd = actions.add_parser("set", help="override an option in a scope")
    set_cmd.add_argument("scope", help="general, queue/<name> or agent/<id>")
    set_cmd.add_argument("option")
    set_cmd.add_argument("value")
    set_cmd.set_defaults(run=cmd_settings_set)
    reset = actions.add_parser("reset", help="drop run-time overrides (one option, or the whole scope)")
    reset.add_argument("scope")
    reset.add_argument("option", nargs="?")
    reset.set_defaults(run=cmd_settings_reset)


def _roles_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "roles", help="roles, their permissions and agents' roles (change at run time)"
    )
    parser.set_defaults(run=cmd_roles)
    actions = parser.add_subparsers(dest="action", metavar="action")
    set_agent = actions.add_parser("set-agent", help="give an agent (or default: agents not listed) a role")
    set_agent.add_argument("agent", help="agent id (as in [agents]) or default")
    set_agent.add_argument("role")
    set_agent.set_defaults(run=cmd_roles_set_agent)
    reset_agent = actions.add_parser("reset-agent", help="drop an agent's run-time role")
    reset_agent.add_argument("agent")
    reset_agent.set_defaults(run=cmd_roles_reset_agent)
    define = actions.add_parser("define", help="define a role (new, or over the file's or built-in one)")
    define.add_argument("role")
    define.add_argument("permissions", help=f"comma-separated, may be empty: {', '.join(Permission)}")
    define.set_defaults(run=cmd_roles_define)
    reset_role = actions.add_parser("reset-role", help="drop a role's run-time definition")
    reset_role.add_argument("role")
    reset_role.set_defaults(run=cmd_roles_reset_role)


def _token_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("token", help="API tokens: create (shown once), list, revoke")
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    create = actions.add_parser("create", help="a token for an agent or a [users] user, printed once")
    whom = create.add_mutually_exclusive_group(required=True)
    whom.add_argument("--agent", help="agent id (as in [agents])")
    whom.add_argument("--user", help="user name (as in [users])")
    create.add_argument(
        "--expires",
        type=_lifetime,
        default=DEFAULT_LIFETIME,
        metavar="DURATION",
        help="how long it is valid: 90s, 15m, 2h, 30d (default 90d; 1m to 730d)",
    )
    create.add_argument("--label", default="", help="what it is for (at most 80 printable characters)")
    create.set_defaults(run=cmd_token_create)
    actions.add_parser("list", help="tokens not expired (never their secrets)").set_defaults(
        run=cmd_token_list
    )
    revoke = actions.add_parser("revoke", help="revoke a token: it fails from its next use")
    revoke.add_argument("id", help="the token's id (the 8 hex digits after acb_)")
    revoke.set_defaults(run=cmd_token_revoke)


def _lifetime(text: str) -> timedelta:
    """``--expires``: a duration as everywhere else (the service checks its bounds)."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _events_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = commands.add_parser("events", help="the event stream's consumer groups")
    actions = events.add_subparsers(dest="action", required=True, metavar="action")
    groups = actions.add_parser("groups", help="each group: consumers, pending, lag, last delivered")
    groups.set_defaults(run=cmd_events_groups)
    drop = actions.add_parser("drop-group", help="remove a group nobody reads (it holds back trimming)")
    drop.add_argument("name")
    drop.set_defaults(run=cmd_events_drop_group)


def _db_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    database = commands.add_parser("db", help="the CEL writer's database ([records] dsn)")
    actions = database.add_subparsers(dest="action", required=True, metavar="action")
    migrating = actions.add_parser("migrate", help="create the CEL writer's marker table (idempotent)")
    migrating.add_argument("--dry-run", action="store_true", help="print the SQL; connect to nothing")
    migrating.add_argument("--dsn", type=_dsn, help="run it as another user (default: [records] dsn)")
    migrating.set_defaults(run=cmd_db_migrate)


def _calls_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    calls = commands.add_parser("calls", help="callback calls in Asterisk's cdr table ([records] dsn)")
    calls.add_argument("--type", default=TYPE_CALLBACKS, choices=(TYPE_CALLBACKS,), help="which calls")
    calls.add_argument(
        "--since", help="from: ISO 8601 (local to default_timezone if no offset), or 2h, 1d before now"
    )
    calls.add_argument("--until", help="before this time (same forms; default: now)")
    calls.add_argument("--agent", help="only the calls this agent (or failover queue member) was on")
    calls.add_argument("--linkedid", help="one originating call: its rows and its callbacks' calls")
    calls.add_argument("--json", action="store_true", help="one JSON array instead of the table")
    calls.add_argument("--dsn", type=_dsn, help="read as another user (default: [records] dsn)")
    calls.set_defaults(run=cmd_calls)


async def cmd_user_set_password(context: Context, args: argparse.Namespace) -> int:
    """Set an agent's or user's web panel password; their open panel sessions end."""
    password = _read_password()
    async with open_store(context.site) as store:
        service = PasswordService(store, make_roles(context, store))
        identity, _ = await service.set_password(context.actor, args.name, password)
    print(f"panel password set for {identity.kind} {identity.name}; their open panel sessions end")
    return 0


def _read_password() -> str:
    """Asked twice on a terminal (never echoed); else the first line of stdin (a script's pipe)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("new panel password: ")
    if getpass.getpass("again: ") != first:
        raise ServiceError(ErrorCode.INVALID, "the two passwords differ: nothing changed", "password")
    return first


def _user_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("user", help="web panel sign-in of agents and [users] users")
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    password = actions.add_parser(
        "set-password", help="set a panel password (asked twice, or read from stdin when piped)"
    )
    password.add_argument("name", help="an agent id of [agents] or a user of [users]")
    password.set_defaults(run=cmd_user_set_password)


def _change_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    text: str,
    run: Callable[[Context, argparse.Namespace], Awaitable[int]],
) -> argparse.ArgumentParser:
    """A command changing one callback; ``--wait``: how long to wait for the daemon holding its call."""
    command = commands.add_parser(name, help=text)
    command.add_argument("id")
    command.add_argument(
        "--wait",
        type=_seconds,
        default=REQUEST_WAIT_S,
        metavar="SECONDS",
        help=f"while its call rings: wait this long for the daemon to apply it (default {REQUEST_WAIT_S:g})",
    )
    command.set_defaults(run=run)
    return command


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_WAIT_S:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds between 0 and {MAX_WAIT_S}")
    return value


def load_context(path: Path) -> Context:
    file = config.load(path, other_sections=deployment.SECTIONS)
    return Context(file, deployment.from_settings_file(file), _cli_actor())


def _cli_actor() -> Actor:
    return Actor(f"cli:{getpass.getuser()}", ADMIN.permissions)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(args.run(load_context(args.config), args))
    except config.ConfigError as error:
        return _fail(f"config: {error}", EXIT_USAGE)
    except (rules.ValidationError, SettingError) as error:
        return _fail(str(error), EXIT_USAGE)
    except ServiceError as error:
        code = EXIT_USAGE if error.code is ErrorCode.INVALID else EXIT_REFUSED
        return _fail(error.message, code)
    except (RedisConnectionError, RedisTimeoutError) as error:
        return _fail(f"cannot reach Redis: {error}", EXIT_UNREACHABLE)
    except KeyboardInterrupt:
        return 130


def _fail(message: str, code: int) -> int:
    print(f"asterisk-cb: {message}", file=sys.stderr)
    return code
