"""``asterisk-cb doctor``: is this deployment able to place callbacks? One line per check, with the fix.

Each check talks to the real peer the daemon will use (Redis, ARI, AMI) with the daemon's own
credentials, so a wrong password, a missing manager permission, an agent device Asterisk does not
know or an outbound context that does not exist shows here, before the first callback is due. The
first check is the config file itself: ``run`` refuses one others can read or still holding change-me.
URLs are shown through ``secrecy.redact``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from redis.exceptions import RedisError

from asterisk_cb import config, deployment, roles, secrecy
from asterisk_cb.core.cdr_marks import MarkField
from asterisk_cb.core.settings import GENERAL, Layers, RuntimeOverrides, SettingsFile, resolve
from asterisk_cb.keys import Keys
from asterisk_cb.records import writer
from asterisk_cb.records.component import backlog
from asterisk_cb.records.connect import open_database
from asterisk_cb.records.database import DatabaseDown, Tables
from asterisk_cb.records.settings import RecordsSite
from asterisk_cb.redis_conn import ReplicaMode, ReplicaWait
from asterisk_cb.store import GroupInfo, Store
from asterisk_cb.telephony import answer_marks, call_marks
from asterisk_cb.telephony.ami import AmiConnection, AmiError
from asterisk_cb.telephony.ari import AriAuthError, AriClient, AriError, AriNotFound
from asterisk_cb.telephony.availability import AgentSpec

AMI_LOGIN_TIMEOUT_S = 5.0
# A consumer group this far behind (undelivered or unacknowledged entries) holds back the stream's trimming.
GROUP_BACKLOG_WARN = 10_000
# Device states that mean "Asterisk has no such device" rather than "the phone is away".
_UNKNOWN_DEVICE = {"UNKNOWN", "INVALID"}


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str


async def run_checks(path: Path, file: SettingsFile, site: deployment.Deployment) -> list[Check]:
    """Every check, in the order a callback needs them; a failed link skips the checks behind it."""
    redis_checks, runtime = await _redis(site)
    checks = [*_config(path), *redis_checks, await _records(site)]
    checks.append(await _ari(site))
    if checks[-1].verdict is not Verdict.FAIL:
        checks.append(await _ari_rights(site))
    checks += [*_transports(site), *_api_transport(site)]
    ami = AmiConnection(site.ami.client_settings())
    try:
        await ami.start()
        await ami.wait_ready(AMI_LOGIN_TIMEOUT_S)
    except (TimeoutError, AmiError, OSError):
        error = ami.health.snapshot().last_error or "no answer"
        checks.append(
            Check("ami", Verdict.FAIL, f"{site.ami.host}:{site.ami.port}: {error}{_tls_hint(error)}")
        )
        await ami.stop()
        return checks
    try:
        checks.append(
            Check("ami", Verdict.OK, f"logged in as {site.ami.user} at {site.ami.host}:{site.ami.port}")
        )
        checks.append(await _ami_rights(ami))
        checks += await _agents(site, ami)
        checks.append(await _context(ami, "outbound_context", site.dialing.outbound_context))
        if site.dialing.cdr_mark.field is not MarkField.NONE:
            checks.append(await _cdr_mark(ami))
        checks.append(await _context(ami, "answer_marks", answer_marks.HANDLER_CONTEXT))
        queues = await _queues(file, runtime, ami)
        if queues:  # the failover phase puts contacts into queues through this context
            checks.append(await _context(ami, "queue_context", site.dialing.queue_context))
        if any(_resolved_everywhere(file, runtime, "amd")):  # answered contacts go through AMD there
            checks.append(await _context(ami, "amd_context", site.dialing.amd_context))
        if site.feature_code.listen is not None:
            checks.append(await _feature_code_contexts(ami))
            checks.append(await _inbound_hook(ami))
        checks += queues
    finally:
        await ami.stop()
    return checks


def _config(path: Path) -> list[Check]:
    """What makes ``run`` refuse the file though it parses: others may read it, or a secret is still
    the sample's ``change-me`` (``secrecy``); one failing line per problem, each with its fix."""
    try:
        problems = secrecy.exposures(path)
    except (config.ConfigError, OSError) as error:  # changed since it was loaded
        return [Check("config", Verdict.FAIL, str(error))]
    if problems:
        return [Check("config", Verdict.FAIL, problem) for problem in problems]
    return [Check("config", Verdict.OK, f"{secrecy.describe(path)}: no access for others, no change-me")]


