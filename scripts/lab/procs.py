"""Start, find and stop the lab's background processes through pid files under .lab/run.

Each process runs in its own session (setsid) so `down` can signal the whole group, and a pid file
only counts while /proc/<pid>/cmdline still names the program we started (pids get reused).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def _pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def running_pid(run_dir: Path, name: str, marker: str) -> int | None:
    """The pid of the lab process `name` if it is alive and its command line still contains `marker`."""
    try:
        pid = int(_pid_file(run_dir, name).read_text().strip())
    except (OSError, ValueError):
        return None
    if any(marker in part for part in _cmdline(pid)):
        return pid
    return None


def start(run_dir: Path, name: str, argv: Sequence[str], log_file: Path, cwd: Path | None = None) -> int:
    """Start argv detached in a new session, output appended to log_file; records and returns its pid."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    _pid_file(run_dir, name).write_text(f"{child.pid}\n")
    # Right after exec, /proc/<pid>/cmdline can read empty for a moment: wait it out, so that
    # running_pid() does not mistake a starting process for a dead one.
    wait_until(lambda: bool(_cmdline(child.pid)) or not _alive(child.pid), 2, 0.005)
    return child.pid


def _alive(pid: int) -> bool:
    """True while pid runs; a zombie counts as gone (its reaper, often not us, may take seconds)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def stop(run_dir: Path, name: str, marker: str, grace_s: float = 5.0, signum: int = signal.SIGTERM) -> bool:
    """Signal the process group of `name`, SIGKILL it after grace_s; True if something was running."""
    pid = running_pid(run_dir, name, marker)
    _pid_file(run_dir, name).unlink(missing_ok=True)
    if pid is None:
        return False
    signal_group(pid, signum)
    if not wait_until(lambda: not _alive(pid), grace_s):
        signal_group(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), grace_s)
    return True


def signal_group(pgid: int, signum: int) -> None:
    """Signal a whole session started by `start` (its pid is its process group id)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def wait_until(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll condition until it is true or timeout_s passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
