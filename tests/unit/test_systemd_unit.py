"""The shipped systemd unit keeps its sandbox: each directive below closes a way out, and
``systemd-analyze security`` (where installed) rates the unit OK."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "config" / "systemd" / "asterisk-cb.service"

SANDBOX = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "PrivateUsers": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "PrivateMounts": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "RemoveIPC": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service|~@privileged @resources",
    "UMask": "0077",
}


def service_section() -> dict[str, str]:
    """[Service] directives; a repeated one (SystemCallFilter) joined with ``|``."""
    directives: dict[str, str] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            directives[key] = f"{directives[key]}|{value}" if key in directives else value
    return directives


@pytest.mark.parametrize(("directive", "value"), SANDBOX.items())
def test_the_unit_holds_the_sandbox(directive: str, value: str) -> None:
    assert service_section().get(directive) == value


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_rates_the_unit_ok(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    rating = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", result.stdout)
    assert rating, result.stdout + result.stderr
    assert rating[2] == "OK", rating[0]
