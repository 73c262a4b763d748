"""Where the daemon's peers are and who the agents are: the non-callback sections of the config file.

``[redis]``, ``[ari]``, ``[ami]``, ``[dialing]``, ``[numbers]``, ``[agents]``, ``[roles]``,
``[agent_roles]``, ``[users]``, ``[metrics]`` and ``[daemon]`` sit in the same Asterisk-style file as the
callback settings (``config.load`` keeps them raw for this module; ``roles`` reads the roles sections
and ``[users]``).
Each value is checked here, and a refusal names the file, the line and the option, like every other
config error.
"""

from __future__ import annotations

import dataclasses
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import TypeVar
from urllib.parse import urlsplit

from redis.asyncio.connection import parse_url

from asterisk_cb import redis_conn, roles
from asterisk_cb.api import settings as api
from asterisk_cb.config import ConfigError
from asterisk_cb.core import keypad, rules
from asterisk_cb.core.cdr_marks import CdrMark
from asterisk_cb.core.durations import format_duration, parse_duration
from asterisk_cb.core.numbers import DEFAULT_PLAN, NumberPlan, NumberPlanError
from asterisk_cb.core.settings import Assignment, SettingError, SettingsFile, parse_bool
from asterisk_cb.keys import DEFAULT_NAMESPACE, InvalidKeyPart, check_namespace
from asterisk_cb.records import settings as records
from asterisk_cb.secrecy import redact
from asterisk_cb.store import DEFAULT_LEASE_MS, LinePool
from asterisk_cb.telephony.ami import AmiSettings
from asterisk_cb.telephony.ari import AriSettings
from asterisk_cb.telephony.availability import AgentSpec
from asterisk_cb.telephony.fastagi import AgiServerSettings
from asterisk_cb.telephony.tls import tls_context

SECTIONS = (
    "redis",
    "ari",
    "ami",
    "dialing",
    "numbers",
    "agents",
    roles.ROLES,
    roles.AGENT_ROLES,
    roles.USERS,
    "metrics",
    "daemon",
    "feature_code",
    "records",
    "api",
)
# A device as Asterisk names it: technology/resource (PJSIP/1001, SIP/desk-12, Local/1001@agents).
_DEVICE = re.compile(r"[A-Za-z][A-Za-z0-9]*/[A-Za-z0-9_.@+-]{1,80}\Z")
_CONTEXT = re.compile(r"[A-Za-z0-9_-]{1,79}\Z")
# [agents]: a hot-desking agent's queue member name (queues.conf's membername, AMI AddQueueMember's
# MemberName) and an app_agent_pool agent, as Asterisk names its queue interface.
MEMBER_PREFIX = "member:"
POOL_PREFIX = "Agent/"
_MEMBER_NAME = re.compile(r"[A-Za-z0-9 _.@+'()-]{1,80}\Z")

Section = Mapping[str, Assignment]
T = TypeVar("T")


@dataclass(frozen=True)
class RedisTarget:
    """A URL, or a Sentinel section (redis-py has no Sentinel URL), plus the key namespace."""

    url: str | None
    sentinel: redis_conn.SentinelSettings | None
    namespace: str
    cluster: bool = False  # the URL names one node of a Redis Cluster
    timeouts: redis_conn.Timeouts = field(default_factory=redis_conn.Timeouts)
    replica_wait: redis_conn.ReplicaWait = field(default_factory=redis_conn.ReplicaWait)

    def connect(self, name: str) -> redis_conn.RedisClient:
        return redis_conn.connect(
            self.url, sentinel=self.sentinel, cluster=self.cluster, name=name, timeouts=self.timeouts
        )


@dataclass(frozen=True)
class AriTarget:
    url: str  # ARI's base URL: http(s)://host:port/ari (http.conf's address and port)
    user: str  # an ari.conf user
    password: str
    app: str  # the Stasis application name the daemon registers
    ca_file: str | None = None  # CA of Asterisk's certificate (https:// URL); None: the system's CAs

    def client_settings(self) -> AriSettings:
        """What the ARI client needs of it (the daemon's and doctor's clients alike)."""
        return AriSettings(self.url, self.user, self.password, self.app, ca_file=self.ca_file)


