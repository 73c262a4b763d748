"""`asterisk-cb doctor` against the real lab: a good deployment passes, each broken part is named."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from asterisk_cb import config, deployment
from asterisk_cb.doctor import Check, Verdict, run_checks
from asterisk_cb.secrecy import write_private

pytestmark = pytest.mark.lab


def lab_config(lab: dict[str, Any], **overrides: str) -> str:
    values = {
        "redis_url": lab["redis"]["url"],
        "ari_password": lab["ari"]["password"],
        "ami_secret": lab["ami"]["secret"],
        "context": lab["dialplan"]["outbound_context"],
        "devices": "PJSIP/1001",
        "general": "",
        "dialing": "",
        "redis": "",
    } | overrides
    return f"""
[general]
{values["general"]}
[redis]
url = {values["redis_url"]}
namespace = doctor-{uuid.uuid4().hex[:8]}
{values["redis"]}
[ari]
url = {lab["ari"]["url"]}
user = {lab["ari"]["user"]}
password = {values["ari_password"]}
[ami]
host = {lab["ami"]["host"]}
port = {lab["ami"]["port"]}
user = {lab["ami"]["user"]}
secret = {values["ami_secret"]}
[dialing]
outbound_context = {values["context"]}
{values["dialing"]}
[agents]
1001 = {values["devices"]}
"""


async def doctor(tmp_path: Path, text: str, mode: int = 0o600) -> dict[str, Check]:
    path = tmp_path / "asterisk-cb.conf"
    write_private(path, text)
    path.chmod(mode)
    file = config.load(path, other_sections=deployment.SECTIONS)
    checks = await run_checks(path, file, deployment.from_settings_file(file))
    return {check.name: check for check in checks}


async def test_the_lab_passes_every_check(lab: dict[str, Any], tmp_path: Path) -> None:
    checks = await doctor(tmp_path, lab_config(lab, general="failover_queue = failover\namd = yes"))
    assert {name: check.verdict for name, check in checks.items()} == {
        "config": Verdict.OK,
        "redis": Verdict.OK,
        "redis replicas": Verdict.OK,
        "ari": Verdict.OK,
        "ami": Verdict.OK,
        "agent 1001": Verdict.OK,
        "outbound_context": Verdict.OK,
        "answer_marks": Verdict.OK,
        "queue_context": Verdict.OK,
        "amd_context": Verdict.OK,
        "queue failover": Verdict.OK,
    }
    assert "Asterisk 22." in checks["ari"].detail
    path = tmp_path / "asterisk-cb.conf"
    owner = f"{path.owner()}:{path.group()}"
    assert checks["config"].detail == f"{path} 0600 {owner}: no access for others, no change-me"


@pytest.mark.parametrize(
    ("overrides", "failing", "words"),
    [
        ({"ari_password": "wrong"}, "ari", "401"),
        ({"devices": "PJSIP/1001 & PJSIP/nosuchphone"}, "agent 1001", "PJSIP/nosuchphone"),
        ({"context": "no-such-context"}, "outbound_context", "no-such-context"),
        ({"general": "failover_queue = nosuchqueue"}, "queue nosuchqueue", "does not have"),
        ({"general": "amd = yes", "dialing": "amd_context = no-amd-here"}, "amd_context", "no-amd-here"),
        ({"ami_secret": "wrong"}, "ami", "login refused"),
        ({"redis": "replica_wait = on"}, "redis replicas", "no callback will be dialled"),
    ],
)
async def test_each_broken_part_is_named(
    lab: dict[str, Any], tmp_path: Path, overrides: dict[str, str], failing: str, words: str
) -> None:
    checks = await doctor(tmp_path, lab_config(lab, **overrides))
    assert checks[failing].verdict is Verdict.FAIL
    assert words in checks[failing].detail
    assert [name for name, check in checks.items() if check.verdict is Verdict.FAIL] == [failing]


async def test_a_hot_desking_agent_has_no_fixed_phone_to_check(lab: dict[str, Any], tmp_path: Path) -> None:
    checks = await doctor(tmp_path, lab_config(lab, devices="member:Alice Smith & Agent/1001"))
    assert checks["agent 1001"].verdict is Verdict.OK
    assert checks["agent 1001"].detail.startswith("member:Alice Smith & Agent/1001: ")


async def test_a_config_others_can_read_fails_with_the_fix(lab: dict[str, Any], tmp_path: Path) -> None:
    checks = await doctor(tmp_path, lab_config(lab), mode=0o644)
    path = tmp_path / "asterisk-cb.conf"
    assert checks["config"] == Check(
        "config",
        Verdict.FAIL,
        f"{path}: mode 0644 gives other users access to its secrets: "
        f"chmod 0640 {path} && chgrp asterisk-cb {path}",
    )
    assert [name for name, check in checks.items() if check.verdict is Verdict.FAIL] == ["config"]


async def test_a_change_me_secret_fails_on_its_own_line(lab: dict[str, Any], tmp_path: Path) -> None:
    """AMI with the sample's secret: the login fails too, and the config line says why."""
    checks = await doctor(tmp_path, lab_config(lab, ami_secret="change-me"))
    assert checks["config"].verdict is Verdict.FAIL
    assert "[ami] secret: still the sample's change-me" in checks["config"].detail
    assert checks["ami"].verdict is Verdict.FAIL


@pytest.mark.parametrize("form", ["redis://:{secret}@{rest}", "redis://{rest}?password={secret}"])
async def test_a_redis_password_never_shows(lab: dict[str, Any], tmp_path: Path, form: str) -> None:
    """A database the lab's Redis does not have fails the check, whose line shows the URL, not the
    password (a password Redis does not ask for is let through by redis-py)."""
    secret = "hunter2-" + uuid.uuid4().hex[:6]
    rest = f"{lab['host']}:{lab['redis']['port']}/99"
    checks = await doctor(tmp_path, lab_config(lab, redis_url=form.format(secret=secret, rest=rest)))
    assert checks["redis"].verdict is Verdict.FAIL
    assert "DB index is out of range" in checks["redis"].detail
    assert form.format(secret="(set)", rest=rest) in checks["redis"].detail
    assert secret not in str(checks)