async def _redis(site: deployment.Deployment) -> tuple[list[Check], Layers]:
    """The Redis check and one per event-stream consumer group, and the run-time setting overrides
    found there (none if unreachable); run-time settings and roles that do not apply fail."""
    redis = site.redis.connect("asterisk-cb-doctor")
    store = Store(redis, Keys(site.redis.namespace, site.numbers))
    try:
        info = await redis.info("server")
        persistence = await redis.info("persistence")
        replicas = await store.replicas.look()
        counts = await store.count_by_state()
        overrides = await store.runtime_overrides()
        role_values = await store.role_overrides()
        groups = await store.event_groups()
    except RedisError as error:
        return [Check("redis", Verdict.FAIL, f"{secrecy.redact(site.redis.url or 'sentinel')}: {error}")], {}
    finally:
        await redis.aclose()
    held = sum(count for state, count in counts.items() if not state.is_finished)
    detail = f"Redis {info.get('redis_version')}, namespace {site.redis.namespace}: {held} callbacks pending"
    verdict = Verdict.OK
    if not persistence.get("aof_enabled"):
        detail += "; appendonly is off: a Redis crash can lose callbacks"
        verdict = Verdict.WARN
    replica_check = _replicas_check(site.redis.replica_wait, replicas)
    checks = [Check("redis", verdict, detail), replica_check, *map(_group_check, groups)]
    runtime_roles = roles.runtime_roles(*role_values, site.roles, site.agents)
    return [*checks, *_overrides_check(overrides), *_roles_check(runtime_roles)], overrides.layers


def _replicas_check(wait: ReplicaWait, replicas: int) -> Check:
    """Whether ring commits wait for a replica (README, "Nothing lost, nothing doubled"): ``on`` with
    none connected dials nothing; ``off`` with replicas lets a failover lose a ring's commit."""
    mode = f"replica_wait = {wait.mode}"
    if replicas and wait.mode is not ReplicaMode.OFF:
        return Check("redis replicas", Verdict.OK, f"{replicas} in sync; {mode}: each ring waits for one")
    if replicas:
        detail = f"{replicas} in sync; {mode}: a failover can lose a ring's commit and dial it again"
        return Check("redis replicas", Verdict.WARN, detail)
    if wait.mode is ReplicaMode.ON:
        return Check("redis replicas", Verdict.FAIL, f"none in sync; {mode}: no callback will be dialled")
    return Check("redis replicas", Verdict.OK, f"none (single Redis); {mode}: its persistence is all")


def _overrides_check(overrides: RuntimeOverrides) -> list[Check]:
    """Overrides the daemon ignores because they do not parse: the admin's setting is not in effect."""
    if not overrides.refused:
        return []
    detail = "; ".join(map(str, overrides.refused))
    remedy = "ignored: `asterisk-cb settings set` a valid value or `settings reset` them"
    return [Check("settings overrides", Verdict.FAIL, f"{detail}; {remedy}")]


def _roles_check(runtime: roles.RuntimeRoles) -> list[Check]:
    """Run-time roles the service ignores (a role reset by hand, a newer version's permission): the
    agents concerned hold the file's role, not the one the admin set."""
    if not runtime.refused:
        return []
    detail = "; ".join(map(str, runtime.refused))
    remedy = "ignored: `asterisk-cb roles` lists them; set a valid value or reset them"
    return [Check("roles", Verdict.FAIL, f"{detail}; {remedy}")]


def _group_check(group: GroupInfo) -> Check:
    """A group with a large backlog, or nobody reading it, holds back the trimming of the event stream."""
    detail = f"{group.consumers} consumer(s), {group.pending} pending, lag {group.lag_text}"
    backlog = group.pending + (group.lag or 0)
    if group.consumers == 0 or backlog >= GROUP_BACKLOG_WARN:
        remedy = "it holds back trimming: start its reader, or `asterisk-cb events drop-group` it"
        return Check(f"events group {group.name}", Verdict.WARN, f"{detail}; {remedy}")
    return Check(f"events group {group.name}", Verdict.OK, detail)


