"""The deployment sections of the config: good values load, every bad one names its file and line."""

import configparser
import shlex
from datetime import timedelta
from pathlib import Path

import pytest
from config_texts import REQUIRED

from asterisk_cb import config, deployment, redis_conn
from asterisk_cb.cli import build_parser
from asterisk_cb.config import ConfigError
from asterisk_cb.core.cdr_marks import CdrMark, MarkField
from asterisk_cb.core.numbers import NumberPlan
from asterisk_cb.keys import Keys
from asterisk_cb.telephony.availability import AgentSpec


def load(tmp_path: Path, text: str) -> deployment.Deployment:
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(text)
    return deployment.from_settings_file(config.load(path, other_sections=deployment.SECTIONS))


def test_defaults_point_at_a_local_asterisk_and_redis(tmp_path: Path) -> None:
    site = load(tmp_path, REQUIRED)
    assert site.redis.url == "redis://127.0.0.1:6379/0"
    assert site.redis.namespace == "asterisk-cb"
    assert site.ari.url == "http://127.0.0.1:8088/ari"
    assert site.ari.app == "asterisk-cb"
    assert (site.ami.host, site.ami.port) == ("127.0.0.1", 5038)
    assert site.dialing.outbound_context == "from-internal"


def test_a_config_without_namespace_and_a_bare_keys_name_the_same_keys(tmp_path: Path) -> None:
    """One default namespace: tools that build ``Keys()`` (or ``run_scheduler``) see the daemon's keys."""
    assert Keys().namespace == load(tmp_path, REQUIRED).redis.namespace


def test_agents_ring_every_listed_device(tmp_path: Path) -> None:
    site = load(tmp_path, REQUIRED + "[agents]\n1001 = PJSIP/1001 & PJSIP/1001-mobile\n")
    assert site.agents["1001"] == AgentSpec("1001", ("PJSIP/1001", "PJSIP/1001-mobile"))
    assert site.has_agent("1001")
    assert not site.has_agent("1002")


def test_hot_desking_and_agent_pool_agents(tmp_path: Path) -> None:
    lines = "1003 = member:Alice Smith\n1004 = Agent/1004\n1005 = PJSIP/1005 & member:Bob & Agent/55\n"
    site = load(tmp_path, REQUIRED + "[agents]\n" + lines)
    assert site.agents["1003"] == AgentSpec("1003", (), member_name="Alice Smith")
    assert site.agents["1004"] == AgentSpec("1004", (), pool_agent="1004")
    assert site.agents["1005"] == AgentSpec("1005", ("PJSIP/1005",), member_name="Bob", pool_agent="55")
    assert deployment.agent_targets(site.agents["1005"]) == "PJSIP/1005 & member:Bob & Agent/55"


def test_sentinel_section(tmp_path: Path) -> None:
    site = load(tmp_path, REQUIRED + "[redis]\nsentinels = 10.0.0.1:26379, 10.0.0.2\nservice_name = cb\n")
    assert site.redis.url is None
    assert site.redis.sentinel is not None
    assert site.redis.sentinel.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379))


