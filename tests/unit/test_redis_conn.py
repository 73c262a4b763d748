"""Connection settings: URL schemes and the Sentinel config section (no server needed)."""

from __future__ import annotations

import pytest

from asterisk_cb.redis_conn import RedisConfigError, SentinelSettings, connect


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
