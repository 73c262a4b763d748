"""Opening the Redis connection: from a URL (redis://, rediss://, unix://) or a Sentinel config section.

redis-py has no Sentinel URL scheme, so a Sentinel deployment is described by its own config section
(``[redis]`` with ``sentinels = host:port, host:port`` and ``service_name = mymaster``). A Redis Cluster
is reached from the URL of any of its nodes with ``cluster=True``; every key of one deployment carries
one hash tag (see ``asterisk_cb.keys``), so all of it lives in one slot: Cluster gives compatibility and
failover, not sharded scale.

Whichever way, the client returns strings, retries commands after connection failures with backoff,
and health-checks idle connections, so a failover or a restarted Redis costs a retry, not a crash. A
retried store script that had in fact already run is refused by its version or fencing check, never
applied twice; a retried claim at worst leaves claims nobody works on, whose leases lapse.

A Redis that accepts connections but does not answer (stopped, swapping, a half-open TCP link) must not
hang the daemon: every reply is awaited at most ``Timeouts.socket_s`` and then fails with a
``TimeoutError`` that is not retried (a retry would wait as long again), so callers fail over to their
own retry paths within that time. TCP keepalive finds a peer host that vanished on idle connections,
pub/sub included (a subscriber waits for messages without a bound). A blocking command (BLPOP, WAIT)
must block for less than ``socket_s``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

log = logging.getLogger(__name__)

URL_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379
_RETRIES = 5
_RETRIED = (RedisConnectionError, ConnectionResetError)  # not TimeoutError: see the module's docstring
# BLPOP and pub/sub reads block at most this long at a time, so a socket timeout above it never cuts a
# healthy blocked read (WAIT's bound, replica_wait_timeout, is checked against socket_timeout itself).
LONGEST_BLOCK_S = 1.0
# TCP keepalive: probe an idle connection after 10 s, every 5 s, give up after 3 unanswered probes.
_KEEPALIVE = {"TCP_KEEPIDLE": 10, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}
# Many executor tasks share one client: past this many connections a command waits for a free one
# (up to _POOL_WAIT_SECONDS) instead of failing with "Too many connections".
_MAX_CONNECTIONS = 64
_POOL_WAIT_SECONDS = 10.0
# redis-py has no blocking pool for Sentinel: its pool fails when full, so it is made large instead.
_SENTINEL_MAX_CONNECTIONS = 1024


RedisClient = Redis | RedisCluster


class RedisConfigError(ValueError):
    """The Redis connection settings cannot be used; the message names the offending option."""


@dataclass(frozen=True)
class Timeouts:
    """How long the client waits for Redis before giving up: ``socket_s`` for any reply, ``connect_s``
    for a new connection; idle connections are checked (PING) before use after ``health_check_s``."""

    socket_s: float = 5.0
    connect_s: float = 5.0
    health_check_s: float = 30.0

    @classmethod
    def from_section(cls, section: Mapping[str, str]) -> Timeouts:
        """``socket_timeout``, ``connect_timeout``, ``health_check_interval`` (e.g. 5s, 500ms)."""
        defaults = cls()
        socket_s = _parse_seconds("socket_timeout", section.get("socket_timeout"), defaults.socket_s)
        if socket_s < 2 * LONGEST_BLOCK_S:
            raise RedisConfigError(
                f"socket_timeout: at least {2 * LONGEST_BLOCK_S:g}s (blocking reads take 1s)"
            )
        return cls(
            socket_s=socket_s,
            connect_s=_parse_seconds("connect_timeout", section.get("connect_timeout"), defaults.connect_s),
            health_check_s=_parse_seconds(
                "health_check_interval", section.get("health_check_interval"), defaults.health_check_s
            ),
        )


class ReplicaMode(enum.StrEnum):
    """Whether a commit that precedes a dial waits for a replica (``[redis] replica_wait``)."""

    AUTO = "auto"  # while the primary reports a replica in sync
    ON = "on"  # always: no replica confirming means no dial
    OFF = "off"  # never


@dataclass(frozen=True)
class ReplicaWait:
    """``replica_wait`` and ``replica_wait_timeout``: how the store guards a dial against a failover
    losing the commit before it (``asterisk_cb.store.replicas``)."""

    mode: ReplicaMode = ReplicaMode.AUTO
    timeout_ms: int = 500

    @classmethod
    def from_section(cls, section: Mapping[str, str], timeouts: Timeouts) -> ReplicaWait:
        """The two options; the wait must end before the socket timeout would cut it."""
        text = section.get("replica_wait", "").strip().lower() or cls.mode.value
        try:
            mode = ReplicaMode(text)
        except ValueError:
            raise RedisConfigError(f"replica_wait: {text!r} is not auto, on or off") from None
        timeout_s = _parse_seconds("replica_wait_timeout", section.get("replica_wait_timeout"), 0.5)
        if timeout_s >= timeouts.socket_s:
            raise RedisConfigError(
                f"replica_wait_timeout: must be below socket_timeout ({timeouts.socket_s:g}s)"
            )
        return cls(mode, round(timeout_s * 1000))


@dataclass(frozen=True)
class SentinelSettings:
    """Where the Sentinels are and which monitored master to use."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False

    @classmethod
    def from_section(cls, section: Mapping[str, str]) -> SentinelSettings:
        """Read ``sentinels``, ``service_name`` and the optional ``db``, ``username``, ``password``,
        ``sentinel_username``, ``sentinel_password``, ``ssl`` options of a config section."""
        if not section.get("sentinels", "").strip():
            raise RedisConfigError("sentinels: list at least one host:port")
        service_name = section.get("service_name", "").strip()
        if not service_name:
            raise RedisConfigError("service_name: the master name the Sentinels monitor is required")
        return cls(
            sentinels=tuple(
                _parse_host_port(item) for item in section["sentinels"].split(",") if item.strip()
            ),
            service_name=service_name,
            db=_parse_int("db", section.get("db", "0")),
            username=section.get("username") or None,
            password=section.get("password") or None,
            sentinel_username=section.get("sentinel_username") or None,
            sentinel_password=section.get("sentinel_password") or None,
            ssl=_parse_bool("ssl", section.get("ssl", "no")),
        )