@pytest.mark.parametrize(
    ("extra", "line", "words"),
    [
        ("[agents]\n1001 = PJSIP/1001&Local/x,1\n", 11, "devices are TECH/resource joined by '&'"),
        ("[agents]\nbad agent = PJSIP/1\n", 11, "not a valid name"),
        ("[agents]\n1001 = member:A & member:B\n", 11, "at most one member:"),
        ("[agents]\n1001 = Agent/1 & Agent/2\n", 11, "one Agent/<app_agent_pool id>"),
        ("[agents]\n1001 = member:\n", 11, "'' is not a queue member name"),
        ("[agents]\n1001 = member:a|b\n", 11, "'a|b' is not a queue member name"),
        ("[agents]\n1001 = Agent/x y\n", 11, "'x y' is not a valid name"),
        ("[agents]\n1001 = &\n", 11, "devices are TECH/resource"),
    ],
)
def test_bad_values_are_refused_with_their_place(tmp_path: Path, extra: str, line: int, words: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        load(tmp_path, REQUIRED + extra)
    message = str(caught.value)
    assert f"asterisk-cb.conf:{line}" in message
    assert words in message


def test_a_bad_port_or_url_names_the_option(tmp_path: Path) -> None:
    path_text = REQUIRED.replace("[ami]\n", "[ami]\nport = 99999\n")
    with pytest.raises(
        config.ConfigError, match=r"asterisk-cb.conf:6 \[ami\]: port: '99999' is not a TCP port"
    ):
        load(tmp_path, path_text)
    path_text = REQUIRED.replace("[ari]\n", "[ari]\nurl = ftp://pbx\n")
    with pytest.raises(config.ConfigError, match=r"asterisk-cb.conf:3 \[ari\]: url: 'ftp://pbx' is not"):
        load(tmp_path, path_text)


@pytest.mark.parametrize(
    "missing", ["user = acb\npassword = pw\n[ami]", "outbound_context = from-internal\n"]
)
def test_required_options_are_named(tmp_path: Path, missing: str) -> None:
    with pytest.raises(config.ConfigError, match="required"):
        load(tmp_path, REQUIRED.replace(missing, "[ami]" if "[ami]" in missing else ""))


def test_cluster_flag(tmp_path: Path) -> None:
    site = load(tmp_path, REQUIRED + "[redis]\nurl = redis://10.0.0.5:7000\ncluster = yes\n")
    assert site.redis.cluster
    with pytest.raises(config.ConfigError, match=r"asterisk-cb.conf:12 \[redis\]: cluster: 'maybe'"):
        load(tmp_path, REQUIRED + "[redis]\nurl = redis://10.0.0.5:7000\ncluster = maybe\n")


def test_redis_timeouts_and_replica_wait(tmp_path: Path) -> None:
    text = "[redis]\nsocket_timeout = 3s\nreplica_wait = on\nreplica_wait_timeout = 200ms\n"
    site = load(tmp_path, REQUIRED + text)
    assert site.redis.timeouts.socket_s == 3.0
    assert site.redis.replica_wait == redis_conn.ReplicaWait(redis_conn.ReplicaMode.ON, 200)
    assert load(tmp_path, REQUIRED).redis.replica_wait.mode is redis_conn.ReplicaMode.AUTO
    with pytest.raises(config.ConfigError, match=r"conf:13 \[redis\]: replica_wait_timeout: must be below"):
        load(tmp_path, REQUIRED + text.replace("200ms", "3s"))


def test_the_sample_config_loads_as_shipped() -> None:
    sample = Path(__file__).resolve().parents[2] / "config" / "asterisk-cb.conf"
    site = deployment.from_settings_file(config.load(sample, other_sections=deployment.SECTIONS))
    assert site.ari.url == "http://127.0.0.1:8088/ari"
    assert site.dialing.outbound_context == "callback-outbound"


def test_the_systemd_unit_runs_the_daemon_command() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(Path(__file__).resolve().parents[2] / "config" / "systemd" / "asterisk-cb.service")
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].endswith("/asterisk-cb")
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run"
    assert str(args.config) == "/etc/asterisk-cb/asterisk-cb.conf"
    assert unit["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert unit["Service"]["RestartPreventExitStatus"] == "2"  # a refused config is not retried


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9468", deployment.Listen("127.0.0.1", 9468)),
        ("[::1]:9000", deployment.Listen("::1", 9000)),
    ],
)
def test_metrics_listen(tmp_path: Path, value: str, expected: deployment.Listen) -> None:
    assert load(tmp_path, REQUIRED + f"[metrics]\nlisten = {value}\n").metrics == expected


def test_metrics_are_off_without_a_listen_address(tmp_path: Path) -> None:
    assert load(tmp_path, REQUIRED).metrics is None


