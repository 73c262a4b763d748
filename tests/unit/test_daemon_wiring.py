"""What `asterisk-cb run` wires from the config file, checked without connecting to anything."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from asterisk_cb import config, deployment, secrecy
from asterisk_cb.core.settings import resolve
from asterisk_cb.daemon import Daemon

CONNECTIONS = """[general]
[ari]
url = http://127.0.0.1:8088/ari
user = acb
password = secret
[ami]
user = acb
secret = secret
[dialing]
outbound_context = from-internal
"""


@pytest.mark.parametrize(
    ("agents", "agent_pool"),
    [
        ("alice = Agent/1001\nbob = PJSIP/1002\n", True),
        ("alice = PJSIP/1001\nbob = PJSIP/1002 & member:bob\n", False),
    ],
)
async def test_ami_seeds_pool_logins_only_when_an_agent_is_an_app_agent_pool_agent(
    tmp_path: Path, agents: str, agent_pool: bool
) -> None:
    """An Agent/ agent logged in before the daemon started is known from the AMI seed (Agents action);
    without such an agent the action is never sent (app_agent_pool may not even be loaded)."""
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(CONNECTIONS + "[agents]\n" + agents)
    file = config.load(path, other_sections=deployment.SECTIONS)
    daemon = Daemon(path, file, deployment.from_settings_file(file))
    try:
        assert daemon.ami.settings.agent_pool is agent_pool
        fixed_phones = [device for device in ("PJSIP/1001", "PJSIP/1002") if device in agents]
        assert daemon.ami.watched_devices() == fixed_phones  # what the AMI seed reads when not cached
    finally:
        await daemon.ari.close()
        await daemon.redis.aclose()


async def test_a_reload_of_a_file_others_can_read_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An editor that saved the file anew with the umask's 0644: the running settings stay."""
    path = tmp_path / "asterisk-cb.conf"
    secrecy.write_private(path, CONNECTIONS.replace("[general]\n", "[general]\nmax_attempts = 2\n"))
    file = config.load(path, other_sections=deployment.SECTIONS)
    daemon = Daemon(path, file, deployment.from_settings_file(file))
    try:
        path.write_text(path.read_text().replace("max_attempts = 2", "max_attempts = 5"))
        path.chmod(0o644)
        with caplog.at_level(logging.ERROR):
            daemon.reload()
        assert resolve(daemon.file, {}).max_attempts == 2
        assert "gives other users access" in caplog.records[-1].__dict__["error"]
        path.chmod(0o640)
        daemon.reload()
        assert resolve(daemon.file, {}).max_attempts == 5
    finally:
        await daemon.ari.close()
        await daemon.redis.aclose()


@pytest.mark.parametrize(
    ("records", "with_writer"),
    [("", False), ("[records]\ndsn = postgresql://cel:pw@127.0.0.1:1/asterisk\n", True)],
)
async def test_the_cel_writer_runs_only_with_a_records_dsn(
    tmp_path: Path, records: str, with_writer: bool
) -> None:
    """A side part with its own metrics; built without connecting (the database is reached on first use)."""
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(CONNECTIONS + "[metrics]\nlisten = 127.0.0.1:1\n" + records)
    file = config.load(path, other_sections=deployment.SECTIONS)
    daemon = Daemon(path, file, deployment.from_settings_file(file))
    try:
        parts = {part.name: part for part in daemon.supervisor.components}
        assert ("cel" in parts) is with_writer
        assert ("asterisk_cb_cel_database_up" in daemon.metrics.render().decode()) is with_writer
        if with_writer:
            assert parts["cel"].essential is False
    finally:
        await daemon.ari.close()
        await daemon.redis.aclose()


@pytest.mark.parametrize(
    ("api", "with_api"),
    [("", False), ("[api]\nlisten =\n", False), ("[api]\nlisten = 127.0.0.1:8090\n", True)],
)
async def test_the_api_runs_only_with_an_api_listen_address(tmp_path: Path, api: str, with_api: bool) -> None:
    """Off by default: a listener nobody asked for is a door nobody watches; auxiliary when on."""
    path = tmp_path / "asterisk-cb.conf"
    path.write_text(CONNECTIONS + api)
    file = config.load(path, other_sections=deployment.SECTIONS)
    daemon = Daemon(path, file, deployment.from_settings_file(file))
    try:
        parts = {part.name: part for part in daemon.supervisor.components}
        assert ("api" in parts) is with_api
        if with_api:
            assert parts["api"].essential is False
    finally:
        await daemon.ari.close()
        await daemon.redis.aclose()