async def _records(site: deployment.Deployment) -> Check:
    """The CEL writer's database ([records]): reachable with the daemon's DSN, the cel table and the
    marker table present, and how many events wait for it."""
    records = site.records
    if records.dsn is None:
        return Check("records", Verdict.OK, "off ([records] dsn is empty): no CEL rows are written")
    database = open_database(records)
    try:
        tables = await database.tables()
    except DatabaseDown as error:
        return Check("records", Verdict.FAIL, f"{error}; events wait in the stream until it answers")
    finally:
        await database.close()
    return _tables_check(records, tables, await _backlog(site))


def _tables_check(records: RecordsSite, tables: Tables, waiting: str) -> Check:
    shown = records.dsn.shown if records.dsn else ""
    cel, marker = records.cel_table, records.marker_table
    if not tables.cel:
        return Check("records", Verdict.FAIL, f"{shown}: no table {cel}: set [records] cel_table")
    if not tables.marker:
        return Check("records", Verdict.FAIL, f"{shown}: no table {marker}: run `asterisk-cb db migrate`")
    detail = f"{shown}: tables {cel} and {marker} present; {waiting}"
    if not tables.transactional:
        return Check("records", Verdict.WARN, f"{detail}; {cel} is not InnoDB: a crash may write a row twice")
    return Check("records", Verdict.OK, detail)


async def _backlog(site: deployment.Deployment) -> str:
    """``N events waiting`` for the writer's group (``cel``), as Redis tells it."""
    redis = site.redis.connect("asterisk-cb-doctor")
    try:
        waiting = backlog(await Store(redis, Keys(site.redis.namespace, site.numbers)).event_groups())
    except RedisError:
        waiting = None
    finally:
        await redis.aclose()
    return f"writer backlog {'?' if waiting is None else waiting} (group {writer.GROUP})"


async def _ari(site: deployment.Deployment) -> Check:
    try:
        async with AriClient(site.ari.client_settings()) as ari:
            info = await ari.asterisk_info()
    except (AriError, OSError) as error:
        return Check("ari", Verdict.FAIL, f"{secrecy.redact(site.ari.url)}: {error}{_tls_hint(str(error))}")
    version = info.get("system", {}).get("version", "?")
    verdict = Verdict.OK if version.startswith(("20.", "21.", "22.", "23.")) else Verdict.WARN
    return Check("ari", verdict, f"Asterisk {version} at {secrecy.redact(site.ari.url)} as {site.ari.user}")


async def _agents(site: deployment.Deployment, ami: AmiConnection) -> list[Check]:
    if not site.agents:
        return [Check("agents", Verdict.FAIL, "no agents in [agents]: every callback would be refused")]
    fixed = [device for spec in site.agents.values() for device in spec.devices]
    states = {event.device: event.state for event in await ami.known_device_states(fixed)}
    return [_agent_check(spec, states) for _, spec in sorted(site.agents.items())]


def _agent_check(spec: AgentSpec, states: Mapping[str, str]) -> Check:
    """Asterisk must know every fixed device; a hot-desking or app_agent_pool agent's phones are
    only known once it logs in, so they are not checked here."""
    agent = spec.agent
    found = {device: states.get(device, "UNKNOWN") for device in spec.devices}
    if not found:
        targets = deployment.agent_targets(spec)
        return Check(f"agent {agent}", Verdict.OK, f"{targets}: its phones are found when it logs in")
    unknown = [device for device, state in found.items() if state in _UNKNOWN_DEVICE]
    detail = ", ".join(f"{device} {state}" for device, state in found.items())
    if unknown:
        return Check(
            f"agent {agent}", Verdict.FAIL, f"{detail}: Asterisk knows no device {', '.join(unknown)}"
        )
    return Check(f"agent {agent}", Verdict.OK, detail)


# What dialplan/callback-request.conf defines: the agent's Gosub, its helper channel, Queue()'s gosub.
FEATURE_CODE_CONTEXTS = ("acb-request", "acb-request-agi", "acb-queue-member")


