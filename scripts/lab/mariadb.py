"""The lab's own MariaDB database and user (cdr and cel tables) on the host's MariaDB server.

Asterisk writes every CDR and CEL row here too (res_odbc, cdr_adaptive_odbc, cel_odbc), so the
daemon's SQL readers and writers are tested on the classic MySQL schema as well as on PostgreSQL.
The lab creates and touches nothing but its own database and user; the server belongs to the host:
the lab starts an installed-but-stopped server, and `down` leaves it running with the lab's rows.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

from lab import procs
from lab.settings import HOST, LAB_PACKAGE, LabSettings

SCHEMA = LAB_PACKAGE / "sql" / "cdr_cel_mysql.sql"
# res_odbc.conf's connection and odbc.ini's data source: what cdr_adaptive_odbc.conf and cel_odbc.conf name.
ODBC_DSN = "acb-lab-mariadb"
# The driver name odbc-mariadb registers in the chroot's /etc/odbcinst.ini when it is installed.
ODBC_DRIVER = "MariaDB Unicode"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def password_file(settings: LabSettings) -> Path:
    return settings.mariadb_dir / "password"


def client_cnf(settings: LabSettings) -> Path:
    """`mariadb --defaults-file=THIS` logs in as the lab user: the password never shows in argv."""
    return settings.mariadb_dir / "client.cnf"


def password(settings: LabSettings) -> str:
    """The lab user's password: generated once per lab directory, then read back.

    Two pbx-lab commands racing on a fresh lab agree on one password: the first link wins.
    """
    path = password_file(settings)
    if not path.exists():
        _write_private(path, secrets.token_hex(16) + "\n", replace=False)
    return path.read_text().strip()


def _write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write a 0600 file whole under a temporary name, then put it in place at once: a reader never
    sees it half written. replace=False keeps a file another process put there first."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(text)
    if replace:
        partial.replace(path)
        return
    try:
        os.link(partial, path)
    except FileExistsError:
        pass
    finally:
        partial.unlink()


def dsn(settings: LabSettings) -> str:
    """The lab database as a URL (what `pbx-lab env` shows, like the PostgreSQL dsn)."""
    return (
        f"mysql://{settings.mariadb_user}:{password(settings)}@{settings.mariadb_host}:"
        f"{settings.mariadb_port}/{settings.mariadb_database}"
    )


def odbc_values(settings: LabSettings) -> dict[str, str]:
    """Placeholders of res_odbc.conf, cdr_adaptive_odbc.conf, cel_odbc.conf and odbc.ini."""
    return {
        "odbc_dsn": ODBC_DSN,
        "odbc_driver": ODBC_DRIVER,
        # The chroot has no MariaDB socket, and the driver takes "localhost" to mean the socket.
        "mariadb_host": HOST if settings.mariadb_host == "localhost" else settings.mariadb_host,
        "mariadb_port": str(settings.mariadb_port),
        "mariadb_database": settings.mariadb_database,
        "mariadb_user": settings.mariadb_user,
        "mariadb_password": password(settings),
    }


def user_hosts(host: str) -> tuple[str, ...]:
    """Where the lab user may log in from: loopback only when the server is local, else anywhere.

    Both names of loopback: with name resolution on, a TCP client from 127.0.0.1 is 'localhost'.
    """
    return ("localhost", "127.0.0.1") if _is_local(host) else ("%",)


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def setup_sql(settings: LabSettings, secret: str) -> str:
    """The SQL that creates (or repairs) the lab database and user; names nothing else on the server."""
    for name in (settings.mariadb_database, settings.mariadb_user):
        if not _IDENTIFIER.fullmatch(name):
            raise SystemExit(f"pbx-lab: {name!r} is not a plain MariaDB identifier ([a-z_][a-z0-9_]*)")
    if not re.fullmatch(r"[0-9a-f]+", secret):
        raise SystemExit(f"pbx-lab: {password_file(settings)} does not hold a generated password")
    database, user = settings.mariadb_database, settings.mariadb_user
    statements = [f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4"]
    for host in user_hosts(settings.mariadb_host):
        account = f"'{user}'@'{host}'"
        statements += [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{secret}'",
            f"ALTER USER {account} IDENTIFIED BY '{secret}'",
            f"GRANT ALL PRIVILEGES ON `{database}`.* TO {account}",
        ]
    return "".join(f"{statement};\n" for statement in statements)


def _client() -> str:
    for name in ("mariadb", "mysql"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("pbx-lab: no mariadb client is installed: run scripts/setup-host")


def _write_client_cnf(settings: LabSettings) -> None:
    """Rewritten on every use (the settings may have changed); `status` may read it while `up` writes."""
    text = (
        "# Written by scripts/pbx-lab: the lab's MariaDB user (mariadb --defaults-file=THIS).\n"
        f"[client]\nhost = {settings.mariadb_host}\nport = {settings.mariadb_port}\nprotocol = tcp\n"
        f"user = {settings.mariadb_user}\npassword = {password(settings)}\n"
        f"database = {settings.mariadb_database}\nconnect-timeout = 5\n"
    )
    _write_private(client_cnf(settings), text, replace=True)


def lab_sql(settings: LabSettings, sql: str) -> subprocess.CompletedProcess[str]:
    """SQL as the lab user over TCP with its password, exactly how Asterisk's ODBC driver connects."""
    _write_client_cnf(settings)
    return subprocess.run(
        [_client(), f"--defaults-file={client_cnf(settings)}", "--batch", "--skip-column-names"],
        input=sql, capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip


def _admin_candidates(settings: LabSettings) -> list[list[str]]:
    """How root may reach the server: the local socket (Debian's unix_socket root), then TCP as root
    with the host's own option files (no password here; ~/.my.cnf may hold one)."""
    tcp = ["--protocol=tcp", "-h", settings.mariadb_host, "-P", str(settings.mariadb_port)]
    candidates = [[_client(), *tcp, "-u", "root"]]
    if _is_local(settings.mariadb_host):
        candidates.insert(0, [_client(), "--protocol=socket", "-u", "root"])
    return candidates


def _admin_argv(settings: LabSettings) -> list[str]:
    """The first root login that reaches the server on mariadb_port (a socket may be another's)."""
    for argv in _admin_candidates(settings):
        result = subprocess.run(
            [*argv, "--batch", "--skip-column-names", "-e", "SELECT @@port"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        if result.returncode == 0 and result.stdout.strip() == str(settings.mariadb_port):
            return argv
    raise SystemExit(
        f"pbx-lab: cannot log in to MariaDB on {settings.mariadb_host}:{settings.mariadb_port} as root "
        "(tried the local socket and TCP without a password): the lab needs root once to create its "
        f"database {settings.mariadb_database!r} and user {settings.mariadb_user!r}"
    )


def _reachable(settings: LabSettings) -> bool:
    try:
        with socket.create_connection((settings.mariadb_host, settings.mariadb_port), timeout=1):
            return True
    except OSError:
        return False


def _start_server(settings: LabSettings) -> None:
    """Start this host's installed MariaDB (its init script), or explain what is missing."""
    where = f"{settings.mariadb_host}:{settings.mariadb_port}"
    if not _is_local(settings.mariadb_host):
        raise SystemExit(f"pbx-lab: no MariaDB answers on {where} (ACB_LAB_MARIADB_HOST/PORT)")
    if not Path("/etc/init.d/mariadb").exists() or shutil.which("service") is None:
        raise SystemExit(
            f"pbx-lab: no MariaDB answers on {where} and none is installed: run scripts/setup-host "
            "(it installs Debian's mariadb-server)"
        )
    subprocess.run(["service", "mariadb", "start"], capture_output=True, check=False, timeout=120)
    if not procs.wait_until(lambda: _reachable(settings), 10):
        raise SystemExit(
            f"pbx-lab: MariaDB runs (service mariadb start), yet nothing answers on {where}: is "
            "ACB_LAB_MARIADB_PORT its port?"
        )


def up(settings: LabSettings) -> None:
    """Make sure the server runs, the lab user and database exist and hold the cdr and cel tables."""
    if lab_sql(settings, "SELECT 1 FROM cdr, cel LIMIT 1").returncode != 0:
        _create_database_and_user(settings)
    # Every time, as for PostgreSQL: the schema only adds what is missing (a column a newer schema
    # has); cdr_adaptive_odbc reads the columns when it loads, so a new one needs an Asterisk restart.
    result = lab_sql(settings, SCHEMA.read_text())
    if result.returncode != 0:
        raise SystemExit(f"pbx-lab: creating the MariaDB cdr/cel tables failed: {result.stderr.strip()}")


def _create_database_and_user(settings: LabSettings) -> None:
    if not _reachable(settings):
        _start_server(settings)
    created = subprocess.run(
        _admin_argv(settings), input=setup_sql(settings, password(settings)), capture_output=True,
        text=True, check=False, timeout=60,
    )  # fmt: skip
    if created.returncode != 0:
        raise SystemExit(f"pbx-lab: creating the lab's MariaDB database and user failed: {created.stderr}")


def down(_: LabSettings) -> str:
    """Nothing to stop: the server is the host's, and the lab database keeps its CDRs for inspection."""
    return "left running (the host's server; the lab database keeps its rows)"


def status(settings: LabSettings) -> str:
    counts = "SELECT CONCAT((SELECT count(*) FROM cdr), ' cdr, ', (SELECT count(*) FROM cel), ' cel rows')"
    result = lab_sql(settings, counts)
    if result.returncode != 0:
        return "down"
    where = f"{settings.mariadb_database} on {settings.mariadb_host}:{settings.mariadb_port}"
    return f"up ({where}: {result.stdout.strip()})"
