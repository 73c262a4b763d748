"""``asterisk-cb doctor``: is this deployment able to place callbacks? One line per check, with the fix.

Each check talks to the real peer the daemon will use (Redis, ARI, AMI) with the daemon's own
credentials, so a wrong password, a missing manager permission, an agent device Asterisk does not
know or an outbound context that does not exist shows here, before the first callback is due.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.exceptions import RedisError

from asterisk_cb import deployment
from asterisk_cb.core.settings import GENERAL, Layers, RuntimeOverrides, SettingsFile, resolve
from asterisk_cb.keys import Keys
from asterisk_cb.store import GroupInfo, Store
from asterisk_cb.telephony import answer_marks
from asterisk_cb.telephony.ami import AmiConnection, AmiError, AmiSettings
from asterisk_cb.telephony.ari import AriClient, AriError, AriSettings
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


async def run_checks(file: SettingsFile, site: deployment.Deployment) -> list[Check]:
    """Every check, in the order a callback needs them; a failed link skips the checks behind it."""
    checks, runtime = await _redis(site)
    checks.append(await _ari(site))
    ami = AmiConnection(AmiSettings(site.ami.user, site.ami.secret, site.ami.host, site.ami.port))
    try:
        await ami.start()
        await ami.wait_ready(AMI_LOGIN_TIMEOUT_S)
    except (TimeoutError, AmiError, OSError):
        error = ami.health.snapshot().last_error or "no answer"
        checks.append(Check("ami", Verdict.FAIL, f"{site.ami.host}:{site.ami.port}: {error}"))
        await ami.stop()
        return checks
    try:
        checks.append(
            Check("ami", Verdict.OK, f"logged in as {site.ami.user} at {site.ami.host}:{site.ami.port}")
        )
        checks += await _agents(site, ami)
        checks.append(await _context(ami, "outbound_context", site.dialing.outbound_context))
        checks.append(await _answer_marks(ami))
        queues = await _queues(file, runtime, ami)
        if queues:  # the failover phase puts contacts into queues through this context
            checks.append(await _context(ami, "queue_context", site.dialing.queue_context))
        if any(_resolved_everywhere(file, runtime, "amd")):  # answered contacts go through AMD there
            checks.append(await _context(ami, "amd_context", site.dialing.amd_context))
        checks += queues
    finally:
        await ami.stop()
    return checks


async def _redis(site: deployment.Deployment) -> tuple[list[Check], Layers]:
    """The Redis check and one per event-stream consumer group, and the run-time setting overrides
    found there (none if unreachable)."""
    redis = site.redis.connect("asterisk-cb-doctor")
    store = Store(redis, Keys(site.redis.namespace))
    try:
        info = await redis.info("server")
        persistence = await redis.info("persistence")
        counts = await store.count_by_state()
        overrides = await store.runtime_overrides()
        groups = await store.event_groups()
    except RedisError as error:
        return [Check("redis", Verdict.FAIL, f"{site.redis.url or 'sentinel'}: {error}")], {}
    finally:
        await redis.aclose()
    held = sum(count for state, count in counts.items() if not state.is_finished)
    detail = f"Redis {info.get('redis_version')}, namespace {site.redis.namespace}: {held} callbacks pending"
    verdict = Verdict.OK
    if not persistence.get("aof_enabled"):
        detail += "; appendonly is off: a Redis crash can lose callbacks"
        verdict = Verdict.WARN
    checks = [Check("redis", verdict, detail), *map(_group_check, groups), *_overrides_check(overrides)]
    return checks, overrides.layers


def _overrides_check(overrides: RuntimeOverrides) -> list[Check]:
    """Overrides the daemon ignores because they do not parse: the admin's setting is not in effect."""
    if not overrides.refused:
        return []
    detail = "; ".join(map(str, overrides.refused))
    remedy = "ignored: `asterisk-cb settings set` a valid value or `settings reset` them"
    return [Check("settings overrides", Verdict.FAIL, f"{detail}; {remedy}")]


def _group_check(group: GroupInfo) -> Check:
    """A group with a large backlog, or nobody reading it, holds back the trimming of the event stream."""
    detail = f"{group.consumers} consumer(s), {group.pending} pending, lag {group.lag_text}"
    backlog = group.pending + (group.lag or 0)
    if group.consumers == 0 or backlog >= GROUP_BACKLOG_WARN:
        remedy = "it holds back trimming: start its reader, or `asterisk-cb events drop-group` it"
        return Check(f"events group {group.name}", Verdict.WARN, f"{detail}; {remedy}")
    return Check(f"events group {group.name}", Verdict.OK, detail)


async def _ari(site: deployment.Deployment) -> Check:
    settings = AriSettings(site.ari.url, site.ari.user, site.ari.password, site.ari.app)
    try:
        async with AriClient(settings) as ari:
            info = await ari.asterisk_info()
    except (AriError, OSError) as error:
        return Check("ari", Verdict.FAIL, f"{site.ari.url}: {error}")
    version = info.get("system", {}).get("version", "?")
    verdict = Verdict.OK if version.startswith(("20.", "21.", "22.", "23.")) else Verdict.WARN
    return Check("ari", verdict, f"Asterisk {version} at {site.ari.url} as {site.ari.user}")


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


async def _context(ami: AmiConnection, option: str, context: str) -> Check:
    try:
        await ami.send({"Action": "ShowDialPlan", "Context": context})
    except AmiError as error:
        return Check(option, Verdict.FAIL, f"context {context}: {error}")
    return Check(option, Verdict.OK, f"context {context} exists")


async def _answer_marks(ami: AmiConnection) -> Check:
    """The hangup handler's context must exist (else answers nobody saw are not recorded, and a
    contact who talked while no daemon watched is dialled again); deleting the entries a resumer
    read needs AMI ``write = system`` (``DBDel``): without it they stay, a warning."""
    context = await _context(ami, "answer_marks", answer_marks.HANDLER_CONTEXT)
    if context.verdict is not Verdict.OK:
        return context
    refused = await answer_marks.AnswerMarks(ami).delete_refused()
    if refused:
        detail = f"{context.detail}; entries read cannot be deleted ({refused}): add system to the AMI write"
        return Check("answer_marks", Verdict.WARN, detail)
    return context


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
