"""`asterisk-cb doctor` against the real lab: a good deployment passes, each broken part is named."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from lab.tls import make_ca

from asterisk_cb import config, deployment
from asterisk_cb.doctor import Check, Verdict, run_checks
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.secrecy import write_private
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


def lab_config(lab: dict[str, Any], **overrides: str) -> str:
    values = {
        "redis_url": lab["redis"]["url"],
        "ari_url": lab["ari"]["url"],
        "ari_user": lab["ari"]["user"],
        "ari_password": lab["ari"]["password"],
        "ari_extra": "",
        "ami_port": str(lab["ami"]["port"]),
        "ami_user": lab["ami"]["user"],
        "ami_secret": lab["ami"]["secret"],
        "ami_extra": "",
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
url = {values["ari_url"]}
user = {values["ari_user"]}
password = {values["ari_password"]}
{values["ari_extra"]}
[ami]
host = {lab["ami"]["host"]}
port = {values["ami_port"]}
user = {values["ami_user"]}
secret = {values["ami_secret"]}
{values["ami_extra"]}
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
        "records": Verdict.OK,  # off: no [records] dsn
        "ari": Verdict.OK,
        "ari rights": Verdict.OK,
        "ari transport": Verdict.OK,
        "ami transport": Verdict.OK,
        "ami": Verdict.OK,
        "ami rights": Verdict.OK,
        "agent 1001": Verdict.OK,
        "outbound_context": Verdict.OK,
        "cdr_mark": Verdict.OK,
        "answer_marks": Verdict.OK,
        "queue_context": Verdict.OK,
        "amd_context": Verdict.OK,
        "feature_code": Verdict.OK,
        "inbound_hook": Verdict.OK,
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


def tls_config(lab: dict[str, Any], ca_file: str) -> str:
    """ARI over https:// (and wss://), AMI over TLS, both checked against ``ca_file``."""
    return lab_config(
        lab,
        ari_url=lab["ari"]["tls_url"],
        ari_extra=f"ca_file = {ca_file}",
        ami_port=str(lab["ami"]["tls_port"]),
        ami_extra=f"tls = yes\nca_file = {ca_file}",
    )


async def test_the_lab_over_tls_passes_and_says_so(lab: dict[str, Any], tmp_path: Path) -> None:
    checks = await doctor(tmp_path, tls_config(lab, lab["tls"]["ca_file"]))
    assert [name for name, check in checks.items() if check.verdict is not Verdict.OK] == []
    for name in ("ari transport", "ami transport"):
        assert checks[name].detail == f"TLS to 127.0.0.1, certificate checked against {lab['tls']['ca_file']}"


async def test_another_ca_fails_both_links_and_names_the_setting(lab: dict[str, Any], tmp_path: Path) -> None:
    other = make_ca(tmp_path / "other-ca", "/CN=not the lab's CA")
    checks = await doctor(tmp_path, tls_config(lab, str(other)))
    assert [name for name, check in checks.items() if check.verdict is Verdict.FAIL] == ["ari", "ami"]
    for name in ("ari", "ami"):
        assert "CERTIFICATE_VERIFY_FAILED" in checks[name].detail
        assert "set ca_file to the CA that signed Asterisk's certificate" in checks[name].detail


async def test_an_ami_user_with_more_rights_than_documented_is_a_warning(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    harness = lab["ami_harness"]
    checks = await doctor(tmp_path, lab_config(lab, ami_user=harness["user"], ami_secret=harness["secret"]))
    assert checks["ami rights"].verdict is Verdict.WARN
    assert checks["ami rights"].detail.startswith("write includes system,command, more than needed")


async def test_users_with_too_few_rights_fail_naming_the_fix(lab: dict[str, Any], tmp_path: Path) -> None:
    weak = lab["too_weak"]
    text = lab_config(
        lab,
        ari_user=weak["ari"]["user"],
        ari_password=weak["ari"]["password"],
        ami_user=weak["ami"]["user"],
        ami_secret=weak["ami"]["secret"],
    )
    checks = await doctor(tmp_path, text)
    assert [name for name, check in checks.items() if check.verdict is Verdict.FAIL] == [
        "ari rights",
        "ami rights",
    ]
    assert checks["ari rights"].detail.endswith("set read_only = no in ari.conf")
    assert checks["ami rights"].detail == "write lacks agent: set write = agent,reporting"


async def test_an_unparsable_override_is_named_and_the_other_checks_still_run(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    text = lab_config(lab)
    namespace = re.search(r"namespace = (\S+)", text)
    assert namespace
    redis = connect(lab["redis"]["url"])
    store = Store(redis, Keys(namespace[1]))
    try:
        await store.set_setting("general", "max_attempts", "many")  # as a newer version might write it
        await store.set_setting("general", "paused", "no")
        await store.set_agent_role("1001", "gone")  # its run-time role was deleted by hand
        checks = await doctor(tmp_path, text)
    finally:
        await store.delete_namespace()
        await redis.aclose()
    found = checks["settings overrides"]
    assert found.verdict is Verdict.FAIL
    assert found.detail.startswith("runtime override [general]: max_attempts: 'many' is not a whole number;")
    assert "paused" not in found.detail
    assert checks["roles"].verdict is Verdict.FAIL
    assert checks["roles"].detail.startswith(
        "runtime override [agent_roles]: 1001: unknown role 'gone' (known: "
    )
    assert checks["ami"].verdict is Verdict.OK


async def test_no_cdr_mark_needs_no_mark_context(lab: dict[str, Any], tmp_path: Path) -> None:
    checks = await doctor(tmp_path, lab_config(lab, dialing="cdr_mark_field = none"))
    assert "cdr_mark" not in checks
    assert [name for name, check in checks.items() if check.verdict is not Verdict.OK] == []
