"""Secrets stay secret: URLs are shown without passwords, and a config others can read (or one still
holding the sample's change-me) is refused by `run` and `check-config`, with the file and the fix."""

import configparser
import shutil
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from asterisk_cb import config, secrecy
from asterisk_cb.cli import main

REPO = Path(__file__).resolve().parents[2]
SECRET = "hunter2"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://cb:hunter2@10.0.0.5:6379/0", "redis://cb:(set)@10.0.0.5:6379/0"),
        ("redis://:hunter2@10.0.0.5", "redis://:(set)@10.0.0.5"),
        ("redis://10.0.0.5:6379/0?password=hunter2", "redis://10.0.0.5:6379/0?password=(set)"),
        ("unix:///run/redis/redis.sock?db=2&password=hunter2", "unix:///run/redis/redis.sock?db=2&password=(set)"),
        ("unix://:hunter2@/run/redis/redis.sock?db=2", "unix://:(set)@/run/redis/redis.sock?db=2"),
        ("rediss://cb:hunter2@pbx:6380/0?ssl_password=hunter2", "rediss://cb:(set)@pbx:6380/0?ssl_password=(set)"),
        ("http://bob:hunter2@pbx:8088/ari", "http://bob:(set)@pbx:8088/ari"),
        ("https://bob:hunter2@pbx/ari", "https://bob:(set)@pbx/ari"),
        ("https://pbx/ari?api_key=bob:hunter2&app=cb", "https://pbx/ari?api_key=(set)&app=cb"),
        ("redis://:hun/ter?2#x@pbx:6379", "redis://:(set)@pbx:6379"),  # unencoded / ? # end at the last @
        ("redis://[::1:hunter2@pbx", "redis://[:(set)@pbx"),  # no parser takes it; still hidden
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://alice@pbx/0", "redis://alice@pbx/0"),  # a user alone is no secret
        ("http://[::1]:8088/ari", "http://[::1]:8088/ari"),
        ("", ""),
    ],
)  # fmt: skip
def test_redact_hides_userinfo_passwords_and_secret_query_values(url: str, shown: str) -> None:
    assert secrecy.redact(url) == shown


_ANY_PASSWORD = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@given(_ANY_PASSWORD)
def test_no_userinfo_password_shows_whatever_it_holds(password: str) -> None:
    assert secrecy.redact(f"redis://cb:{password}@pbx:6379/0") == "redis://cb:(set)@pbx:6379/0"


@given(_ANY_PASSWORD)
def test_no_query_password_shows_whatever_it_holds(password: str) -> None:
    assume("&" not in password)  # an unencoded & ends the value for redis-py too
    url = f"unix:///run/redis.sock?db=2&password={password}"
    assert secrecy.redact(url) == "unix:///run/redis.sock?db=2&password=(set)"


# ---- the config file ---------------------------------------------------------------------------------


def private_config(tmp_path: Path, text: str, name: str = "asterisk-cb.conf") -> Path:
    path = tmp_path / name
    secrecy.write_private(path, text)
    return path


GOOD = "[ari]\nuser = acb\npassword = s3cret\n[ami]\nuser = acb\nsecret = s3cret\n"


def test_a_private_file_without_change_me_passes(tmp_path: Path) -> None:
    path = private_config(tmp_path, GOOD)
    assert path.stat().st_mode & 0o777 == secrecy.PRIVATE_MODE
    assert secrecy.exposures(path) == []


@pytest.mark.parametrize("mode", [0o640, 0o600, 0o440, 0o400])
def test_owner_and_group_access_is_fine(tmp_path: Path, mode: int) -> None:
    path = private_config(tmp_path, GOOD)
    path.chmod(mode)
    assert secrecy.exposures(path) == []


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o666, 0o642, 0o641])
def test_any_access_for_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = private_config(tmp_path, GOOD)
    path.chmod(mode)
    assert secrecy.exposures(path) == [
        f"{path}: mode {mode:04o} gives other users access to its secrets: "
        f"chmod 0640 {path} && chgrp asterisk-cb {path}"
    ]