@dataclass(frozen=True)
class AmiTarget:
    host: str
    port: int
    user: str  # a manager.conf user (read: system,call,agent; write: agent,reporting)
    secret: str
    tls: bool = False  # manager.conf tlsenable (default port then 5039)
    ca_file: str | None = None  # CA of Asterisk's certificate (tls = yes); None: the system's CAs

    def client_settings(self, *, agent_pool: bool = False) -> AmiSettings:
        """What the AMI client needs of it; ``agent_pool``: seed app_agent_pool logins too."""
        return AmiSettings(
            self.user,
            self.secret,
            self.host,
            self.port,
            agent_pool=agent_pool,
            tls=self.tls,
            ca_file=self.ca_file,
        )


@dataclass(frozen=True)
class Dialing:
    """How contacts are dialled: through the admin's own outbound context, so their rules apply."""

    outbound_context: str
    queue_context: str = "callback-queue"  # extension <queue> runs Queue() (dialplan/callback-queue.conf)
    amd_context: str = "callback-amd"  # extension s runs AMD() (dialplan/callback-amd.conf)
    max_calls: int | None = None  # callback calls one daemon has at once; None: no cap
    context_max_calls: int | None = None  # callback calls through outbound_context, every daemon together
    cdr_mark: CdrMark = field(default_factory=CdrMark)  # what a report filters the CDR on (core.cdr_marks)

    @property
    def lines(self) -> LinePool | None:
        """The cap shared by every daemon on the Redis, as a pool named after the outbound context."""
        return LinePool(self.outbound_context, self.context_max_calls) if self.context_max_calls else None


@dataclass(frozen=True)
class Timing:
    """How fast the daemons react to each other and to silence, a trade-off the admin picks.

    ``lease``: how long a daemon's hold on a callback outlives the daemon; a killed daemon's callbacks
    (live calls included) are taken over by another or the restarted daemon this long after it vanished.
    Shorter takes over sooner but renews more often (every third of it) and lets a longer stall (GC,
    network) cost the hold. ``call_check``: how long a live call may go without any ARI event before its
    channels are looked up (an event lost without a reconnect cannot keep a call "live" longer).
    ``pause_sweep``: how often the "callback" queue pauses no call holds are looked for and lifted (one
    QueueStatus each time); an agent left paused misses queue calls until then."""

    lease: timedelta = timedelta(milliseconds=DEFAULT_LEASE_MS)
    call_check: timedelta = timedelta(seconds=30)
    pause_sweep: timedelta = timedelta(seconds=60)


TIMING_BOUNDS = (timedelta(seconds=3), timedelta(minutes=10))
# [feature_code] request_timeout: the agent waits for each answer (the dialplan's ACB_AGI_TIMEOUT, 4 s).
REQUEST_TIMEOUT_BOUNDS = (timedelta(seconds=1), timedelta(seconds=60))


@dataclass(frozen=True)
class Listen:
    host: str
    port: int


@dataclass(frozen=True)
class FeatureCodeSite:
    """``[feature_code]``: where the FastAGI server for the agents' feature code listens (None: off), who
    may connect (Asterisk's addresses), how long a request may take, and the keypad's choices."""

    listen: Listen | None = Listen("127.0.0.1", 4573)
    permit: tuple[IPv4Network | IPv6Network, ...] = (ip_network("127.0.0.1/32"), ip_network("::1/128"))
    request_timeout: timedelta = timedelta(seconds=3)
    options: keypad.FeatureCodeOptions = field(default_factory=keypad.FeatureCodeOptions)

    def server_settings(self) -> AgiServerSettings:
        """The FastAGI server's settings (only asked for while ``listen`` is set)."""
        assert self.listen is not None
        return AgiServerSettings(
            self.listen.host,
            self.listen.port,
            self.permit,
            request_timeout_s=self.request_timeout.total_seconds(),
        )


