"""Connection settings: URL schemes and the Sentinel config section (no server needed)."""

from __future__ import annotations

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from asterisk_cb.redis_conn import (
    RedisConfigError,
    ReplicaMode,
    ReplicaWait,
    SentinelSettings,
    Timeouts,
    connect,
)


def test_sentinel_section_is_parsed() -> None:
    settings = SentinelSettings.from_section(
        {
            "sentinels": "10.0.0.1:26379, 10.0.0.2:26380 ,[fd00::3]:26379, sentinel4",
            "service_name": "callbacks",
            "db": "2",
            "password": "secret",
            "ssl": "yes",
        }
    )
    assert settings.sentinels == (
        ("10.0.0.1", 26379),
        ("10.0.0.2", 26380),
        ("fd00::3", 26379),
        ("sentinel4", 26379),
    )
    assert (settings.service_name, settings.db, settings.password, settings.ssl) == (
        "callbacks",
        2,
        "secret",
        True,
    )
    assert settings.sentinel_password is None


@pytest.mark.parametrize(
    ("section", "option"),
    [
        ({"service_name": "m"}, "sentinels"),
        ({"sentinels": "h:1"}, "service_name"),
        ({"sentinels": "h:x", "service_name": "m"}, "sentinels"),
        ({"sentinels": "h:1", "service_name": "m", "db": "one"}, "db"),
        ({"sentinels": "h:1", "service_name": "m", "ssl": "maybe"}, "ssl"),
    ],
)
def test_bad_sentinel_section_names_the_option(section: dict[str, str], option: str) -> None:
    with pytest.raises(RedisConfigError, match=f"^{option}:"):
        SentinelSettings.from_section(section)


@pytest.mark.parametrize("url", ["http://localhost:6379", "redis-sentinel://h:26379/m", "localhost:6379"])
def test_unknown_url_scheme_is_refused(url: str) -> None:
    with pytest.raises(RedisConfigError, match="scheme"):
        connect(url)


def test_exactly_one_source_is_required() -> None:
    with pytest.raises(RedisConfigError):
        connect()
    with pytest.raises(RedisConfigError):
        connect("redis://localhost", sentinel=SentinelSettings((("h", 1),), "m"))


def test_timeouts_and_replica_wait_are_parsed() -> None:
    section = {"socket_timeout": "3s", "connect_timeout": "1500ms", "health_check_interval": "10"}
    timeouts = Timeouts.from_section(section)
    assert timeouts == Timeouts(socket_s=3.0, connect_s=1.5, health_check_s=10.0)
    assert Timeouts.from_section({}) == Timeouts(socket_s=5.0, connect_s=5.0, health_check_s=30.0)
    waits = ReplicaWait.from_section({"replica_wait": "On", "replica_wait_timeout": "250ms"}, timeouts)
    assert waits == ReplicaWait(ReplicaMode.ON, 250)
    assert ReplicaWait.from_section({}, timeouts) == ReplicaWait(ReplicaMode.AUTO, 500)


@pytest.mark.parametrize(
    ("section", "option"),
    [
        ({"socket_timeout": "1s"}, "socket_timeout"),  # blocking reads take up to 1 s
        ({"socket_timeout": "0"}, "socket_timeout"),
        ({"connect_timeout": "soon"}, "connect_timeout"),
        ({"health_check_interval": "-1"}, "health_check_interval"),
        ({"replica_wait": "maybe"}, "replica_wait"),
        ({"replica_wait_timeout": "5s"}, "replica_wait_timeout"),  # not below socket_timeout (5s)
        ({"replica_wait_timeout": "0ms"}, "replica_wait_timeout"),
        ({"replica_wait_timeout": "0.4ms"}, "replica_wait_timeout"),  # WAIT 1 0 would wait for ever
    ],
)
def test_bad_timeouts_name_the_option(section: dict[str, str], option: str) -> None:
    with pytest.raises(RedisConfigError, match=f"^{option}:"):
        ReplicaWait.from_section(section, Timeouts.from_section(section))


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "unix:///run/redis.sock"])
def test_every_connection_has_the_timeouts(url: str) -> None:
    """The reply and connect timeouts on every form; keepalive over TCP (a unix socket has none)."""
    client = connect(url, timeouts=Timeouts(socket_s=3.0, connect_s=2.0, health_check_s=7.0))
    options = client.connection_pool.connection_kwargs
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (3.0, 2.0)
    assert options["health_check_interval"] == 7.0
    assert options.get("socket_keepalive", False) is url.startswith("redis:")
    assert RedisTimeoutError not in client.get_retry()._supported_errors  # a mute Redis: no second wait


def test_sentinel_connections_have_the_timeouts() -> None:
    master = connect(sentinel=SentinelSettings((("127.0.0.1", 26379),), "m"), timeouts=Timeouts(socket_s=3.0))
    sentinel = master.sentinel_manager
    assert sentinel is not None
    assert sentinel.sentinels[0].connection_pool.connection_kwargs["socket_timeout"] == 3.0
    assert master.connection_pool.connection_kwargs["socket_timeout"] == 3.0
    assert master.connection_pool.connection_kwargs["socket_keepalive"] is True
