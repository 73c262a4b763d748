"""SIGTERM and SIGINT stop `asterisk-cb run` within seconds at any moment of its start-up, also while
Asterisk is unreachable and the metrics server is on (the sample config's default): the hardening
issue's report was a daemon that logged "stopping", went on to "running" and ignored every later
signal, so `systemctl stop` waited out its whole timeout. Real processes, the lab's Redis."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import connect
from asterisk_cb.secrecy import write_private
from asterisk_cb.store import Store

ENTRY_POINT = Path(sys.executable).parent / "asterisk-cb"
STOPS_WITHIN_S = 5.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(redis_url: str, namespace: str) -> str:
    """Redis up; ARI and AMI on a port nothing listens on (Asterisk down); metrics on."""
    return f"""[general]
[redis]
url = {redis_url}
namespace = {namespace}
[ari]
url = http://127.0.0.1:9/ari
user = acb
password = not-the-sample-one
[ami]
host = 127.0.0.1
port = 9
user = acb
secret = not-the-sample-one
[dialing]
outbound_context = from-internal
[agents]
1001 = PJSIP/1001
[metrics]
listen = 127.0.0.1:{_free_port()}
"""


@pytest.fixture
async def namespace(lab_redis_url: str) -> AsyncIterator[str]:
    name = f"test-signals-{uuid.uuid4().hex[:8]}"
    yield name
    redis = connect(lab_redis_url)
    await Store(redis, Keys(name)).delete_namespace()
    await redis.aclose()


def _wait_for_line(log: Path, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never logged: {log.read_text()}"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("stop", "after_s"),
    [(signal.SIGTERM, 0.0), (signal.SIGTERM, 3.0), (signal.SIGINT, 3.0), (signal.SIGTERM, 12.0)],
    ids=["SIGTERM at once", "SIGTERM after 3 s", "SIGINT after 3 s", "SIGTERM after 12 s"],
)
def test_a_signal_during_start_up_with_asterisk_down_stops_the_daemon_within_seconds(
    tmp_path: Path, lab_redis_url: str, namespace: str, stop: signal.Signals, after_s: float
) -> None:
    config, log = tmp_path / "asterisk-cb.conf", tmp_path / "daemon.log"
    write_private(config, _config(lab_redis_url, namespace))
    with log.open("wb") as output:
        daemon = subprocess.Popen(
            [str(ENTRY_POINT), "--config", str(config), "run"], stdout=output, stderr=output
        )
    try:
        _wait_for_line(log, '"msg": "starting"', 15)
        time.sleep(after_s)
        daemon.send_signal(stop)
        try:
            code = daemon.wait(STOPS_WITHIN_S)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0, f"exit {code} within {STOPS_WITHIN_S} s; its log:\n{log.read_text()}"
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(5)
    lines = log.read_text()
    assert '"msg": "stopped"' in lines
    if after_s < 10:  # still waiting for ARI and AMI (10 s): it must not go on to run
        assert '"msg": "running"' not in lines