@dataclass(frozen=True)
class Deployment:
    redis: RedisTarget
    ari: AriTarget
    ami: AmiTarget
    dialing: Dialing
    agents: Mapping[str, AgentSpec]  # agent id -> how its devices are found (all ring at once)
    metrics: Listen | None = None  # where /metrics is served; None: no metrics
    timing: Timing = Timing()
    numbers: NumberPlan = DEFAULT_PLAN  # how contact numbers are keyed (dialled as entered)
    feature_code: FeatureCodeSite = FeatureCodeSite()
    roles: roles.RoleLayer = roles.NO_ROLES  # [roles], [agent_roles], [users]: over the built-in roles
    records: records.RecordsSite = field(default_factory=records.RecordsSite)  # [records]: the CEL writer
    api: api.ApiSite = field(default_factory=api.ApiSite)  # [api]: the REST API (off unless listen is set)

    def has_agent(self, agent: str) -> bool:
        """Agents are those listed in ``[agents]``: callbacks for anyone else are refused."""
        return agent in self.agents

    def has_queue(self, queue: str) -> bool:
        """Any valid queue name is accepted here; the daemon checks queues against Asterisk's list."""
        return bool(_CONTEXT.match(queue))


# What each section may hold ([agents] holds agent ids, [users] user names, the roles sections names).
# A misspelt option is refused, as Asterisk's own modules warn, rather than silently leaving its default
# in force.
KNOWN_OPTIONS: Mapping[str, frozenset[str]] = {
    "redis": frozenset(
        {"url", "namespace", "cluster", "sentinels", "service_name", "db", "username", "password"}
        | {"sentinel_username", "sentinel_password", "ssl"}
        | {"socket_timeout", "connect_timeout", "health_check_interval"}
        | {"replica_wait", "replica_wait_timeout"}
    ),
    "ari": frozenset({"url", "user", "password", "app", "ca_file"}),
    "ami": frozenset({"host", "port", "user", "secret", "tls", "ca_file"}),
    "dialing": frozenset(
        {"outbound_context", "queue_context", "amd_context", "max_calls", "context_max_calls"}
        | {"cdr_mark_field", "cdr_mark_text"}
    ),
    "numbers": frozenset({"country_code", "trunk_prefix", "international_prefix"}),
    "metrics": frozenset({"listen"}),
    "daemon": frozenset({"lease", "call_check", "pause_sweep"}),
    "feature_code": frozenset(
        {"listen", "permit", "request_timeout", "second_callback", *(f"preset{n}" for n in range(1, 10))}
    ),
    "records": frozenset(
        {"dsn", "cel_table", "cdr_table", "marker_table", "columns", "usegmtime", "batch"}
        | {"connect_timeout", "write_timeout"}
    ),
    "api": frozenset(
        {"listen", "trusted_proxies", "cors_origins", "max_body", "auth_failures", "auth_window"}
        | {"panel", "session_idle", "session_max_age"}
    ),
}


def from_settings_file(file: SettingsFile) -> Deployment:
    """The deployment sections of a loaded config file; a missing required option is an error."""
    sections = file.other_sections
    _refuse_unknown_options(sections)
    agents = agents_section(sections.get("agents", {}))
    return Deployment(
        redis=_redis(sections.get("redis", {})),
        ari=_ari(sections.get("ari", {})),
        ami=_ami(sections.get("ami", {})),
        dialing=_dialing(sections.get("dialing", {})),
        agents=agents,
        metrics=_listen(sections.get("metrics", {}), "listen"),
        timing=_timing(sections.get("daemon", {})),
        numbers=_numbers(sections.get("numbers", {})),
        feature_code=_feature_code(sections.get("feature_code", {})),
        roles=_roles(sections, agents),
        records=_records(sections.get("records", {})),
        api=_api(sections.get("api", {})),
    )