def connect(
    url: str | None = None,
    *,
    sentinel: SentinelSettings | None = None,
    cluster: bool = False,
    name: str = "asterisk-cb",
    timeouts: Timeouts = Timeouts(),
) -> RedisClient:
    """A client for exactly one of ``url`` (any node's, with ``cluster``) or ``sentinel``; ``name``
    shows in CLIENT LIST."""
    if (url is None) == (sentinel is None):
        raise RedisConfigError("give exactly one of a Redis URL or a Sentinel section")
    if sentinel is not None:
        return _connect_sentinel(sentinel, name, timeouts)
    assert url is not None
    scheme = urlsplit(url).scheme
    if scheme not in URL_SCHEMES:
        raise RedisConfigError(f"url: scheme {scheme!r} is not one of {', '.join(URL_SCHEMES)}")
    options = _client_options(timeouts, tcp=scheme != "unix")
    if cluster:
        return RedisCluster.from_url(url, client_name=name, **options)
    pool = BlockingConnectionPool.from_url(
        url, client_name=name, max_connections=_MAX_CONNECTIONS, timeout=_POOL_WAIT_SECONDS, **options
    )
    return Redis.from_pool(pool)


class _SentinelMasterClient(Redis):
    """The master's client, which also closes the Sentinel connections it was discovered through."""

    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_manager is not None:
            await self.sentinel_manager.aclose()


def _connect_sentinel(settings: SentinelSettings, name: str, timeouts: Timeouts) -> Redis:
    sentinel_auth = {"username": settings.sentinel_username, "password": settings.sentinel_password}
    socket_options = _socket_options(timeouts, tcp=True)
    sentinels = Sentinel(
        list(settings.sentinels),
        sentinel_kwargs={key: value for key, value in sentinel_auth.items() if value} | socket_options,
        **socket_options,
    )
    master = sentinels.master_for(
        settings.service_name,
        redis_class=_SentinelMasterClient,
        db=settings.db,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
        client_name=name,
        max_connections=_SENTINEL_MAX_CONNECTIONS,
        **_client_options(timeouts, tcp=True),
    )
    master.sentinel_manager = sentinels
    return master


