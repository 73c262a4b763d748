"""The lab's lifecycle: idempotent `up`, refused ports, `down` leaving nothing, recovery after kill -9.

These tests stop and restart lab services; each one leaves the whole lab up again for later tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from lab import procs

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _pids_in(root: str) -> list[int]:
    """Processes whose root directory is the lab chroot."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "root") == root:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _lab_mounts(root: str) -> list[str]:
    mount_points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [point for point in mount_points if point == root or point.startswith(root + "/")]


def _bindable(port: int, proto: str) -> bool:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _asterisk_pid(root: str) -> int:
    pids = [pid for pid in _pids_in(root) if Path(f"/proc/{pid}/comm").read_text().strip() == "asterisk"]
    assert len(pids) == 1, f"expected one Asterisk in {root}, found {pids}"
    return pids[0]


def _smoke_call() -> None:
    result = subprocess.run(
        [str(REPO / "scripts" / "smoke-call"), "--hold-s", "0.2"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_up_twice_is_safe_and_fast(lab: dict[str, Any], pbx_lab_run: Callable[..., str]) -> None:
    asterisk_before = _asterisk_pid(lab["asterisk_root"])
    begun = time.monotonic()
    pbx_lab_run("up")
    assert time.monotonic() - begun < 5
    assert _asterisk_pid(lab["asterisk_root"]) == asterisk_before
    pbx_lab_run("status")


def test_up_refuses_a_port_held_by_something_else(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**os.environ, "ACB_LAB_DIR": str(tmp_path), "ACB_LAB_REDIS_PORT": str(port)}
        result = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "pbx-lab"), "up", "redis"],
            capture_output=True, text=True, timeout=30, env=env, check=False,
        )  # fmt: skip
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr


def test_lab_redis_keeps_acknowledged_writes_across_kill_9(
    lab_redis_url: str, lab: dict[str, Any], pbx_lab_run: Callable[..., str]
) -> None:
    key = f"acb-lab-test:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(lab_redis_url)
    try:
        client.set(key, "kept")
        redis_pid = int((Path(lab["lab_dir"]) / "run" / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGKILL)
        assert procs.wait_until(lambda: _bindable(lab["redis"]["port"], "tcp") is not False, 5)
        pbx_lab_run("up", "redis")
        assert client.get(key) == b"kept"
    finally:
        client.delete(key)
        client.close()


def test_up_recovers_after_asterisk_is_killed_with_sigkill(
    lab: dict[str, Any], pbx_lab_run: Callable[..., str]
) -> None:
    root = lab["asterisk_root"]
    os.kill(_asterisk_pid(root), signal.SIGKILL)
    assert procs.wait_until(lambda: not _pids_in(root), 10)
    assert _lab_mounts(root) == []
    pbx_lab_run("up")
    pbx_lab_run("status")
    _smoke_call()


def _phone_of_an_earlier_up(lab: dict[str, Any]) -> subprocess.Popen[bytes]:
    """A phone as an `up` with more ACB_LAB_AGENTS than now leaves it (agent 1099, unknown to the
    current settings): `down` must stop it all the same, or it holds its port against the next `up`."""
    phone = "agent-1099"
    marker = str(Path(lab["lab_dir"]) / "phones" / f"{phone}.xml")
    argv = [sys.executable, "-c", "import time; time.sleep(60)", marker]
    process = subprocess.Popen(argv, start_new_session=True)
    (Path(lab["lab_dir"]) / "run" / f"{phone}.pid").write_text(f"{process.pid}\n")
    return process


def test_down_leaves_no_process_mount_or_port_and_up_restores(
    lab: dict[str, Any], pbx_lab_run: Callable[..., str]
) -> None:
    root = lab["asterisk_root"]
    run_dir = Path(lab["lab_dir"]) / "run"
    stray = _phone_of_an_earlier_up(lab)
    try:
        pbx_lab_run("down")
        pbx_lab_run("down")  # twice is safe too
        assert stray.wait(timeout=5) == -signal.SIGKILL  # a phone outliving `down` would time out here
        assert _pids_in(root) == []
        assert _lab_mounts(root) == []
        assert list(run_dir.glob("*.pid")) == []
        held = [p for p in lab["ports"] if not _bindable(p["port"], p["proto"])]
        assert held == [], f"ports still held after down: {held}"
    finally:
        stray.kill()
        stray.wait()
        pbx_lab_run("up")
    pbx_lab_run("status")
    _smoke_call()


def _hold_udp(port: int) -> socket.socket:
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", port))
    return holder


def test_a_phone_start_names_the_holder_of_its_rtp_port_and_waits_for_one_released(
    lab: dict[str, Any], pbx_lab_run: Callable[..., str]
) -> None:
    """SIPp exits when its RTP echo port is taken: `phone` says which port and who holds it (not "did
    not start" after 10 s), and a port released within the wait (a phone just killed) is waited for."""
    desk = next(iter(lab["desk_phones"]))
    rtp_port = lab["desk_phones"][desk]["sipp_rtp_ports"][1]
    command = [sys.executable, str(REPO / "scripts" / "pbx-lab"), "phone", desk, "answer"]
    pbx_lab_run("phone", desk, "offline")
    try:
        with _hold_udp(rtp_port):
            refused = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode != 0
        assert f"127.0.0.1:{rtp_port} is held by" in refused.stderr
        assert f"pid {os.getpid()}" in refused.stderr

        holder = _hold_udp(rtp_port)
        releaser = threading.Timer(1.5, holder.close)
        releaser.start()
        begun = time.monotonic()
        started = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        releaser.join()
        assert started.returncode == 0, started.stdout + started.stderr
        assert 1.5 <= time.monotonic() - begun < 10
    finally:
        pbx_lab_run("phone", desk, "answer")
