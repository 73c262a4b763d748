"""INI parsing with line numbers, settings validation, precedence and provenance, the config loader."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_cb import config, deployment
from asterisk_cb.core import ini
from asterisk_cb.core import settings as cfg
from asterisk_cb.core.durations import format_duration, parse_duration

REPO = Path(__file__).resolve().parents[3]


def load_text(text: str, other_sections: tuple[str, ...] = ()) -> cfg.SettingsFile:
    return cfg.from_documents([ini.parse(text, "cb.conf")], other_sections)


# ---- INI syntax ---------------------------------------------------------------------------------


def test_ini_dialect() -> None:
    document = ini.parse(
        '; head\n[general]\nmax_attempts = 4 ; trailing\ncaller_id => "Desk\\; 2" <123>\n'
        ";-- block\nignored = yes\n--;\nnote = kept\n#include extra.conf\n",
        "a.conf",
    )
    (section,) = document.sections
    assert [(e.key, e.value, e.line) for e in section.entries] == [
        ("max_attempts", "4", 3),
        ("caller_id", '"Desk; 2" <123>', 4),
        ("note", "kept", 8),
    ]
    assert [(i.path, i.required, i.line, i.section) for i in document.includes] == [
        ("extra.conf", True, 9, "general")
    ]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("max_attempts = 3\n", 1, "before any [section]"),
        ("[general]\n\njust words\n", 3, "not 'key = value'"),
        ("[general\n", 1, "not a valid [section]"),
        ("[general](!)\n", 1, "templates"),
        ("[general]\n = 3\n", 2, "option name is missing"),
        ("[general]\na = 1\n;-- open\nb = 2\n", 3, "never closed"),
    ],
)
def test_ini_errors_name_file_and_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(ini.IniError, match=re.escape(reason)) as raised:
        ini.parse(text, "bad.conf")
    assert (raised.value.file, raised.value.line) == ("bad.conf", line)
    assert str(raised.value).startswith(f"bad.conf:{line}: ")


@given(st.text(max_size=200))
def test_ini_parser_never_crashes_unexpectedly(text: str) -> None:
    try:
        ini.parse(text, "fuzz.conf")
    except ini.IniError as error:
        assert error.line >= 1


# ---- values -------------------------------------------------------------------------------------


@given(st.integers(0, 10**7), st.sampled_from(["s", "m", "h", "d", ""]))
def test_durations_round_trip(count: int, unit: str) -> None:
    span = parse_duration(f"{count}{unit}")
    assert parse_duration(format_duration(span)) == span


@pytest.mark.parametrize("text", ["", "1.5h", "-3s", "10 minutes", "٣s", "1w"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"Support" <+4930123>', cfg.CallerId("Support", "+4930123")),
        ("Support <123>", cfg.CallerId("Support", "123")),
        ("+49 30 123", cfg.CallerId("", "+4930123")),
        ("", cfg.CallerId()),
        ('"Only name"', cfg.CallerId("Only name", "")),
    ],
)
def test_caller_id(text: str, expected: cfg.CallerId) -> None:
    assert cfg.parse_caller_id(text) == expected
    assert cfg.parse_caller_id(str(expected)) == expected


@pytest.mark.parametrize("text", ['"A&B" <123>', "Sales <12x>", '"x" <1> trailing'])
def test_bad_caller_id(text: str) -> None:
    with pytest.raises(ValueError):
        cfg.parse_caller_id(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("weekdays 09:00-18:00", "not a day"),
        ("fri-mon 09:00-18:00", "backwards"),
        ("mon 18:00-09:00", "ends before it starts"),
        ("mon 09:00-24:30", "not a valid time span"),
        ("mon", "needs days and hours"),
        ("mon 9-17", "not a span"),
    ],
)
def test_bad_calling_hours(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        cfg.parse_calling_hours(text)


def test_defaults_as_written_match_the_dataclass() -> None:
    assert cfg.resolve(cfg.SettingsFile({}, {}), {}) == cfg.Settings()


# ---- file validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "option", "reason"),
    [
        ("[general]\nmax_attempts = 0\n", 2, "max_attempts", "outside 1..100"),
        ("[general]\nmax_attempts = three\n", 2, "max_attempts", "not a whole number"),
        ("[general]\nhorizon = 400d\n", 2, "horizon", "outside"),
        ("[general]\nmax_atempts = 3\n", 2, "max_atempts", "unknown option"),
        ("[general]\npaused = maybe\n", 2, "paused", "not yes or no"),
        ("[general]\ndefault_timezone = Mars/Base\n", 2, "default_timezone", "unknown time zone"),
        ("[queue/sales]\nfailover_queue = two words\n", 2, "failover_queue", "not a valid queue name"),
        (
            "[general]\nretry_interval = 1m\n\nretry_interval = 2m\n",
            4,
            "retry_interval",
            "already set at cb.conf:2",
        ),
        ("[general]\n[generall]\n", 2, "[generall]", "unknown section"),
        ("[queue/bad name]\n", 1, "[queue/bad name]", "not a valid queue name"),
    ],
)
def test_file_errors_name_option_file_and_line(text: str, line: int, option: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as raised:
        load_text(text)
    assert f"cb.conf:{line}" in str(raised.value)
    assert option in str(raised.value)


def test_other_sections_are_kept_raw_for_their_owners() -> None:
    loaded = load_text("[redis]\nurl = redis://localhost:6380/0\n", other_sections=("redis",))
    assert loaded.other_sections["redis"]["url"].value == "redis://localhost:6380/0"
    assert loaded.other_sections["redis"]["url"].origin.line == 2


# ---- precedence and provenance ------------------------------------------------------------------

LAYERED = """
[general]
max_attempts = 2
retry_interval = 10m
[queue/sales]
max_attempts = 4
failover_queue = overflow
[agent/1001]
max_attempts = 6
"""


@pytest.mark.parametrize(
    ("agent", "queue", "expected"),
    [("1001", "sales", 6), ("1002", "sales", 4), ("1002", None, 2), (None, None, 2), ("1001", None, 6)],
)
def test_agent_over_queue_over_general(agent: str | None, queue: str | None, expected: int) -> None:
    assert cfg.resolve(load_text(LAYERED), {}, agent, queue).max_attempts == expected


def test_runtime_override_wins_within_its_scope_only() -> None:
    loaded = load_text(LAYERED)
    runtime = cfg.runtime_layers({"general": {"max_attempts": "9", "paused": "yes"}}).layers
    sales = cfg.resolve(loaded, runtime, "1002", "sales")
    assert (sales.max_attempts, sales.paused) == (4, True), "queue file value beats a general override"
    assert cfg.resolve(loaded, runtime).max_attempts == 9


def test_explain_shows_every_option_and_its_origin() -> None:
    runtime = cfg.runtime_layers({"queue/sales": {"retry_interval": "1m"}}).layers
    lines = {line.option: line for line in cfg.explain(load_text(LAYERED), runtime, "1001", "sales")}
    assert set(lines) == set(cfg.OPTIONS)
    assert (lines["max_attempts"].text, str(lines["max_attempts"].origin)) == ("6", "cb.conf:9 [agent/1001]")
    assert (lines["retry_interval"].text, str(lines["retry_interval"].origin)) == (
        "1m",
        "runtime override [queue/sales]",
    )
    assert (lines["horizon"].text, str(lines["horizon"].origin)) == ("30d", "default")
    assert str(lines["failover_queue"].origin) == "cb.conf:7 [queue/sales]"


def test_an_unparsable_runtime_override_is_left_out_and_reported_not_raised() -> None:
    """One bad value (say, from a newer version sharing the Redis) must not stop every lookup."""
    overrides = cfg.runtime_layers(
        {
            "general": {"max_attempts": "0", "paused": "yes", "new_option": "1"},
            "redis": {"url": "x"},
            "agent/a b": {"amd": "yes"},
            "queue/sales": {"retry_interval": "1m"},
        }
    )
    assert [str(error) for error in overrides.refused] == [
        "runtime override [general]: max_attempts: 0 is outside 1..100",
        f"runtime override [general]: new_option: unknown option (known: {', '.join(cfg.OPTIONS)})",
        "runtime override [redis]: redis: 'redis': use general, queue/<name> or agent/<id>",
        "runtime override [agent/a b]: agent/a b: 'a b' is not a valid name (ASCII letters, digits, _.@+- ;"
        " 1-64 characters)",
    ]
    settings = cfg.resolve(load_text(LAYERED), overrides.layers, "1002", "sales")
    assert (settings.paused, settings.retry_interval, settings.max_attempts) == (
        True,
        timedelta(minutes=1),
        4,
    )


def test_amd_is_off_by_default_and_layered_like_every_option() -> None:
    loaded = load_text("[general]\n[queue/sales]\namd = yes\n[agent/1001]\namd = no\n")
    assert cfg.Settings().amd is False
    assert cfg.resolve(loaded, {}).amd is False
    assert cfg.resolve(loaded, {}, "1002", "sales").amd is True
    assert cfg.resolve(loaded, {}, "1001", "sales").amd is False, "the agent's section wins"
    assert cfg.resolve(loaded, cfg.runtime_layers({"agent/1002": {"amd": "on"}}).layers, "1002").amd is True
    with pytest.raises(cfg.SettingError, match=r"cb.conf:2 \[general\]: amd: 'maybe' is not yes or no"):
        load_text("[general]\namd = maybe\n")


def test_resolved_values_are_typed() -> None:
    resolved = cfg.resolve(load_text(LAYERED), {}, None, "sales")
    assert resolved.retry_interval == timedelta(minutes=10)
    assert resolved.failover_queue == "overflow"


# ---- the loader (files) -------------------------------------------------------------------------


def test_sample_config_loads_and_documents_every_option() -> None:
    sample = REPO / "config" / "asterisk-cb.conf"
    loaded = config.load(sample, other_sections=deployment.SECTIONS)
    assert cfg.resolve(loaded, {}) == cfg.Settings()
    text = sample.read_text()
    for option in cfg.OPTIONS:
        assert f"\n{option} =" in text, f"{option} is missing from the sample config"


def test_includes_continue_the_section_and_keep_their_own_lines(tmp_path: Path) -> None:
    (tmp_path / "main.conf").write_text(
        "[general]\nmax_attempts = 2\n#include queues.conf\n#tryinclude none.conf\n"
    )
    (tmp_path / "queues.conf").write_text("retry_interval = 5m\n[queue/sales]\nmax_attempts = x\n")
    with pytest.raises(config.ConfigError, match=r"queues.conf:3 \[queue/sales\]: max_attempts"):
        config.load(tmp_path / "main.conf")
    (tmp_path / "queues.conf").write_text("retry_interval = 5m\n[queue/sales]\nmax_attempts = 5\n")
    loaded = config.load(tmp_path / "main.conf")
    assert cfg.resolve(loaded, {}).retry_interval == timedelta(minutes=5)
    assert cfg.resolve(loaded, {}, queue="sales").max_attempts == 5


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "bom.conf").write_text("\ufeff[general]\nmax_attempts = 7\n", encoding="utf-8")
    assert cfg.resolve(config.load(tmp_path / "bom.conf"), {}).max_attempts == 7


def test_include_errors(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("[general]\n#include b.conf\n")
    (tmp_path / "b.conf").write_text("#include a.conf\n")
    with pytest.raises(config.ConfigError, match="loop"):
        config.load(tmp_path / "a.conf")
    (tmp_path / "c.conf").write_text("[general]\n#include missing.conf\n")
    with pytest.raises(config.ConfigError, match=r"c.conf:2: #include missing.conf: no such file"):
        config.load(tmp_path / "c.conf")
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "absent.conf")
