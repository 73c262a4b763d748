"""The ``asterisk-cb`` command line as an admin uses it, against the lab's Redis (own namespace)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_store import create, make_callback, ringing

from asterisk_cb.cli import load_context, main
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, connect
from asterisk_cb.secrecy import write_private
from asterisk_cb.service import Actor, RolesService
from asterisk_cb.service_tokens import TokenService
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


@pytest.fixture
def config_file(tmp_path: Path, lab_redis_url: str) -> Iterator[Path]:
    namespace = "test-cli-" + uuid.uuid4().hex[:10]
    path = tmp_path / "asterisk-cb.conf"
    write_private(
        path,
        f"""
[general]
default_timezone = Europe/Berlin
max_attempts = 4

[agent/1001]
max_attempts = 2

[redis]
url = {lab_redis_url}
namespace = {namespace}

[ari]
user = acb
password = secret

[ami]
user = acb
secret = secret

[dialing]
outbound_context = callback-outbound

[agents]
1001 = PJSIP/1001
1002 = PJSIP/1002 & PJSIP/1002-desk

[roles]
teamlead = schedule_callback, view_all_callbacks

[agent_roles]
1002 = teamlead

[users]
anna = supervisor
""",
    )
    yield path

    async def cleanup() -> None:
        redis = connect(lab_redis_url)
        await Store(redis, Keys(namespace)).delete_namespace()
        await redis.aclose()

    asyncio.run(cleanup())


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:00+00:00")


def scheduled_id(output: str) -> str:
    match = re.search(r"^([0-9a-f]{16})\s", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_schedule_list_show_cancel(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(
            config_file,
            "schedule",
            "--agent",
            "1001",
            "--number",
            "+49 30 1234567",
            "--at",
            tomorrow(),
            "--name",
            "Ada Lovelace",
        )
        == 0
    )
    callback_id = scheduled_id(capsys.readouterr().out)

    assert run(config_file, "list", "--agent", "1001") == 0
    listing = capsys.readouterr().out
    assert callback_id in listing
    assert "+49301234567" in listing
    assert "scheduled (agent phase)" in listing

    assert run(config_file, "show", callback_id) == 0
    assert "Ada Lovelace <+49301234567>" in capsys.readouterr().out

    assert run(config_file, "cancel", callback_id) == 0
    assert "cancelled (cancelled)" in capsys.readouterr().out
    assert run(config_file, "cancel", callback_id) == 3
    assert "finished" in capsys.readouterr().err


def test_bad_input_is_one_line_and_exit_2(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ("--number", "+4930&Local/1@evil", "contact_number"),
        ("--at", "tomorrow at three", "due_at"),
        ("--agent", "9999", "unknown agent"),
    ]
    for option, value, expected in cases:
        args = {"--agent": "1001", "--number": "+4930123", "--at": tomorrow(), option: value}
        flat = [item for pair in args.items() for item in pair]
        assert run(config_file, "schedule", *flat) == 2
        err = capsys.readouterr().err
        assert expected in err
        assert "Traceback" not in err
        assert err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ("show", "a b"),
        ("show", ""),
        ("cancel", "a b"),
        ("reschedule", "x;y", "--at", "+1h"),
        ("assign", "\n", "--agent", "1002"),
        ("list", "--agent", ""),
        ("settings", "set", "agent/1001;x", "max_attempts", "3"),
        ("settings", "set", "agent/9999", "max_attempts", "3"),
        ("settings", "reset", "queue/a@b"),
        ("roles", "set-agent", "9999", "agent"),
        ("roles", "set-agent", "1001", "boss"),
        ("roles", "define", "teamlead", "schedule_callback,fly"),
        ("roles", "reset-role", "a b"),
    ],
)
def test_a_malformed_id_or_scope_is_one_line_and_exit_2(
    config_file: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    assert run(config_file, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("asterisk-cb: ")
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_check_config_shows_values_and_their_origin(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "check-config", "--agent", "1001") == 0
    out = capsys.readouterr().out
    assert re.search(rf"max_attempts\s+2\s+{re.escape(str(config_file))}:\d+ \[agent/1001\]", out)
    assert re.search(r"horizon\s+30d\s+default", out)
    assert re.search(r"1002\s+PJSIP/1002 & PJSIP/1002-desk", out)


def test_check_config_and_roles_show_roles_and_agents_with_their_origin(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("check-config", "roles"):
        assert run(config_file, command) == 0
        out = capsys.readouterr().out
        assert re.search(
            r"^supervisor\s+schedule_callback, manage_callbacks, view_all_callbacks\s+default$", out, re.M
        )
        where = re.escape(str(config_file))
        assert re.search(
            rf"^teamlead\s+schedule_callback, view_all_callbacks\s+{where}:\d+ \[roles\]$", out, re.M
        )
        assert re.search(r"^1001\s+agent \(default\)\s+default$", out, re.M)
        assert re.search(rf"^1002\s+teamlead\s+{where}:\d+ \[agent_roles\]$", out, re.M)


def test_a_run_time_role_wins_until_reset(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config_file, "roles", "define", "trainee", "") == 0
    assert capsys.readouterr().out == "[roles] trainee = (nothing) (run-time value, until reset)\n"
    assert run(config_file, "roles", "set-agent", "default", "trainee") == 0
    assert run(config_file, "roles", "set-agent", "1002", "supervisor") == 0
    capsys.readouterr()
    assert run(config_file, "roles") == 0
    out = capsys.readouterr().out
    assert re.search(r"^trainee\s+\(nothing\)\s+runtime override \[roles\]$", out, re.M)
    assert re.search(r"^1001\s+trainee \(default\)\s+runtime override \[agent_roles\]$", out, re.M)
    assert re.search(r"^1002\s+supervisor\s+runtime override \[agent_roles\]$", out, re.M)
    assert run(config_file, "roles", "reset-role", "trainee") == 3  # default still holds it
    assert "role 'trainee' is held by default" in capsys.readouterr().err
    for agent in ("default", "1002"):
        assert run(config_file, "roles", "reset-agent", agent) == 0
    assert run(config_file, "roles", "reset-role", "trainee") == 0
    capsys.readouterr()
    assert run(config_file, "roles") == 0
    out = capsys.readouterr().out
    assert "trainee" not in out
    assert re.search(r"^1002\s+teamlead\s+\S+:\d+ \[agent_roles\]$", out, re.M)


def test_a_bad_role_line_in_the_file_names_file_and_line(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text(config_file.read_text().replace("1002 = teamlead", "1002 = boss"))
    assert run(config_file, "roles") == 2
    err = capsys.readouterr().err
    assert re.fullmatch(
        rf"asterisk-cb: config: {re.escape(str(config_file))}:\d+ \[agent_roles\]: 1002: unknown role 'boss' "
        r"\(known: admin, agent, supervisor, teamlead\)\n",
        err,
    ), err


def test_runtime_override_wins_until_reset(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config_file, "settings", "set", "agent/1001", "max_attempts", "5") == 0
    assert run(config_file, "check-config", "--agent", "1001") == 0
    assert re.search(r"max_attempts\s+5\s+runtime override \[agent/1001\]", capsys.readouterr().out)
    assert run(config_file, "settings", "set", "agent/1001", "max_attempts", "lots") == 2
    assert "max_attempts" in capsys.readouterr().err
    assert run(config_file, "settings", "reset", "agent/1001") == 0
    assert run(config_file, "check-config", "--agent", "1001") == 0
    assert re.search(r"max_attempts\s+2\s+\S+:\d+ \[agent/1001\]", capsys.readouterr().out)


def test_check_config_shows_the_values_then_refuses_what_run_would(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every value is valid, but others can read the file: exit 2 after the tables, the file and the fix."""
    config_file.chmod(0o644)
    assert run(config_file, "check-config") == 2
    out, err = capsys.readouterr()
    assert re.search(r"\[ari\] password\s+\(set\)", out)
    assert err == (
        f"asterisk-cb: config: {config_file}: mode 0644 gives other users access to its secrets: "
        f"chmod 0640 {config_file} && chgrp asterisk-cb {config_file}\n"
    )
    assert run(config_file, "list") == 0  # only the daemon and check-config (which says so) refuse