def explain(site: Deployment, sections: Mapping[str, Section]) -> list[tuple[str, str, str]]:
    """Each connection option's effective value and where it came from (the file's line, or default),
    for ``check-config``; passwords and secrets are never printed."""
    sentinel = site.redis.sentinel
    where = (
        ("redis", "url", redact(site.redis.url or ""))
        if sentinel is None
        else ("redis", "sentinels", ", ".join(f"{host}:{port}" for host, port in sentinel.sentinels))
    )
    values = [
        where,
        ("redis", "namespace", site.redis.namespace),
        ("redis", "cluster", "yes" if site.redis.cluster else "no"),
        ("redis", "socket_timeout", f"{site.redis.timeouts.socket_s:g}s"),
        ("redis", "replica_wait", site.redis.replica_wait.mode.value),
        ("redis", "replica_wait_timeout", f"{site.redis.replica_wait.timeout_ms}ms"),
        ("ari", "url", site.ari.url),
        ("ari", "user", site.ari.user),
        ("ari", "password", "(set)"),
        ("ari", "app", site.ari.app),
        ("ari", "ca_file", site.ari.ca_file or "(system CAs)"),
        ("ami", "host", site.ami.host),
        ("ami", "port", str(site.ami.port)),
        ("ami", "user", site.ami.user),
        ("ami", "secret", "(set)"),
        ("ami", "tls", "yes" if site.ami.tls else "no"),
        ("ami", "ca_file", site.ami.ca_file or "(system CAs)"),
        ("dialing", "outbound_context", site.dialing.outbound_context),
        ("dialing", "queue_context", site.dialing.queue_context),
        ("dialing", "amd_context", site.dialing.amd_context),
        ("dialing", "max_calls", _or_none(site.dialing.max_calls)),
        ("dialing", "context_max_calls", _or_none(site.dialing.context_max_calls)),
        ("dialing", "cdr_mark_field", site.dialing.cdr_mark.field.value),
        ("dialing", "cdr_mark_text", site.dialing.cdr_mark.text),
        ("numbers", "country_code", site.numbers.country_code or "(none)"),
        ("numbers", "trunk_prefix", site.numbers.trunk_prefix or "(none)"),
        ("numbers", "international_prefix", site.numbers.international_prefix),
        ("metrics", "listen", f"{site.metrics.host}:{site.metrics.port}" if site.metrics else "(off)"),
        ("daemon", "lease", format_duration(site.timing.lease)),
        ("daemon", "call_check", format_duration(site.timing.call_check)),
        ("daemon", "pause_sweep", format_duration(site.timing.pause_sweep)),
        *_feature_code_rows(site.feature_code),
        *site.records.explain(),
        *site.api.explain(),
    ]
    rows = []
    for section, option, value in values:
        found = sections.get(section, {}).get(option)
        rows.append((f"[{section}] {option}", value or "", str(found.origin) if found else "default"))
    return rows


def _or_none(cap: int | None) -> str:
    return "(no cap)" if cap is None else str(cap)


def _refuse_unknown_options(sections: Mapping[str, Section]) -> None:
    for name, known in KNOWN_OPTIONS.items():
        for option, assignment in sections.get(name, {}).items():
            if option not in known:
                listed = ", ".join(sorted(known))
                raise ConfigError(f"{assignment.origin}: {option}: unknown option (known: {listed})")