@pytest.mark.parametrize("value", ["9468", "localhost:http", "127.0.0.1:0"])
def test_a_bad_metrics_address_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(config.ConfigError, match=r"\[metrics\]: listen"):
        load(tmp_path, REQUIRED + f"[metrics]\nlisten = {value}\n")


@pytest.mark.parametrize(
    ("option", "default"), [("queue_context", "callback-queue"), ("amd_context", "callback-amd")]
)
def test_optional_contexts_default_and_are_checked(tmp_path: Path, option: str, default: str) -> None:
    assert getattr(load(tmp_path, REQUIRED).dialing, option) == default
    text = REQUIRED.replace("[dialing]\n", f"[dialing]\n{option} = my-context\n")
    assert getattr(load(tmp_path, text).dialing, option) == "my-context"
    with pytest.raises(config.ConfigError, match=rf"\[dialing\]: {option}: 'bad context'"):
        load(tmp_path, REQUIRED.replace("[dialing]\n", f"[dialing]\n{option} = bad context\n"))


def test_lease_and_call_check_default_to_30s_and_are_settable(tmp_path: Path) -> None:
    assert load(tmp_path, REQUIRED).timing == deployment.Timing(timedelta(seconds=30), timedelta(seconds=30))
    site = load(tmp_path, REQUIRED + "[daemon]\nlease = 5s\ncall_check = 2m\n")
    assert site.timing == deployment.Timing(timedelta(seconds=5), timedelta(minutes=2))


def test_pause_sweep_defaults_to_a_minute_and_is_settable(tmp_path: Path) -> None:
    assert load(tmp_path, REQUIRED).timing.pause_sweep == timedelta(minutes=1)
    assert load(tmp_path, REQUIRED + "[daemon]\npause_sweep = 5s\n").timing.pause_sweep == timedelta(
        seconds=5
    )


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("lease", "2s", "outside 3s to 10m"),
        ("pause_sweep", "1s", "outside 3s to 10m"),
        ("lease", "11m", "outside 3s to 10m"),
        ("call_check", "1", "outside 3s to 10m"),
        ("lease", "soon", "is not a duration"),
        ("call_check", "-5s", "is not a duration"),
    ],
)
def test_a_bad_timing_is_refused_with_its_line(tmp_path: Path, option: str, value: str, words: str) -> None:
    with pytest.raises(config.ConfigError, match=rf"\[daemon\]: {option}: .*{words}"):
        load(tmp_path, REQUIRED + f"[daemon]\n{option} = {value}\n")


@pytest.mark.parametrize(
    ("section", "option"),
    [("dialing", "outbound_contxt"), ("daemon", "leese"), ("ari", "passwd"), ("redis", "nmespace")],
)
def test_a_misspelt_option_is_refused_with_its_line(tmp_path: Path, section: str, option: str) -> None:
    with pytest.raises(config.ConfigError, match=rf"\[{section}\]: {option}: unknown option \(known: "):
        load(tmp_path, REQUIRED + f"[{section}]\n{option} = x\n")


def test_call_caps_default_to_none_and_take_whole_numbers_from_one(tmp_path: Path) -> None:
    assert (
        load(tmp_path, REQUIRED).dialing.max_calls,
        load(tmp_path, REQUIRED).dialing.context_max_calls,
    ) == (
        None,
        None,
    )
    text = REQUIRED.replace("[dialing]\n", "[dialing]\nmax_calls = 10\ncontext_max_calls = 30\n")
    dialing = load(tmp_path, text).dialing
    assert (dialing.max_calls, dialing.context_max_calls) == (10, 30)


@pytest.mark.parametrize("value", ["0", "-1", "ten", "2.5", "٣"])
@pytest.mark.parametrize("option", ["max_calls", "context_max_calls"])
def test_a_bad_call_cap_is_refused_with_its_line(tmp_path: Path, option: str, value: str) -> None:
    with pytest.raises(config.ConfigError, match=rf"\[dialing\]: {option}: '{value}' is not a whole number"):
        load(tmp_path, REQUIRED.replace("[dialing]\n", f"[dialing]\n{option} = {value}\n"))