def _client_options(timeouts: Timeouts, *, tcp: bool) -> dict[str, object]:
    """Timeouts are not retried: a Redis that did not answer in ``socket_s`` is not answering."""
    return {
        "decode_responses": True,
        "health_check_interval": timeouts.health_check_s,
        "retry": Retry(ExponentialBackoff(cap=2.0, base=0.05), _RETRIES, _RETRIED),
        "retry_on_error": list(_RETRIED),
        **_socket_options(timeouts, tcp=tcp),
    }


def _socket_options(timeouts: Timeouts, *, tcp: bool) -> dict[str, object]:
    """Reply and connect timeouts; over TCP also keepalive, with the probes the platform can tune."""
    options: dict[str, object] = {
        "socket_timeout": timeouts.socket_s,
        "socket_connect_timeout": timeouts.connect_s,
    }
    if tcp:
        tuned = {getattr(socket, name): value for name, value in _KEEPALIVE.items() if hasattr(socket, name)}
        options |= {"socket_keepalive": True, "socket_keepalive_options": tuned}
    return options


async def node_of(redis: RedisClient, key: str) -> dict[str, object]:
    """``target_nodes`` for a keyless command (INFO, WAIT) that concerns ``key``'s data: on a Cluster
    the primary holding its slot; elsewhere nothing (the one server)."""
    if not isinstance(redis, RedisCluster):
        return {}
    await redis.initialize()  # a no-op once the slot map is known
    return {"target_nodes": redis.get_node_from_key(key)}


def _parse_host_port(item: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    if not host:
        return item.strip(), DEFAULT_SENTINEL_PORT
    return host.strip("[]"), _parse_int("sentinels", port)


def _parse_int(option: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise RedisConfigError(f"{option}: {text!r} is not a whole number") from None


_SECONDS = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s)?\Z")


def _parse_seconds(option: str, text: str | None, default: float) -> float:
    """``500ms``, ``2s``, ``1.5s`` or bare seconds; absent or empty: ``default``; never 0 (no wait at
    all is not a timeout) nor above an hour."""
    if text is None or not text.strip():
        return default
    match = _SECONDS.match(text.strip().lower())
    seconds = float(match[1]) / (1000 if match[2] == "ms" else 1) if match else 0.0
    if not 0.001 <= seconds <= 3600:  # WAIT's timeout in whole ms, and its 0 would wait for ever
        raise RedisConfigError(f"{option}: {text!r} is not a time from 1ms to 3600s (e.g. 500ms, 5s)")
    return seconds


def _parse_bool(option: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"yes", "true", "on", "1"}:
        return True
    if lowered in {"no", "false", "off", "0"}:
        return False
    raise RedisConfigError(f"{option}: {text!r} is not yes/no")


async def follow_channel(
    redis: RedisClient, channel: str, on_message: Callable[[str | None], None], retry_delay_s: float = 1.0
) -> None:
    """Call ``on_message(data)`` for every message published on ``channel``, until cancelled, and
    ``on_message(None)`` whenever messages may have been missed: pub/sub keeps nothing for a subscriber
    that is away, so at each (re)subscription the caller looks at the durable state again."""
    gap = _Gap(on_message)
    while True:
        try:
            await redis.ping()  # a Cluster client must learn its slot map before subscribing
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                gap.reconnected(None)
                # redis-py reconnects and resubscribes by itself, silently: hear of it too.
                assert pubsub.connection is not None
                pubsub.connection.register_connect_callback(gap.reconnected)
                while True:  # not listen(): redis-py 8.0 cut its read at socket_timeout (#4098)
                    message = await pubsub.get_message(timeout=LONGEST_BLOCK_S)
                    if message is not None and message["type"] == "message":
                        on_message(message["data"])
        except Exception as error:  # any failure: following must outlive it
            log.warning("channel %s lost, resubscribing: %s: %s", channel, type(error).__name__, error)
            await asyncio.sleep(retry_delay_s)


@dataclass(frozen=True)
class _Gap:
    """redis-py keeps connect callbacks as weak method references: a bound method, alive as long as
    ``follow_channel`` runs."""

    on_message: Callable[[str | None], None]

    def reconnected(self, _connection: object) -> None:
        self.on_message(None)
