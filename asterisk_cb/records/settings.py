"""``[records]``: where the CEL writer writes (a DSN; empty: nowhere), how the cel table is named, and
which cdr table ``asterisk-cb calls`` reads.

Each parser takes an option's text and returns its value or raises ``ValueError`` with the reason;
``deployment`` adds the file, line and option. A DSN's password is never part of a reason, a value
shown by ``check-config`` or a log line: ``Dsn.shown`` is the URL through ``secrecy.redact``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import SplitResult, unquote, urlsplit

from asterisk_cb.secrecy import redact


class Dialect(StrEnum):
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"  # MariaDB and MySQL


_SCHEMES = {"postgresql": Dialect.POSTGRESQL, "postgres": Dialect.POSTGRESQL, "mysql": Dialect.MYSQL}
_DEFAULT_PORTS = {Dialect.POSTGRESQL: 5432, Dialect.MYSQL: 3306}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
# The standard cel table's columns the writer fills (scripts/lab/sql/cdr_cel.sql), in insert order.
STANDARD_COLUMNS = (
    "eventtype", "eventtime", "cid_name", "cid_num", "cid_ani", "cid_rdnis", "cid_dnid", "exten",
    "context", "channame", "appname", "appdata", "amaflags", "accountcode", "peeraccount", "uniqueid",
    "linkedid", "userfield", "peer", "extra",
)  # fmt: skip
_REQUIRED_COLUMNS = frozenset({"eventtype", "eventtime", "linkedid", "extra"})


@dataclass(frozen=True)
class Dsn:
    """A database URL: ``postgresql://user:password@host:5432/db`` or ``mysql://...``."""

    dialect: Dialect
    url: str = field(repr=False)  # holds the password: pass it to the driver, never print it
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str

    @property
    def shown(self) -> str:
        """The URL as logs, errors and ``check-config`` show it: the password replaced by ``(set)``."""
        return redact(self.url)

    def hide(self, text: str) -> str:
        """``text`` (a driver's message) with this DSN's password masked, should it quote it, as
        written in the URL (percent-encoded) or decoded."""
        raw = urlsplit(self.url).password or ""
        for secret in sorted({self.password, raw} - {""}, key=len, reverse=True):
            text = text.replace(secret, "(set)")
        return text


def parse_dsn(text: str) -> Dsn | None:
    """The DSN, or None for an empty one (the writer is off)."""
    if not text:
        return None
    shapes = "postgresql://user:password@host:5432/database or mysql://user:password@host:3306/database"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"{redact(text)!r} is not a database URL ({shapes})") from error
    dialect = _SCHEMES.get(parts.scheme)
    database = unquote(parts.path.lstrip("/"))
    if dialect is None or not parts.hostname or not database or parts.fragment:
        raise ValueError(f"{redact(text)!r} is not a database URL ({shapes})")
    return _dsn(text, parts, dialect, port or _DEFAULT_PORTS[dialect], database)


def _dsn(text: str, parts: SplitResult, dialect: Dialect, port: int, database: str) -> Dsn:
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    return Dsn(dialect, text, parts.hostname or "", port, user, password, database)


def parse_table(text: str) -> str:
    """A table name, optionally schema-qualified (``asteriskcdrdb.cel``): letters, digits, ``_``."""
    if not all(_IDENTIFIER.match(part) for part in text.split(".")) or text.count(".") > 1:
        raise ValueError(f"{text!r} is not a table name (letters, digits and _, optionally schema.table)")
    return text


def parse_columns(text: str) -> Mapping[str, str | None]:
    """``cid_num=callerid, peeraccount=``: a standard column under another name, or absent (empty).
    Returns every standard column -> its name in the table (None: not written)."""
    names: dict[str, str | None] = {column: column for column in STANDARD_COLUMNS}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        standard, equals, actual = (piece.strip() for piece in pair.partition("="))
        if not equals or standard not in names:
            raise ValueError(f"{pair!r}: write <standard column>=<its name> ({', '.join(STANDARD_COLUMNS)})")
        if not actual and standard in _REQUIRED_COLUMNS:
            raise ValueError(f"{standard} cannot be left out: the rows need it")
        if actual and not _IDENTIFIER.match(actual):
            raise ValueError(f"{actual!r} is not a column name")
        names[standard] = actual or None
    return MappingProxyType(names)


@dataclass(frozen=True)
class RecordsSite:
    """``[records]``: ``dsn`` None means no CEL writer. ``usegmtime`` as cel_pgsql/cel_odbc's option
    of the same name (eventtime in UTC, else local time); ``batch`` events per transaction; a
    connection or write taking longer than its timeout counts as the database being down."""

    dsn: Dsn | None = None
    cel_table: str = "cel"
    cdr_table: str = "cdr"  # what `asterisk-cb calls` reads (Asterisk's own; the writer never writes it)
    marker_table: str = "acb_cel_written"
    columns: Mapping[str, str | None] = field(default_factory=lambda: parse_columns(""))
    usegmtime: bool = False
    batch: int = 200
    connect_timeout: timedelta = timedelta(seconds=5)
    write_timeout: timedelta = timedelta(seconds=10)

    def explain(self) -> list[tuple[str, str, str]]:
        """(section, option, value) rows for ``check-config``: the DSN without its password."""
        columns = self.columns.items()
        renamed = [f"{standard}={actual or ''}" for standard, actual in columns if actual != standard]
        return [
            ("records", "dsn", self.dsn.shown if self.dsn else "(off: no CEL rows written)"),
            ("records", "cel_table", self.cel_table),
            ("records", "cdr_table", self.cdr_table),
            ("records", "marker_table", self.marker_table),
            ("records", "columns", ", ".join(renamed) or "(standard names)"),
            ("records", "usegmtime", "yes" if self.usegmtime else "no"),
            ("records", "batch", str(self.batch)),
            ("records", "connect_timeout", f"{self.connect_timeout.total_seconds():g}s"),
            ("records", "write_timeout", f"{self.write_timeout.total_seconds():g}s"),
        ]