def test_the_cdr_mark_defaults_to_the_userfield_and_check_config_shows_it(tmp_path: Path) -> None:
    assert load(tmp_path, REQUIRED).dialing.cdr_mark == CdrMark(MarkField.USERFIELD, "scheduled-callback")
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(REQUIRED + "cdr_mark_field = accountcode\ncdr_mark_text = callbacks\n")
    file = config.load(path, other_sections=deployment.SECTIONS)
    site = deployment.from_settings_file(file)
    assert site.dialing.cdr_mark == CdrMark(MarkField.ACCOUNTCODE, "callbacks")
    rows = {row[0]: row[1:] for row in deployment.explain(site, file.other_sections)}
    assert rows["[dialing] cdr_mark_field"] == ("accountcode", f"{path}:10 [dialing]")
    assert rows["[dialing] cdr_mark_text"] == ("callbacks", f"{path}:11 [dialing]")


@pytest.mark.parametrize(
    ("line", "refused"),
    [
        ("cdr_mark_field = dcontext", r":10 \[dialing\]: cdr_mark_field: 'dcontext' is not one of userfield"),
        ("cdr_mark_text = our callbacks", r":10 \[dialing\]: cdr_mark_text: 'our callbacks' is not 1-80"),
    ],
)
def test_a_cdr_mark_the_cdr_cannot_carry_is_refused_with_its_line(
    tmp_path: Path, line: str, refused: str
) -> None:
    with pytest.raises(config.ConfigError, match=refused):
        load(tmp_path, REQUIRED + line + "\n")


def test_explain_gives_each_connection_value_its_origin_and_never_a_secret(tmp_path: Path) -> None:
    text = REQUIRED + "[redis]\nurl = redis://cb:hunter2@10.0.0.5:6379/0\n[daemon]\nlease = 10s\n"
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(text)
    file = config.load(path, other_sections=deployment.SECTIONS)
    rows = {
        option: (value, origin)
        for option, value, origin in deployment.explain(
            deployment.from_settings_file(file), file.other_sections
        )
    }
    assert rows["[redis] url"] == ("redis://cb:(set)@10.0.0.5:6379/0", f"{path}:11 [redis]")
    assert rows["[daemon] lease"] == ("10s", f"{path}:13 [daemon]")
    assert rows["[daemon] call_check"] == ("30s", "default")
    assert rows["[daemon] pause_sweep"] == ("1m", "default")
    assert rows["[ari] password"][0] == rows["[ami] secret"][0] == "(set)"
    assert not any("hunter2" in value or value == "pw" for value, _ in rows.values())


def test_the_numbering_plan_defaults_to_no_country_and_is_settable(tmp_path: Path) -> None:
    assert load(tmp_path, REQUIRED).numbers == NumberPlan("", "0", "00")
    text = REQUIRED + "[numbers]\ncountry_code = 1\ntrunk_prefix = 1\ninternational_prefix = 011\n"
    assert load(tmp_path, text).numbers == NumberPlan("1", "1", "011")
    italy = load(tmp_path, REQUIRED + "[numbers]\ncountry_code = 39\ntrunk_prefix =\n").numbers
    assert italy == NumberPlan("39", "", "00")  # empty: no trunk prefix


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("country_code", "+49", "'\\+49' is not 1-3 digits"),
        ("country_code", "049", "'049': no country code starts with 0"),
        ("international_prefix", "", "'' is not 1-4 digits"),
        ("trunk_prefix", "00", "'00' starts with the international prefix"),
        ("trunk_prefx", "0", "unknown option"),
    ],
)
def test_a_bad_numbering_plan_is_refused_with_its_line(
    tmp_path: Path, option: str, value: str, words: str
) -> None:
    with pytest.raises(config.ConfigError, match=rf"asterisk-cb.conf:11 \[numbers\]: {option}: {words}"):
        load(tmp_path, REQUIRED + f"[numbers]\n{option} = {value}\n")