def test_an_included_file_is_checked_too(tmp_path: Path) -> None:
    main_file = private_config(tmp_path, "[ari]\nuser = acb\n#include secrets.conf\n")
    included = tmp_path / "secrets.conf"
    included.write_text("password = change-me\n")
    included.chmod(0o644)
    problems = secrecy.exposures(main_file)
    assert len(problems) == 2
    assert problems[0].startswith(f"{included}: mode 0644 ")
    assert problems[1].startswith(f"{included}:1 [ari] password: still the sample's change-me")


def test_change_me_anywhere_in_a_value_is_refused_but_not_in_a_comment(tmp_path: Path) -> None:
    path = private_config(
        tmp_path, "; password = change-me\n[redis]\nurl = redis://:Change-Me@pbx\n[ami]\nsecret = s3cret\n"
    )
    assert secrecy.exposures(path) == [
        f"{path}:3 [redis] url: still the sample's change-me: "
        "set the real secret (the one in ari.conf / manager.conf / Redis)"
    ]


def test_the_sample_config_is_refused_until_its_two_secrets_are_set(tmp_path: Path) -> None:
    path = tmp_path / "asterisk-cb.conf"
    shutil.copyfile(REPO / "config" / "asterisk-cb.conf", path)
    path.chmod(0o640)
    problems = secrecy.exposures(path)
    assert [problem.split(": ")[0].split(" ", 1)[1] for problem in problems] == [
        "[ari] password",
        "[ami] secret",
    ]
    path.write_text(path.read_text().replace("change-me", "s3cret"))
    assert secrecy.exposures(path) == []


def test_the_checked_group_is_the_systemd_units() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(REPO / "config" / "systemd" / "asterisk-cb.service")
    assert unit["Service"]["Group"] == secrecy.SERVICE_GROUP


def test_write_private_narrows_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "old.conf"
    path.write_text("old text that is longer\n")
    path.chmod(0o644)
    secrecy.write_private(path, GOOD)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == GOOD


def test_refuse_exposed_names_the_first_problem_and_counts_the_rest(tmp_path: Path) -> None:
    path = private_config(tmp_path, "[ari]\npassword = change-me\n[ami]\nsecret = change-me\n")
    path.chmod(0o644)
    with pytest.raises(config.ConfigError) as refused:
        secrecy.refuse_exposed(path)
    assert str(refused.value) == (
        f"{path}: mode 0644 gives other users access to its secrets: chmod 0640 {path} && chgrp asterisk-cb "
        f"{path} (and 2 more: see asterisk-cb doctor)"
    )


def test_describe_shows_mode_owner_and_group(tmp_path: Path) -> None:
    path = private_config(tmp_path, GOOD)
    assert secrecy.describe(path) == f"{path} 0600 {path.owner()}:{path.group()}"


# ---- the command line --------------------------------------------------------------------------------

DEPLOYMENT = GOOD + "[redis]\nurl = redis://127.0.0.1:1/0\n[dialing]\noutbound_context = default\n"


def test_run_refuses_a_world_readable_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything connects (Redis here is a closed port): exit 2, the file and the fix."""
    path = private_config(tmp_path, DEPLOYMENT)
    path.chmod(0o644)
    assert main(["--config", str(path), "run"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"asterisk-cb: config: {path}: mode 0644 gives other users access to its secrets: "
        f"chmod 0640 {path} && chgrp asterisk-cb {path}\n"
    )


def test_run_refuses_change_me(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = private_config(tmp_path, DEPLOYMENT.replace("s3cret", "change-me", 1))
    assert main(["--config", str(path), "run"]) == 2
    assert f"{path}:3 [ari] password: still the sample's change-me" in capsys.readouterr().err