def _redis(section: Section) -> RedisTarget:
    raw = {option: assignment.value for option, assignment in section.items()}
    namespace = raw.pop("namespace", DEFAULT_NAMESPACE)
    try:
        check_namespace(namespace)
    except InvalidKeyPart as error:
        raise _error(section, "namespace", str(error)) from error
    cluster_text = raw.pop("cluster", "no")
    try:
        cluster = parse_bool(cluster_text)
    except ValueError as error:
        raise _error(section, "cluster", f"{cluster_text!r} is not yes or no") from error
    try:
        timeouts = redis_conn.Timeouts.from_section(raw)
        waits = redis_conn.ReplicaWait.from_section(raw, timeouts)
    except redis_conn.RedisConfigError as error:
        option, _, reason = str(error).partition(": ")
        raise _error(section, option, reason) from error
    try:
        if "url" in raw:
            return RedisTarget(_redis_url(section, raw["url"]), None, namespace, cluster, timeouts, waits)
        if "sentinels" in raw:
            sentinel = redis_conn.SentinelSettings.from_section(raw)
            return RedisTarget(None, sentinel, namespace, False, timeouts, waits)
    except redis_conn.RedisConfigError as error:
        raise _error(section, "sentinels", str(error)) from error
    return RedisTarget("redis://127.0.0.1:6379/0", None, namespace, False, timeouts, waits)


def _redis_url(section: Section, url: str) -> str:
    """Refused here, with the URL's password hidden, rather than as a traceback at the first command
    (redis-py parses it only when connecting). Its own messages may quote part of a password."""
    try:
        parse_url(url)
    except ValueError as error:
        shapes = "redis://[[user]:password@]host[:port][/db], rediss://... (TLS) or unix:///path[?db=N]"
        reason = f"{redact(url)!r} is not a Redis URL: {shapes}; percent-encode @ : / ? # in a password"
        raise _error(section, "url", reason) from error
    return url


def _ari(section: Section) -> AriTarget:
    return AriTarget(
        url=_ari_url(section).rstrip("/"),
        user=_required(section, "ari", "user").value,
        password=_required(section, "ari", "password").value,
        app=_value(section, "app", "asterisk-cb"),
        ca_file=_ca_file(section),
    )