def test_check_config_shows_the_numbering_plan(tmp_path: Path) -> None:
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(REQUIRED + "[numbers]\ncountry_code = 49\n")
    file = config.load(path, other_sections=deployment.SECTIONS)
    rows = {
        row[0]: row[1:]
        for row in deployment.explain(deployment.from_settings_file(file), file.other_sections)
    }
    assert rows["[numbers] country_code"] == ("49", f"{path}:11 [numbers]")
    assert rows["[numbers] trunk_prefix"] == ("0", "default")
    assert rows["[numbers] international_prefix"] == ("00", "default")


def test_explain_hides_a_redis_password_given_in_the_query(tmp_path: Path) -> None:
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(REQUIRED + "[redis]\nurl = unix:///run/redis/redis.sock?db=2&password=hunter2\n")
    file = config.load(path, other_sections=deployment.SECTIONS)
    rows = {option: value for option, value, _ in deployment.explain(deployment.from_settings_file(file), {})}
    assert rows["[redis] url"] == "unix:///run/redis/redis.sock?db=2&password=(set)"


@pytest.mark.parametrize(
    ("url", "shown", "words"),
    [
        ("http://bob:hunter2@pbx:8088/ari", "http://bob:(set)@pbx:8088/ari", "belong in [ari] user and"),
        ("https://pbx/ari?api_key=bob:hunter2", "https://pbx/ari?api_key=(set)", "belong in [ari] user"),
        ("http://[::1:hunter2@pbx/ari", "http://[:(set)@pbx/ari", "is not an http:// or https:// URL"),
        ("http://pbx:99999/ari", "http://pbx:99999/ari", "is not an http:// or https:// URL"),
        ("http:///ari", "http:///ari", "is not an http:// or https:// URL"),
    ],
)  # fmt: skip
def test_an_ari_url_with_credentials_or_malformed_is_refused_hidden(
    tmp_path: Path, url: str, shown: str, words: str
) -> None:
    """aiohttp would raise a bare ValueError at the first request, and the URL was printed as is."""
    with pytest.raises(config.ConfigError) as refused:
        load(tmp_path, REQUIRED.replace("[ari]\n", f"[ari]\nurl = {url}\n"))
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'asterisk-cb.conf'}:3 [ari]: url: '{shown}'")
    assert words in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter2@pbx:63x9/0",  # redis-py's own message quotes the port
        "redis://:hun/ter2@pbx",  # an unencoded / ends the host early: the "port" is the password
        "http://:hunter2@pbx:6379",
        "redis://[::1:hunter2@pbx",
        "redis://pbx/0?db=two&password=hunter2",
    ],
)
def test_a_malformed_redis_url_is_refused_at_load_without_its_password(tmp_path: Path, url: str) -> None:
    with pytest.raises(config.ConfigError) as refused:
        load(tmp_path, REQUIRED + f"[redis]\nurl = {url}\n")
    message = str(refused.value)
    assert "[redis]: url: " in message
    assert "is not a Redis URL" in message
    assert "hun" not in message


def test_feature_code_defaults_listen_on_loopback(tmp_path: Path) -> None:
    site = load(tmp_path, REQUIRED).feature_code
    assert (site.listen, [str(n) for n in site.permit]) == (
        deployment.Listen("127.0.0.1", 4573),
        ["127.0.0.1/32", "::1/128"],
    )
    assert (site.request_timeout, site.options.presets, site.options.allow_second) == (
        timedelta(seconds=3),
        {},
        False,
    )


