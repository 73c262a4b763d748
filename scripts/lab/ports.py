"""Refuse to start on a port that something other than the lab holds, naming port and holder."""

from __future__ import annotations

import re
import socket
import subprocess
from dataclasses import dataclass

from lab.settings import HOST


@dataclass(frozen=True)
class PortNeed:
    """A port a lab service will bind: 'tcp' or 'udp', and which service wants it (for messages)."""

    port: int
    proto: str
    service: str


def _holder(port: int, proto: str) -> tuple[str, set[int]]:
    """Who listens on port (from `ss`): a printable description and the pids."""
    flag = "-t" if proto == "tcp" else "-u"
    listing = subprocess.run(
        ["ss", "-Hlnp", flag, f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    pids = {int(pid) for pid in re.findall(r"pid=(\d+)", listing)}
    names = sorted(set(re.findall(r'\(\("([^"]+)"', listing)))
    description = ", ".join(f"{name}" for name in names) or "an unknown process"
    if pids:
        description += " (pid " + ", ".join(str(pid) for pid in sorted(pids)) + ")"
    return description, pids


def _bindable(port: int, proto: str) -> bool:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        if proto == "tcp":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def check_free(need: PortNeed) -> None:
    """Exit with a clear message if need.port is taken (the caller already knows the lab is not on it)."""
    if _bindable(need.port, need.proto):
        return
    holder, _ = _holder(need.port, need.proto)
    raise SystemExit(
        f"pbx-lab: cannot start {need.service}: {need.proto.upper()} port {HOST}:{need.port} is held by "
        f"{holder}. Stop it or choose another port (see `scripts/pbx-lab env` for the ACB_LAB_* settings)."
    )


def is_free(port: int, proto: str) -> bool:
    return _bindable(port, proto)