def _ari_url(section: Section) -> str:
    """ARI's base URL alone: aiohttp refuses credentials in it beside the user and password (a bare
    ValueError at the first request), and the ARI paths are appended to it, so no query either."""
    url = _value(section, "url", "http://127.0.0.1:8088/ari")
    try:
        parts = urlsplit(url)
        well_formed = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is no number, an unclosed [IPv6
        well_formed = False
    if not well_formed:
        raise _error(section, "url", f"{redact(url)!r} is not an http:// or https:// URL")
    if "@" in parts.netloc or parts.query or parts.fragment:
        hint = "user and password belong in [ari] user and password; the URL is http(s)://host:port/ari"
        raise _error(section, "url", f"{redact(url)!r}: {hint}")
    return url


def _ami(section: Section) -> AmiTarget:
    tls_text = _value(section, "tls", "no")
    try:
        tls = parse_bool(tls_text)
    except ValueError as error:
        raise _error(section, "tls", f"{tls_text!r} is not yes or no") from error
    return AmiTarget(
        host=_value(section, "host", "127.0.0.1"),
        port=_port(section, "port", _value(section, "port", "5039" if tls else "5038")),
        user=_required(section, "ami", "user").value,
        secret=_required(section, "ami", "secret").value,
        tls=tls,
        ca_file=_ca_file(section),
    )


def _ca_file(section: Section) -> str | None:
    """A CA file (PEM) that must load now: a typo is refused at start, not at the first TLS handshake."""
    path = _value(section, "ca_file", "")
    if not path:
        return None
    try:
        tls_context(path)
    except (OSError, ssl.SSLError) as error:
        raise _error(section, "ca_file", f"cannot load {path!r} as PEM certificates: {error}") from error
    return path


def _listen(section: Section, option: str) -> Listen | None:
    """``host:port`` (IPv6 as ``[::1]:9468``); empty or absent means off."""
    text = _value(section, option, "")
    if not text:
        return None
    host, _, port = text.rpartition(":")
    if not host:
        raise _error(section, option, f"{text!r} is not host:port")
    return Listen(host.strip("[]"), _port(section, option, port))


def _port(section: Section, option: str, text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise _error(section, option, f"{text!r} is not a TCP port")
    return int(text)


def agents_section(section: Section) -> dict[str, AgentSpec]:
    """The `[agents]` section: agent id -> how its devices are found (see _agent_spec)."""
    agents = {}
    for agent, assignment in section.items():
        try:
            rules.identifier(agent, "agent")
            agents[agent] = _agent_spec(agent, assignment.value)
        except rules.ValidationError as error:
            raise ConfigError(f"{assignment.origin}: {agent}: {error.reason}") from error
    return agents


def _agent_spec(agent: str, value: str) -> AgentSpec:
    """``PJSIP/1001 & PJSIP/1001-mobile & member:Alice Smith & Agent/1001``: fixed devices, the queue
    member name a hot-desking agent logs in with (its phones are its memberships' interfaces), the
    app_agent_pool agent (its phone is the one it logged in from). All found ring at once."""
    parts = [part.strip() for part in value.split("&") if part.strip()]
    if not parts:
        raise _bad_agent_line(agent, value)
    member = _one(agent, value, [part for part in parts if part.startswith(MEMBER_PREFIX)])
    pool = _one(agent, value, [part for part in parts if part.startswith(POOL_PREFIX)])
    devices = tuple(part for part in parts if part not in (member, pool))
    if not all(_DEVICE.match(device) for device in devices):
        raise _bad_agent_line(agent, value)
    member_name = member.removeprefix(MEMBER_PREFIX).strip()
    if member and not _MEMBER_NAME.match(member_name):
        raise rules.ValidationError("agent", f"{member_name!r} is not a queue member name (1-80 characters)")
    pool_agent = rules.identifier(pool.removeprefix(POOL_PREFIX), "agent") if pool else ""
    return AgentSpec(agent, devices, member_name=member_name, pool_agent=pool_agent)


def _one(agent: str, value: str, found: list[str]) -> str:
    if len(found) > 1:
        raise _bad_agent_line(agent, value)
    return found[0] if found else ""


def _bad_agent_line(agent: str, value: str) -> rules.ValidationError:
    return rules.ValidationError(
        "agent",
        f"{value!r}: devices are TECH/resource joined by '&' (PJSIP/{agent} & PJSIP/{agent}-mobile), "
        f"plus at most one {MEMBER_PREFIX}<queue member name> and one {POOL_PREFIX}<app_agent_pool id>",
    )


def _roles(sections: Mapping[str, Section], agents: Mapping[str, AgentSpec]) -> roles.RoleLayer:
    try:
        return roles.from_sections(
            sections.get(roles.ROLES, {}),
            sections.get(roles.AGENT_ROLES, {}),
            agents,
            sections.get(roles.USERS, {}),
        )
    except SettingError as error:
        raise ConfigError(str(error)) from error


def agent_targets(spec: AgentSpec) -> str:
    """An agent's line in ``[agents]`` syntax (what check-config shows)."""
    parts = [*spec.devices]
    parts += [f"{MEMBER_PREFIX}{spec.member_name}"] if spec.member_name else []
    parts += [f"{POOL_PREFIX}{spec.pool_agent}"] if spec.pool_agent else []
    return " & ".join(parts)


def _dialing(section: Section) -> Dialing:
    outbound = _context(_required(section, "dialing", "outbound_context"), "outbound_context")
    optional = {
        option: _context(found, option)
        for option in ("queue_context", "amd_context")
        if (found := section.get(option)) is not None and found.value
    }
    return Dialing(
        outbound,
        **optional,
        max_calls=_cap(section, "max_calls"),
        context_max_calls=_cap(section, "context_max_calls"),
        cdr_mark=_cdr_mark(section),
    )


def _cdr_mark(section: Section) -> CdrMark:
    """``cdr_mark_field`` and ``cdr_mark_text``; a refusal names the option it is about."""
    try:
        return CdrMark.parse(_value(section, "cdr_mark_field", ""), _value(section, "cdr_mark_text", ""))
    except ValueError as error:
        option, _, reason = str(error).partition(": ")
        raise _error(section, option, reason) from error


def _numbers(section: Section) -> NumberPlan:
    """The numbering plan; an option set empty means none (a country without a trunk prefix)."""
    values = {option: found.value for option, found in section.items()}
    try:
        return NumberPlan(**values)
    except NumberPlanError as error:
        raise _error(section, error.option, error.reason) from error


def _timing(section: Section) -> Timing:
    defaults = Timing()
    return Timing(
        lease=_bounded_duration(section, "lease", defaults.lease),
        call_check=_bounded_duration(section, "call_check", defaults.call_check),
        pause_sweep=_bounded_duration(section, "pause_sweep", defaults.pause_sweep),
    )


def _bounded_duration(
    section: Section, option: str, default: timedelta, bounds: tuple[timedelta, timedelta] = TIMING_BOUNDS
) -> timedelta:
    found = section.get(option)
    if found is None or not found.value:
        return default
    try:
        span = parse_duration(found.value)
    except ValueError as error:
        raise _error(section, option, str(error)) from error
    low, high = bounds
    if not low <= span <= high:
        bounds = f"{format_duration(low)} to {format_duration(high)}"
        raise _error(section, option, f"{found.value!r} is outside {bounds}")
    return span


def _cap(section: Section, option: str) -> int | None:
    """A cap on simultaneous calls: a whole number from 1 up; empty or absent means no cap."""
    text = _value(section, option, "")
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise _error(section, option, f"{text!r} is not a whole number of calls from 1 up (empty: no cap)")
    return int(text)


def _context(assignment: Assignment, option: str) -> str:
    if not _CONTEXT.match(assignment.value):
        raise ConfigError(f"{assignment.origin}: {option}: {assignment.value!r} is not a context name")
    return assignment.value


def _value(section: Section, option: str, default: str) -> str:
    found = section.get(option)
    return found.value if found is not None and found.value else default


def _required(section: Section, name: str, option: str) -> Assignment:
    found = section.get(option)
    if found is None or not found.value:
        raise ConfigError(f"[{name}] {option}: required (see config/asterisk-cb.conf)")
    return found


def _error(section: Section, option: str, reason: str) -> ConfigError:
    found = section.get(option)
    where = f"{found.origin}: " if found is not None else ""
    return ConfigError(f"{where}{option}: {reason}")


def _feature_code(section: Section) -> FeatureCodeSite:
    defaults = FeatureCodeSite()
    listen = _listen(section, "listen") if "listen" in section else defaults.listen
    permit = _permit(section) if _value(section, "permit", "") else defaults.permit
    presets = {}
    for number in range(1, 10):
        text = _value(section, f"preset{number}", "")
        if text:
            try:
                presets[number] = keypad.parse_preset(text)
            except ValueError as error:
                raise _error(section, f"preset{number}", str(error)) from error
    try:
        second = parse_bool(_value(section, "second_callback", "no"))
    except ValueError as error:
        raise _error(section, "second_callback", str(error)) from error
    timeout = _bounded_duration(section, "request_timeout", defaults.request_timeout, REQUEST_TIMEOUT_BOUNDS)
    options = keypad.FeatureCodeOptions(presets, second)
    return FeatureCodeSite(listen, permit, timeout, options)


def _permit(section: Section) -> tuple[IPv4Network | IPv6Network, ...]:
    """Addresses or networks (``127.0.0.1``, ``10.0.0.0/24``), comma-separated: Asterisk hosts only."""
    text = _value(section, "permit", "")
    try:
        return tuple(ip_network(part.strip()) for part in text.split(","))
    except ValueError as error:
        raise _error(section, "permit", f"{text!r}: {error} (write e.g. 127.0.0.1, 10.0.0.0/24)") from error


def _feature_code_rows(site: FeatureCodeSite) -> list[tuple[str, str, str]]:
    listen = f"{site.listen.host}:{site.listen.port}" if site.listen else "(off)"
    rows = [
        ("feature_code", "listen", listen),
        ("feature_code", "permit", ", ".join(str(network) for network in site.permit)),
        ("feature_code", "request_timeout", format_duration(site.request_timeout)),
        ("feature_code", "second_callback", "yes" if site.options.allow_second else "no"),
    ]
    presets = site.options.presets
    return rows + [("feature_code", f"preset{n}", preset.text) for n, preset in sorted(presets.items())]


# [records] write_timeout and connect_timeout: long enough for a busy server, short enough that the
# writer notices a dead one (it never blocks anything else either way).
RECORDS_TIMEOUT_BOUNDS = (timedelta(seconds=1), timedelta(minutes=5))
RECORDS_BATCH_MAX = 5000


def _records(section: Section) -> records.RecordsSite:
    """``[records]``: the CEL writer's database (README "CEL: the callback's life in the cel table")."""
    defaults = records.RecordsSite()
    parsers = {
        "dsn": records.parse_dsn,
        "cel_table": records.parse_table,
        "cdr_table": records.parse_table,
        "marker_table": records.parse_table,
        "columns": records.parse_columns,
        "usegmtime": parse_bool,
        "batch": _records_batch,
    }
    values = {}
    for option, parse in parsers.items():
        found = section.get(option)
        if found is not None and (found.value or option == "dsn"):
            try:
                values[option] = parse(found.value)
            except ValueError as error:
                raise _error(section, option, str(error)) from None
    for option in ("connect_timeout", "write_timeout"):
        default = getattr(defaults, option)
        values[option] = _bounded_duration(section, option, default, RECORDS_TIMEOUT_BOUNDS)
    return dataclasses.replace(defaults, **values)


def _records_batch(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= RECORDS_BATCH_MAX:
        raise ValueError(f"{text!r} is not a whole number of events from 1 to {RECORDS_BATCH_MAX}")
    return int(text)


# [api] auth_window: long enough to slow a guesser down, short enough that a typo'd token is forgiven.
AUTH_WINDOW_BOUNDS = (timedelta(seconds=10), timedelta(hours=1))
# [api] session_idle and session_max_age: a minute (tests, kiosks) to a month (a wall display).
SESSION_BOUNDS = (timedelta(minutes=1), timedelta(days=30))


def _api(section: Section) -> api.ApiSite:
    """``[api]``: the REST API (README "REST API"); off while ``listen`` is empty."""
    defaults = api.ApiSite()
    listen = _listen(section, "listen")
    return api.ApiSite(
        host=listen.host if listen else None,
        port=listen.port if listen else None,
        trusted_proxies=_parsed(section, "trusted_proxies", api.parse_networks, defaults.trusted_proxies),
        cors_origins=_parsed(section, "cors_origins", api.parse_origins, defaults.cors_origins),
        max_body=_parsed(section, "max_body", api.parse_max_body, defaults.max_body),
        auth_failures=_parsed(section, "auth_failures", api.parse_auth_failures, defaults.auth_failures),
        auth_window=_bounded_duration(section, "auth_window", defaults.auth_window, AUTH_WINDOW_BOUNDS),
        panel=_parsed(section, "panel", parse_bool, defaults.panel),
        session_idle=_bounded_duration(section, "session_idle", defaults.session_idle, SESSION_BOUNDS),
        session_max_age=_bounded_duration(
            section, "session_max_age", defaults.session_max_age, SESSION_BOUNDS
        ),
    )


def _parsed(section: Section, option: str, parse: Callable[[str], T], default: T) -> T:
    """The option's value through ``parse`` (its ``ValueError`` names the file, line and option)."""
    text = _value(section, option, "")
    if not text:
        return default
    try:
        return parse(text)
    except ValueError as error:
        raise _error(section, option, str(error)) from None