def test_feature_code_section(tmp_path: Path) -> None:
    site = load(
        tmp_path,
        REQUIRED
        + "[feature_code]\nlisten = 0.0.0.0:4600\npermit = 10.0.0.5, 192.168.1.0/24\nrequest_timeout = 5s\n"
        + "preset1 = +1h\npreset2 = tomorrow 10:00\nsecond_callback = yes\n",
    ).feature_code
    assert site.listen == deployment.Listen("0.0.0.0", 4600)
    assert [str(network) for network in site.permit] == ["10.0.0.5/32", "192.168.1.0/24"]
    assert site.request_timeout == timedelta(seconds=5)
    assert sorted(site.options.presets) == [1, 2] and site.options.allow_second
    assert load(tmp_path, REQUIRED + "[feature_code]\nlisten =\n").feature_code.listen is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("permit = 10.0.0.300", "permit: '10.0.0.300'"),
        ("preset3 = soon", "preset3: 'soon' is not +<duration>"),
        ("preset0 = +1h", "preset0: unknown option"),
        ("request_timeout = 2m", "request_timeout: '2m' is outside 1s to 1m"),
        ("second_callback = maybe", "second_callback:"),
        ("listen = 4573", "listen: '4573' is not host:port"),
    ],
)
def test_feature_code_refusals_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as refused:
        load(tmp_path, REQUIRED + "[feature_code]\n" + line + "\n")
    assert message in str(refused.value)
    assert "asterisk-cb.conf:" in str(refused.value)


def test_the_api_is_off_by_default_and_listens_where_told(tmp_path: Path) -> None:
    assert not load(tmp_path, REQUIRED).api.enabled
    text = (
        "[api]\nlisten = 127.0.0.1:8090\ntrusted_proxies = 10.0.0.5, 192.0.2.0/24\n"
        "cors_origins = https://crm.example.com, http://wall.example.com:8080\nmax_body = 2048\n"
        "auth_failures = 3\nauth_window = 5m\n"
    )
    api = load(tmp_path, REQUIRED + text).api
    assert (api.enabled, api.host, api.port, api.max_body, api.auth_failures) == (
        True,
        "127.0.0.1",
        8090,
        2048,
        3,
    )
    assert [str(network) for network in api.trusted_proxies] == ["10.0.0.5/32", "192.0.2.0/24"]
    assert api.cors_origins == ("https://crm.example.com", "http://wall.example.com:8080")
    assert api.auth_window.total_seconds() == 300


def test_the_panel_is_off_by_default_and_its_sessions_limits_are_read(tmp_path: Path) -> None:
    api = load(tmp_path, REQUIRED + "[api]\nlisten = 127.0.0.1:8090\n").api
    assert (api.panel, api.session_idle, api.session_max_age) == (
        False,
        timedelta(minutes=30),
        timedelta(hours=12),
    )
    text = "[api]\nlisten = 127.0.0.1:8090\npanel = yes\nsession_idle = 5m\nsession_max_age = 1d\n"
    api = load(tmp_path, REQUIRED + text).api
    assert (api.panel, api.session_idle, api.session_max_age) == (
        True,
        timedelta(minutes=5),
        timedelta(days=1),
    )


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("listen = 127.0.0.1", "not host:port"),
        ("trusted_proxies = 10.0.0.300", "10.0.0.300"),
        ("cors_origins = *", "is not an origin"),
        ("cors_origins = https://crm.example.com/path", "is not an origin"),
        ("max_body = 10", "from 1024"),
        ("auth_failures = many", "whole number"),
        ("auth_window = 1s", "auth_window"),
        ("panel = maybe", "not yes or no"),
        ("session_idle = 10s", "session_idle"),
        ("session_max_age = 60d", "session_max_age"),
    ],
)
def test_a_bad_api_option_is_refused_with_its_line(tmp_path: Path, line: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as refused:
        load(tmp_path, REQUIRED + f"[api]\n{line}\n")
    assert ":2" in str(refused.value) or "[api]" in str(refused.value)
