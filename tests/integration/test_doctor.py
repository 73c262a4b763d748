"""`asterisk-cb doctor` against the real lab: a good deployment passes, each broken part is named."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from asterisk_cb import config, deployment
from asterisk_cb.doctor import Check, Verdict, run_checks
from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


def lab_config(lab: dict[str, Any], **overrides: str) -> str:
    values = {
        "ari_password": lab["ari"]["password"],
        "ami_secret": lab["ami"]["secret"],
        "context": lab["dialplan"]["outbound_context"],
        "devices": "PJSIP/1001",
        "general": "",
        "dialing": "",
    } | overrides
    return f"""
[general]
{values["general"]}
[redis]
url = {lab["redis"]["url"]}
namespace = doctor-{uuid.uuid4().hex[:8]}
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


async def doctor(tmp_path: Path, text: str) -> dict[str, Check]:
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(text)
    file = config.load(path, other_sections=deployment.SECTIONS)
    return {check.name: check for check in await run_checks(file, deployment.from_settings_file(file))}


async def test_the_lab_passes_every_check(lab: dict[str, Any], tmp_path: Path) -> None:
    checks = await doctor(tmp_path, lab_config(lab, general="failover_queue = failover\namd = yes"))
    assert {name: check.verdict for name, check in checks.items()} == {
        "redis": Verdict.OK,
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


@pytest.mark.parametrize(
    ("overrides", "failing", "words"),
    [
        ({"ari_password": "wrong"}, "ari", "401"),
        ({"devices": "PJSIP/1001 & PJSIP/nosuchphone"}, "agent 1001", "PJSIP/nosuchphone"),
        ({"context": "no-such-context"}, "outbound_context", "no-such-context"),
        ({"general": "failover_queue = nosuchqueue"}, "queue nosuchqueue", "does not have"),
        ({"general": "amd = yes", "dialing": "amd_context = no-amd-here"}, "amd_context", "no-amd-here"),
        ({"ami_secret": "wrong"}, "ami", "login refused"),
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
        checks = await doctor(tmp_path, text)
    finally:
        await store.delete_namespace()
        await redis.aclose()
    found = checks["settings overrides"]
    assert found.verdict is Verdict.FAIL
    assert found.detail.startswith("runtime override [general]: max_attempts: 'many' is not a whole number;")
    assert "paused" not in found.detail
    assert checks["ami"].verdict is Verdict.OK
