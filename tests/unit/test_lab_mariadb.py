"""The lab's MariaDB part without a server: the SQL that creates its database and user, the ODBC
configuration Asterisk reads, its generated password, and the root cache key (scripts/lab)."""

from __future__ import annotations

import configparser
import re
import stat
from pathlib import Path

import pytest
from lab import mariadb, root
from lab.asterisk import ODBC_TEMPLATES, TEMPLATES
from lab.settings import LabSettings, load
from lab.templates import render

SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabSettings:
    monkeypatch.setenv("ACB_LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setenv("ACB_LAB_MARIADB_DATABASE", "acb_lab_unit")
    monkeypatch.setenv("ACB_LAB_MARIADB_USER", "acb_lab_unit_user")
    monkeypatch.setenv("ACB_LAB_MARIADB_PORT", "3307")
    return load()


def test_setup_sql_names_only_the_lab_database_and_user_on_loopback(settings: LabSettings) -> None:
    sql = mariadb.setup_sql(settings, SECRET)
    assert set(re.findall(r"`(\w+)`", sql)) == {"acb_lab_unit"}
    assert set(re.findall(r"'(\w+)'@'([^']+)'", sql)) == {
        ("acb_lab_unit_user", "localhost"),
        ("acb_lab_unit_user", "127.0.0.1"),
    }
    assert "GRANT ALL PRIVILEGES ON `acb_lab_unit`.* TO 'acb_lab_unit_user'@'127.0.0.1';" in sql
    assert "ALTER USER 'acb_lab_unit_user'@'localhost' IDENTIFIED BY '" + SECRET + "';" in sql
    assert "DROP" not in sql.upper()


def test_a_remote_server_gets_a_user_for_any_host(
    settings: LabSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACB_LAB_MARIADB_HOST", "192.0.2.10")
    sql = mariadb.setup_sql(load(), SECRET)
    assert set(re.findall(r"'\w+'@'([^']+)'", sql)) == {"%"}


@pytest.mark.parametrize("variable", ["ACB_LAB_MARIADB_DATABASE", "ACB_LAB_MARIADB_USER"])
def test_a_name_that_is_no_plain_identifier_is_refused(
    settings: LabSettings, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "lab`; DROP DATABASE mysql; --")
    with pytest.raises(SystemExit, match="not a plain MariaDB identifier"):
        mariadb.setup_sql(load(), SECRET)


def test_a_tampered_password_file_is_refused(settings: LabSettings) -> None:
    with pytest.raises(SystemExit, match="does not hold a generated password"):
        mariadb.setup_sql(settings, "x' OR '1")


def test_password_generated_once_private_and_in_the_dsn(settings: LabSettings) -> None:
    first = mariadb.password(settings)
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert mariadb.password(settings) == first
    assert stat.S_IMODE(mariadb.password_file(settings).stat().st_mode) == 0o600
    assert mariadb.dsn(settings) == f"mysql://acb_lab_unit_user:{first}@127.0.0.1:3307/acb_lab_unit"


def _rendered(settings: LabSettings, template: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(delimiters=("=>", "="), comment_prefixes=(";",), strict=False)
    parser.read_string(render(template, mariadb.odbc_values(settings)))
    return parser


def test_odbc_configuration_connects_asterisk_to_the_lab_database(settings: LabSettings) -> None:
    res_odbc = _rendered(settings, TEMPLATES / "res_odbc.conf")[mariadb.ODBC_DSN]
    assert (res_odbc["dsn"], res_odbc["username"]) == (mariadb.ODBC_DSN, "acb_lab_unit_user")
    assert res_odbc["password"] == mariadb.password(settings)
    source = _rendered(settings, ODBC_TEMPLATES / "odbc.ini")[mariadb.ODBC_DSN]
    assert (source["Driver"], source["SERVER"], source["PORT"], source["DATABASE"]) == (
        mariadb.ODBC_DRIVER,
        "127.0.0.1",
        "3307",
        "acb_lab_unit",
    )
    cdr = _rendered(settings, TEMPLATES / "cdr_adaptive_odbc.conf")["lab-mariadb"]
    cel = _rendered(settings, TEMPLATES / "cel_odbc.conf")["lab-mariadb"]
    assert (cdr["connection"], cdr["table"], cdr["alias start"], cdr["usegmtime"]) == (
        mariadb.ODBC_DSN,
        "cdr",
        "calldate",
        "yes",
    )
    assert (cel["connection"], cel["table"], cel["usegmtime"]) == (mariadb.ODBC_DSN, "cel", "yes")


def test_localhost_becomes_an_address_for_the_driver(
    settings: LabSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chroot has no MariaDB socket, and Connector/ODBC reads "localhost" as the socket."""
    monkeypatch.setenv("ACB_LAB_MARIADB_HOST", "localhost")
    source = _rendered(load(), ODBC_TEMPLATES / "odbc.ini")[mariadb.ODBC_DSN]
    assert source["SERVER"] == "127.0.0.1"


def test_the_root_cache_key_follows_the_package_list(settings: LabSettings) -> None:
    assert root.cache_key(root.PACKAGES) in root.tarball(settings).name
    assert {"unixodbc", "odbc-mariadb"} <= set(root.PACKAGES)
    assert root.cache_key(root.PACKAGES) != root.cache_key(root.PACKAGES[:-1])
