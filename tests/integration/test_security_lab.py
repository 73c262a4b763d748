"""Least rights and TLS against the lab's real Asterisk 22 (README "Least rights and TLS").

The lab's daemon AMI user has exactly the README's rights: what the daemon sends is allowed, what it
must not do (AstDB writes, CLI commands, originate) is refused. ARI and AMI over TLS work with the
lab's own CA in ``ca_file`` and fail, naming the certificate, with another CA.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lab.ami_client import LabAmi
from lab.tls import make_ca

from asterisk_cb.telephony import answer_marks
from asterisk_cb.telephony.ami import AmiConnection, AmiError, AmiSettings
from asterisk_cb.telephony.ari import AriClient, AriSettings, AriUnavailable
from asterisk_cb.telephony.backoff import Backoff

pytestmark = pytest.mark.lab

DAY_S = 86400


@pytest.fixture
async def daemon_ami(lab_ami: dict[str, Any]) -> AsyncIterator[AmiConnection]:
    """The daemon's AMI link, as the daemon's user."""
    link = AmiConnection(AmiSettings(lab_ami["user"], lab_ami["secret"], lab_ami["host"], lab_ami["port"]))
    await link.start()
    await link.wait_ready(10)
    yield link
    await link.stop()


async def _refusal(ami: AmiConnection, action: dict[str, str]) -> str:
    """'' when Asterisk runs the action, else its refusal."""
    try:
        await ami.send(action)
    except AmiError as error:
        return str(error)
    return ""


async def test_the_daemons_ami_user_may_send_what_the_daemon_sends(daemon_ami: AmiConnection) -> None:
    assert await daemon_ami.queue_members()  # QueueStatus
    assert await daemon_ami.device_states()  # DeviceStateList (reporting)
    assert (await daemon_ami.device_state("PJSIP/1001")).state != "UNKNOWN"  # Getvar (reporting)
    with pytest.raises(AmiError, match="Interface not found"):  # QueuePause (agent): allowed, no such phone
        await daemon_ami.queue_pause("Local/asterisk-cb-nobody", True)
    assert not await answer_marks.AnswerMarks(daemon_ami).answered("asterisk-cb-never-written")  # DBGet


@pytest.mark.parametrize(
    "action",
    [
        {"Action": "DBPut", "Family": "acb", "Key": "x", "Val": "1"},
        {"Action": "DBDel", "Family": "acb", "Key": "x"},
        {"Action": "DBDelTree", "Family": "acb"},
        {"Action": "Command", "Command": "core show uptime"},
        {"Action": "Originate", "Channel": "Local/s@nowhere", "Application": "Wait", "Data": "1"},
        {"Action": "Filter", "Operation": "Add", "Filter": "Event: Newchannel"},
    ],
)
async def test_the_daemons_ami_user_may_not_do_more(
    daemon_ami: AmiConnection, action: dict[str, str]
) -> None:
    assert "Permission denied" in await _refusal(daemon_ami, action)


async def _db_get(ami: LabAmi, key: str) -> str | None:
    reply = await ami.action("DBGet", Family=answer_marks.FAMILY, Key=key)
    if reply.get("Response") != "Success":
        return None
    event = await ami.wait_for(lambda message: message.get("Event") == "DBGetResponse", timeout_s=5)
    return event.get("Val")


async def test_the_answer_handler_purges_marks_older_than_30_days(
    ami: LabAmi, lab_ari: dict[str, str], lab: dict[str, Any]
) -> None:
    """The daemon never deletes a mark (that needs AMI system): the handler that writes one deletes
    those older than 30 days. Planted by the harness user; the handler runs on a real answered call."""
    tag = uuid.uuid4().hex[:8]
    old, recent, channel_id = f"test-old-{tag}", f"test-recent-{tag}", f"test-marked-{tag}"
    now = int(time.time())
    await ami.action("DBPut", Family=answer_marks.FAMILY, Key=old, Val=str(now - 31 * DAY_S))
    await ami.action("DBPut", Family=answer_marks.FAMILY, Key=recent, Val=str(now - 29 * DAY_S))
    assert await _db_get(ami, old) == str(now - 31 * DAY_S)
    settings = AriSettings(lab_ari["url"], lab_ari["user"], lab_ari["password"], f"acb-test-{tag}")
    try:
        async with AriClient(settings) as ari:
            number = f"20101{tag.encode().hex()[:8]}"  # answers, hangs up itself after 1 s
            endpoint = f"Local/{number}@{lab['dialplan']['outbound_context']}/n"
            await ari.originate(endpoint, channel_id=channel_id, app=settings.app, timeout_s=10,
                                variables=answer_marks.handler(channel_id))  # fmt: skip
            async with asyncio.timeout(20):
                while await _db_get(ami, channel_id) is None:  # noqa: ASYNC110 - Asterisk writes it
                    await asyncio.sleep(0.2)
        assert await _db_get(ami, old) is None
        assert await _db_get(ami, recent) == str(now - 29 * DAY_S)
    finally:
        for key in (old, recent, channel_id):
            await ami.action("DBDel", Family=answer_marks.FAMILY, Key=key)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A CA that did not sign the lab's certificate."""
    return str(make_ca(tmp_path_factory.mktemp("other-ca"), "/CN=not the lab's CA"))