def test_a_broken_config_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.conf"
    path.write_text("[general]\nmax_attempts = many\n")
    assert main(["--config", str(path), "check-config"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2" in err
    assert "max_attempts" in err


def test_unreachable_redis_is_a_clear_error(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = re.sub(r"url = \S+", "url = redis://127.0.0.1:1/0", config_file.read_text())
    config_file.write_text(text)
    assert run(config_file, "list") == 4
    assert "cannot reach Redis" in capsys.readouterr().err


def test_cancel_while_the_call_rings_and_no_daemon_applies_it_says_so(
    config_file: Path, lab_redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon holding the ring is gone: the request is on record, the command says it waits."""
    namespace = re.search(r"namespace = (\S+)", config_file.read_text())
    assert namespace is not None
    callback_id = asyncio.run(_ringing_callback(lab_redis_url, namespace.group(1)))

    assert run(config_file, "cancel", callback_id, "--wait", "0.2") == 0
    out = capsys.readouterr().out
    assert out.startswith("requested: its call is ringing")
    assert "agent_ringing" in out
    assert run(config_file, "cancel", callback_id, "--wait", "0.2") == 3  # one request at a time
    assert "another change by cli:" in capsys.readouterr().err


def test_a_bad_wait_is_a_usage_error(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run(config_file, "cancel", "abc", "--wait", "soon")
    assert exited.value.code == 2
    assert "'soon' is not a number of seconds" in capsys.readouterr().err


async def _ringing_callback(redis_url: str, namespace: str) -> str:
    """A callback of agent 1001 claimed by a daemon that recorded its agent ring, then vanished."""
    redis = connect(redis_url)
    store = Store(redis, Keys(namespace))
    await create(store, make_callback("cli-ringing"))
    (claim,) = (await store.claim(1, "daemon-a")).claims
    await store.commit(claim, ringing(claim.callback), [])
    await redis.aclose()
    return claim.callback.id


def _namespace_store(config: Path, redis_url: str) -> tuple[Store, RedisClient]:
    namespace = re.search(r"namespace = (\S+)", config.read_text())
    assert namespace is not None
    redis = connect(redis_url)
    return Store(redis, Keys(namespace.group(1))), redis


def test_token_create_prints_it_once_then_list_and_revoke(
    config_file: Path, lab_redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(config_file, "token", "create", "--user", "anna", "--expires", "2h", "--label", "wall board") == 0
    )
    out, err = capsys.readouterr()
    token = out.strip()
    assert re.fullmatch(r"acb_([0-9a-f]{8})_[A-Za-z0-9_-]{43}\n", out), out
    token_id = token[4:12]
    assert re.fullmatch(
        rf"token {token_id} for user anna, expires .+: shown this once, not stored; keep it now\n", err
    )

    async def authenticate() -> Actor | None:
        """As the API will: the config's roles, the CLI's Redis namespace."""
        store, redis = _namespace_store(config_file, lab_redis_url)
        site = load_context(config_file).site
        service = TokenService(store, RolesService(store, site.roles, site.agents), lambda: datetime.now(UTC))
        try:
            return await service.authenticate(token)
        finally:
            await redis.aclose()

    actor = asyncio.run(authenticate())
    assert actor is not None
    assert actor.name == "anna"

    assert run(config_file, "token", "create", "--agent", "1001") == 0
    capsys.readouterr()
    assert run(config_file, "token", "list") == 0
    out = capsys.readouterr().out
    assert re.search(r"^id\s+kind\s+name\s+created\s+expires\s+label$", out, re.M)
    assert re.search(rf"^{token_id}\s+user\s+anna\s+\d{{4}}-.+ CES?T\s+.+ CES?T\s+wall board$", out, re.M), (
        out
    )
    assert re.search(r"^[0-9a-f]{8}\s+agent\s+1001\s", out, re.M)
    assert token not in out
    assert out.endswith("2 token(s)\n")

    assert run(config_file, "token", "revoke", token_id) == 0
    assert capsys.readouterr().out == f"token {token_id} (user anna) revoked\n"
    assert asyncio.run(authenticate()) is None
    assert run(config_file, "token", "revoke", token_id) == 3
    assert capsys.readouterr().err == f"asterisk-cb: no token {token_id}\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--agent", "9999"), "unknown agent '9999' (not in [agents])"),
        (("--user", "bob"), "unknown user 'bob' (not in [users])"),
        (("--agent", "1001", "--expires", "3y"), "'3y' is not a duration"),
        (("--agent", "1001", "--expires", "800d"), "lifetime 800d is outside 1m to 730d"),
        (("--agent", "1001", "--label", "x" * 81), "at most 80 printable characters"),
        (("--agent", "1001", "--user", "anna"), "not allowed with argument"),
        ((), "one of the arguments --agent --user is required"),
    ],
)
def test_a_bad_token_request_is_one_line_and_exit_2(
    config_file: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    try:
        code = run(config_file, "token", "create", *args)
    except SystemExit as exited:  # argparse's own refusals print the usage first
        code = int(str(exited.code))
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert expected in err
    assert "Traceback" not in err


def test_a_malformed_token_id_is_exit_2(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config_file, "token", "revoke", "not-an-id") == 2
    assert capsys.readouterr().err == "asterisk-cb: 'not-an-id' is not a token id (8 hex digits)\n"


def test_roles_lists_users_with_their_role(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config_file, "roles") == 0
    out = capsys.readouterr().out
    assert re.search(r"^user\s+role\s+from$", out, re.M)
    assert re.search(rf"^anna\s+supervisor\s+{re.escape(str(config_file))}:\d+ \[users\]$", out, re.M)