async def _feature_code_contexts(ami: AmiConnection) -> Check:
    """The feature code needs dialplan/callback-request.conf in the dialplan (the applicationmap line
    in features.conf cannot be read over AMI: README "The feature code mid-call")."""
    for context in FEATURE_CODE_CONTEXTS:
        found = await _context(ami, "feature_code", context)
        if found.verdict is Verdict.FAIL:
            return Check(
                "feature_code", Verdict.FAIL, f"{found.detail}: #include dialplan/callback-request.conf"
            )
    return Check("feature_code", Verdict.OK, f"contexts {', '.join(FEATURE_CODE_CONTEXTS)} exist")


async def _cdr_mark(ami: AmiConnection) -> Check:
    """The channels the daemon creates are marked through ARI; the contact's and the queue's rows only
    through the dialplan's ``callback-cdr-mark``: without it calls go on, but a report misses those rows."""
    found = await _context(ami, "cdr_mark", call_marks.MARK_CONTEXT)
    if found.verdict is Verdict.FAIL:
        return Check(
            "cdr_mark",
            Verdict.WARN,
            f"{found.detail}: the contact's CDR rows are not marked "
            '(#include dialplan/callback-outbound.conf, README "CDR: finding callback calls")',
        )
    return found


# What dialplan/callback-inbound.conf defines: the hook and its helper channel.
INBOUND_HOOK_CONTEXTS = ("acb-inbound", "acb-inbound-agi")


async def _inbound_hook(ami: AmiConnection) -> Check:
    """The inbound hook is the admin's choice: without it returning contacts are not routed to their
    agent (their talk still settles callbacks), so its absence warns, never fails."""
    for context in INBOUND_HOOK_CONTEXTS:
        found = await _context(ami, "inbound_hook", context)
        if found.verdict is Verdict.FAIL:
            return Check(
                "inbound_hook",
                Verdict.WARN,
                f"{found.detail}: returning contacts are not routed to their agent "
                '(#include dialplan/callback-inbound.conf, README "The contact calls in first")',
            )
    return Check("inbound_hook", Verdict.OK, f"contexts {', '.join(INBOUND_HOOK_CONTEXTS)} exist")


async def _context(ami: AmiConnection, option: str, context: str) -> Check:
    try:
        await ami.send({"Action": "ShowDialPlan", "Context": context})
    except AmiError as error:
        return Check(option, Verdict.FAIL, f"context {context}: {error}")
    return Check(option, Verdict.OK, f"context {context} exists")


async def _queues(file: SettingsFile, runtime: Layers, ami: AmiConnection) -> list[Check]:
    """Every failover queue the settings name must exist in app_queue."""
    wanted = _failover_queues(file, runtime)
    if not wanted:
        return []
    answer = await ami.send({"Action": "QueueStatus"})
    known = {message.get("Queue") for message in _messages(answer) if message.get("Event") == "QueueParams"}
    return [
        Check(f"queue {queue}", Verdict.OK if queue in known else Verdict.FAIL,
              "exists" if queue in known else "failover_queue names a queue app_queue does not have")
        for queue in sorted(wanted)
    ]  # fmt: skip


def _failover_queues(file: SettingsFile, runtime: Layers) -> set[str]:
    """The failover queue of every scope that sets options, as it resolves there."""
    return {queue for queue in _resolved_everywhere(file, runtime, "failover_queue") if queue}


def _resolved_everywhere(file: SettingsFile, runtime: Layers, option: str) -> set[Any]:
    """The effective value of ``option`` in every scope that sets options (file or run time)."""
    values = set()
    for scope in {*file.layers, *runtime, GENERAL}:
        kind, _, name = scope.partition("/")
        agent = name if kind == "agent" else None
        queue = name if kind == "queue" else None
        values.add(getattr(resolve(file, runtime, agent, queue), option))
    return values


def _messages(answer: Any) -> list[Mapping[str, str]]:
    return answer if isinstance(answer, list) else [answer]


# --- least rights and transport (README "Least rights and TLS") -----------------------------------

_PROBE = "asterisk-cb-doctor-probe"  # a channel, interface and AstDB key that never exist


