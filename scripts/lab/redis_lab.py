"""The lab's own Redis: its own port, directory and AOF, so tests never touch the host's Redis.

appendfsync always: Redis writes and fsyncs the AOF before it answers a write, so an acknowledged
write survives kill -9 of the server (and even a host crash), which the engine's tests rely on.
"""

from __future__ import annotations

import shutil
import socket

from lab import procs
from lab.ports import PortNeed, check_free
from lab.settings import HOST, LabSettings

NAME = "redis"
MARKER = "redis-server"


def _ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def running(settings: LabSettings) -> bool:
    return procs.running_pid(settings.run_dir, NAME, MARKER) is not None and _ping(settings.redis_port)


def _argv(settings: LabSettings) -> list[str]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("pbx-lab: redis-server is not installed (run scripts/setup-host)")
    return [
        server,
        "--bind", HOST,
        "--port", str(settings.redis_port),
        "--dir", str(settings.redis_dir),
        "--appendonly", "yes",
        "--appendfsync", "always",
        "--save", "",
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--logfile", "",
    ]  # fmt: skip


def up(settings: LabSettings) -> None:
    """Start the lab Redis unless it already answers; wait until it answers PING."""
    if running(settings):
        return
    procs.stop(settings.run_dir, NAME, MARKER)
    check_free(PortNeed(settings.redis_port, "tcp", "the lab Redis"))
    settings.redis_dir.mkdir(parents=True, exist_ok=True)
    procs.start(settings.run_dir, NAME, _argv(settings), settings.log_dir / "redis.log")
    if not procs.wait_until(lambda: _ping(settings.redis_port), 10):
        raise SystemExit(
            f"pbx-lab: the lab Redis did not answer on port {settings.redis_port}; "
            f"see {settings.log_dir / 'redis.log'}"
        )


def down(settings: LabSettings) -> str:
    procs.stop(settings.run_dir, NAME, MARKER)
    return "down"


def status(settings: LabSettings) -> str:
    if running(settings):
        return f"up ({settings.redis_url}, data in {settings.redis_dir})"
    return "down"
