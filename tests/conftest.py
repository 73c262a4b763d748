"""Session fixtures for the test PBX lab: start what a test needs (once) and hand out its endpoints.

The lab is started through `scripts/pbx-lab`, exactly as a user starts it; a service that is already
up is reused (`up` is idempotent and fast). Tests never stop the lab except those that test `down`,
and those bring it back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PBX_LAB = REPO / "scripts" / "pbx-lab"
# The lab's helpers (scripts/lab: INVITE logs, small ARI/AMI clients) are not an installed package.
sys.path.insert(0, str(REPO / "scripts"))

from lab import invites  # noqa: E402 - needs the sys.path entry above


def pbx_lab(*args: str, timeout: float = 300) -> str:
    """Run `scripts/pbx-lab args...` and return its stdout; fail the test with its output otherwise.

    The timeout covers a cold first `up`, which builds the Asterisk root (about a minute).
    """
    result = subprocess.run(
        [sys.executable, str(PBX_LAB), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        output = f"{result.stdout}{result.stderr}"
        pytest.fail(f"scripts/pbx-lab {' '.join(args)} exited {result.returncode}:\n{output}")
    return result.stdout


@pytest.fixture(scope="session")
def pbx_lab_run() -> Callable[..., str]:
    """`scripts/pbx-lab` as a function, for tests that drive the lab (phones, down/up)."""
    return pbx_lab


@pytest.fixture(scope="session")
def lab_info() -> dict[str, Any]:
    """Everything `scripts/pbx-lab env --json` prints: endpoints, credentials, conventions, log paths."""
    return json.loads(pbx_lab("env", "--json"))


@pytest.fixture(scope="session")
def lab_redis_url(lab_info: dict[str, Any]) -> str:
    """The lab's own Redis (never the host's): namespace your keys and delete only those."""
    pbx_lab("up", "redis")
    return lab_info["redis"]["url"]


@pytest.fixture(scope="session")
def lab_pg_dsn(lab_info: dict[str, Any]) -> str:
    """DSN of the lab's own PostgreSQL database, which holds the Asterisk cdr and cel tables."""
    pbx_lab("up", "postgres")
    return lab_info["postgres"]["dsn"]


@pytest.fixture(scope="session")
def lab_mariadb(lab_info: dict[str, Any]) -> dict[str, Any]:
    """The lab's own MariaDB database (cdr and cel, the classic schema): dsn, host, port, database,
    user, password_file and client_cnf (`mariadb --defaults-file=<client_cnf>` logs in as its user)."""
    pbx_lab("up", "mariadb")
    return lab_info["mariadb"]


@pytest.fixture(scope="session")
def lab(lab_info: dict[str, Any]) -> dict[str, Any]:
    """The whole lab up (Redis, PostgreSQL, Asterisk, SIPp phones); returns `pbx-lab env --json`."""
    pbx_lab("up")
    return lab_info


@pytest.fixture(scope="session")
def lab_ari(lab: dict[str, Any]) -> dict[str, str]:
    """ARI base URL (…/ari), user, password and the app name the daemon uses."""
    return lab["ari"]


@pytest.fixture(scope="session")
def lab_ami(lab: dict[str, Any]) -> dict[str, Any]:
    """AMI host, port, user and secret: the daemon's user, with exactly the README's rights."""
    return lab["ami"]


@pytest.fixture(scope="session")
def lab_ami_harness(lab: dict[str, Any]) -> dict[str, Any]:
    """The tests' own AMI user (read = all, write = all), for observers and fault injection."""
    return lab["ami_harness"]


@pytest.fixture(scope="session")
def lab_invites(lab: dict[str, Any]) -> Callable[..., list[invites.Invite]]:
    """invites(phone, user=None): the INVITEs a phone ("contacts" or an agent extension) received,
    in time order, optionally only those for one request-URI user (a dialled number)."""

    def read(phone: str, user: str | None = None) -> list[invites.Invite]:
        where = lab["contacts"] if phone == "contacts" else lab["agents"][phone]
        return invites.read(Path(where["invite_dir"]), user)

    return read