async def _ari_rights(site: deployment.Deployment) -> Check:
    """The ARI user must be able to write (ari.conf ``read_only = no``): probed with a hang-up of a
    channel that does not exist (404 when allowed, 403 for a read-only user)."""
    try:
        async with AriClient(site.ari.client_settings()) as ari:
            await ari.request("DELETE", f"/channels/{_PROBE}")
    except AriNotFound:
        return Check("ari rights", Verdict.OK, f"{site.ari.user} may control calls")
    except AriAuthError as error:
        return Check("ari rights", Verdict.FAIL, f"{site.ari.user}: {error}: set read_only = no in ari.conf")
    except AriError as error:
        return Check("ari rights", Verdict.FAIL, f"{site.ari.user}: {error}")
    return Check("ari rights", Verdict.FAIL, f"ARI hung up a channel {_PROBE}?")


# What the daemon needs (write class: a harmless action that it allows), and what it must not have.
_NEEDED = {
    "agent": {"Action": "QueuePause", "Interface": f"Local/{_PROBE}", "Paused": "false"},
    "reporting": {"Action": "DBGet", "Family": answer_marks.FAMILY, "Key": _PROBE},
}
_EXCESS = {
    "system": {"Action": "DBDel", "Family": answer_marks.FAMILY, "Key": _PROBE},
    "command": {"Action": "Command", "Command": "core show uptime"},
}


async def _ami_rights(ami: AmiConnection) -> Check:
    """``write = agent,reporting`` exactly: a missing class breaks queue pauses or device states; an
    extra ``system`` or ``command`` lets whoever holds the secret change AstDB or run CLI commands."""
    missing = [name for name, action in _NEEDED.items() if await _denied(ami, action)]
    if missing:
        return Check(
            "ami rights", Verdict.FAIL, f"write lacks {','.join(missing)}: set write = agent,reporting"
        )
    extra = [name for name, action in _EXCESS.items() if not await _denied(ami, action)]
    if extra:
        detail = f"write includes {','.join(extra)}, more than needed: set write = agent,reporting"
        return Check("ami rights", Verdict.WARN, detail)
    return Check("ami rights", Verdict.OK, "write = agent,reporting, nothing more")


async def _denied(ami: AmiConnection, action: Mapping[str, str]) -> bool:
    try:
        await ami.send(action)
    except AmiError as error:  # any other refusal (no such interface or key) proves the class allowed
        return "permission denied" in str(error).lower()
    return False


def _transports(site: deployment.Deployment) -> list[Check]:
    """ARI's password and AMI's secret cross the network readable unless TLS is on or the peer is
    on this host."""
    ari_host = urlsplit(site.ari.url).hostname or ""
    return [
        _transport("ari transport", site.ari.url.startswith("https://"), ari_host, site.ari.ca_file,
                   "use an https:// url (http.conf tlsenable) and [ari] ca_file"),
        _transport("ami transport", site.ami.tls, site.ami.host, site.ami.ca_file,
                   "set [ami] tls = yes (manager.conf tlsenable) and ca_file"),
    ]  # fmt: skip


def _api_transport(site: deployment.Deployment) -> list[Check]:
    """API tokens cross the network readable when the API listens beyond this host: the API speaks
    plain HTTP, a TLS proxy in front is what protects them."""
    api = site.api
    if not api.enabled or api.host is None:
        return []
    where = f"{api.host}:{api.port}"
    if _loopback(api.host):
        return [
            Check("api transport", Verdict.OK, f"on this host ({where}); other hosts through a TLS proxy")
        ]
    remedy = "listen on 127.0.0.1 and put a TLS proxy in front (README REST API)"
    return [
        Check("api transport", Verdict.WARN, f"in clear on {where}: tokens can be read on the way; {remedy}")
    ]


def _transport(name: str, tls: bool, host: str, ca_file: str | None, remedy: str) -> Check:
    if tls:
        return Check(
            name, Verdict.OK, f"TLS to {host}, certificate checked against {ca_file or 'the system CAs'}"
        )
    if _loopback(host):
        return Check(name, Verdict.OK, f"in clear on this host ({host})")
    return Check(name, Verdict.WARN, f"in clear to {host}: the password can be read on the way; {remedy}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def _tls_hint(error: str) -> str:
    """A certificate Asterisk presents that we do not trust: say which setting fixes it."""
    if "CERTIFICATE_VERIFY_FAILED" in error or "certificate verify failed" in error:
        return " (set ca_file to the CA that signed Asterisk's certificate, and a host its certificate names)"
    return ""
