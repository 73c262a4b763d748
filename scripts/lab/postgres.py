"""The lab's own PostgreSQL role and database (cdr and cel tables) on the host's PostgreSQL server.

The lab never creates or touches anything but its own role and database. The server itself belongs
to the host: the lab starts an installed-but-stopped cluster, and `down` leaves it running.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess

from lab.settings import LAB_PACKAGE, LabSettings

SCHEMA = LAB_PACKAGE / "sql" / "cdr_cel.sql"


def _reachable(settings: LabSettings) -> bool:
    try:
        with socket.create_connection((settings.pg_host, settings.pg_port), timeout=1):
            return True
    except OSError:
        return False


def _start_cluster(settings: LabSettings) -> None:
    """Start the installed cluster configured for pg_port (Debian's pg_ctlcluster), or explain."""
    if shutil.which("pg_lsclusters") is None:
        raise SystemExit(
            f"pbx-lab: no PostgreSQL answers on {settings.pg_host}:{settings.pg_port} and none is "
            "installed: run scripts/setup-host (it installs Debian's postgresql)"
        )
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout
    for line in clusters.splitlines():
        version, name, port = line.split()[:3]
        if int(port) == settings.pg_port:
            subprocess.run(["pg_ctlcluster", version, name, "start"], check=True)
            return
    raise SystemExit(f"pbx-lab: no PostgreSQL cluster is configured for port {settings.pg_port}")


def _admin_sql(settings: LabSettings, sql: str) -> str:
    """Run SQL as the postgres superuser over the local socket (peer auth), the Debian default."""
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
         "-p", str(settings.pg_port), "-d", "postgres", "-c", sql],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"pbx-lab: PostgreSQL admin command failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _lab_psql(settings: LabSettings, *args: str) -> subprocess.CompletedProcess[str]:
    """psql as the lab role over TCP with its password, exactly how Asterisk connects."""
    return subprocess.run(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", settings.pg_host,
         "-p", str(settings.pg_port), "-U", settings.pg_user, "-d", settings.pg_database, *args],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PGPASSWORD": settings.pg_password, "PGCONNECT_TIMEOUT": "5"},
    )  # fmt: skip


def _ensure_role_and_database(settings: LabSettings) -> None:
    for name in (settings.pg_user, settings.pg_database):
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise SystemExit(f"pbx-lab: {name!r} is not a plain PostgreSQL identifier")
    password = settings.pg_password.replace("'", "''")
    _admin_sql(
        settings,
        "SET password_encryption = 'scram-sha-256';"
        f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{settings.pg_user}') "
        f"THEN CREATE ROLE {settings.pg_user} LOGIN; END IF; END$$;"
        f"ALTER ROLE {settings.pg_user} LOGIN PASSWORD '{password}';"
        # Asterisk writes CDR/CEL times as UTC text (cdr_pgsql timezone, cel_pgsql usegmtime).
        f"ALTER ROLE {settings.pg_user} SET timezone = 'UTC';",
    )
    exists = _admin_sql(settings, f"SELECT 1 FROM pg_database WHERE datname = '{settings.pg_database}'")
    if not exists:
        _admin_sql(settings, f"CREATE DATABASE {settings.pg_database} OWNER {settings.pg_user}")


def up(settings: LabSettings) -> None:
    """Make sure the server runs, the lab role and database exist and hold the cdr and cel tables."""
    if _lab_psql(settings, "-c", "SELECT FROM cdr, cel LIMIT 1").returncode != 0:
        if not _reachable(settings):
            _start_cluster(settings)
        _ensure_role_and_database(settings)
    # Every time: the schema only adds what is missing (a column a newer schema has). Asterisk reads
    # the columns when cdr_pgsql loads: a column added under a running Asterisk needs a restart.
    result = _lab_psql(settings, "-f", str(SCHEMA))
    if result.returncode != 0:
        raise SystemExit(f"pbx-lab: creating the cdr/cel tables failed: {result.stderr.strip()}")


def down(_: LabSettings) -> str:
    """Nothing to stop: the server is the host's, and the lab database keeps its CDRs for inspection."""
    return "left running (the host's server; the lab database keeps its rows)"


def status(settings: LabSettings) -> str:
    result = _lab_psql(
        settings,
        "-c",
        "SELECT (SELECT count(*) FROM cdr) || ' cdr, ' || (SELECT count(*) FROM cel) || ' cel rows'",
    )
    if result.returncode != 0:
        return "down"
    return f"up ({settings.pg_database} on {settings.pg_host}:{settings.pg_port}: {result.stdout.strip()})"