async def test_ami_over_tls_logs_in_with_the_lab_ca(lab_ami: dict[str, Any], lab: dict[str, Any]) -> None:
    settings = AmiSettings(lab_ami["user"], lab_ami["secret"], lab_ami["host"], lab_ami["tls_port"],
                           tls=True, ca_file=lab["tls"]["ca_file"])  # fmt: skip
    link = AmiConnection(settings)
    await link.start()
    try:
        await link.wait_ready(10)
        assert await link.queue_members()
    finally:
        await link.stop()


async def test_ami_over_tls_with_another_ca_fails_naming_the_certificate(
    lab_ami: dict[str, Any], other_ca: str
) -> None:
    settings = AmiSettings(lab_ami["user"], lab_ami["secret"], lab_ami["host"], lab_ami["tls_port"],
                           tls=True, ca_file=other_ca, backoff=Backoff(initial_s=5, cap_s=5))  # fmt: skip
    link = AmiConnection(settings)
    await link.start()
    try:
        with pytest.raises(TimeoutError):
            await link.wait_ready(3)
        assert "CERTIFICATE_VERIFY_FAILED" in (link.health.snapshot().last_error or "")
    finally:
        await link.stop()


async def test_ari_over_https_and_wss_with_the_lab_ca(lab_ari: dict[str, str], lab: dict[str, Any]) -> None:
    app = f"acb-test-{uuid.uuid4().hex[:8]}"
    settings = AriSettings(lab_ari["tls_url"], lab_ari["user"], lab_ari["password"], app,
                           ca_file=lab["tls"]["ca_file"])  # fmt: skip
    assert settings.events_url.startswith("wss://")
    async with AriClient(settings) as ari:
        assert (await ari.asterisk_info())["system"]["version"].startswith("22.")
        async with ari.session.ws_connect(settings.events_url) as ws:
            channel_id = f"test-tls-{uuid.uuid4().hex[:8]}"
            await ari.originate("PJSIP/1004", channel_id=channel_id, app=app, timeout_s=10)
            try:
                async with asyncio.timeout(15):
                    while (event := await ws.receive_json())["type"] != "StasisStart":
                        pass
                assert event["channel"]["id"] == channel_id
            finally:
                await ari.hangup(channel_id)


async def test_ari_over_https_with_another_ca_fails_naming_the_certificate(
    lab_ari: dict[str, str], other_ca: str
) -> None:
    settings = AriSettings(lab_ari["tls_url"], lab_ari["user"], lab_ari["password"], "x", ca_file=other_ca)
    async with AriClient(settings) as ari:
        with pytest.raises(AriUnavailable, match="certificate verify failed"):
            await ari.asterisk_info()
