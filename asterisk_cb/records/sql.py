"""The SQL the CEL writer runs, per dialect: the marker table (``db migrate``) and the idempotent insert.

Exactly once: a row goes into the cel table only together with a marker row keyed by (source, stream
entry id), in the same transaction, and only when that marker was new. ``source`` is the Redis key
namespace (two deployments may share a database; entry ids are only unique within one stream).
PostgreSQL does both in one statement (``INSERT ... ON CONFLICT DO NOTHING RETURNING`` feeding the cel
insert); MariaDB/MySQL inserts the marker (``ON DUPLICATE KEY UPDATE`` a no-op) and the cel row only when it
counted.
Names are checked (``settings.parse_table``) and quoted here; values are always parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from asterisk_cb.records.cel_rows import CelRow
from asterisk_cb.records.settings import STANDARD_COLUMNS, Dialect, RecordsSite

_CASTS = {"eventtime": "timestamp", "amaflags": "integer"}  # PostgreSQL: the rest goes in as text


def quote(dialect: Dialect, name: str) -> str:
    """``"schema"."table"`` (PostgreSQL) or `` `schema`.`table` `` (MariaDB/MySQL)."""
    mark = '"' if dialect is Dialect.POSTGRESQL else "`"
    return ".".join(f"{mark}{part}{mark}" for part in name.split("."))


def marker_ddl(dialect: Dialect, marker_table: str) -> str:
    """What ``asterisk-cb db migrate`` creates: idempotent (IF NOT EXISTS), nothing else touched."""
    table = quote(dialect, marker_table)
    if dialect is Dialect.POSTGRESQL:
        return (
            f"CREATE TABLE IF NOT EXISTS {table} (\n"
            "    source     varchar(64) NOT NULL,\n"
            "    entry_id   varchar(40) NOT NULL,\n"
            "    written_at timestamptz NOT NULL DEFAULT now(),\n"
            "    PRIMARY KEY (source, entry_id)\n"
            ");"
        )
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (\n"
        "    source     varchar(64) NOT NULL,\n"
        "    entry_id   varchar(40) NOT NULL,\n"
        "    written_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
        "    PRIMARY KEY (source, entry_id)\n"
        ") ENGINE=InnoDB;"
    )


def written_columns(columns: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """(standard, actual) for every column the table has, in the standard order."""
    return [(standard, actual) for standard in STANDARD_COLUMNS if (actual := columns.get(standard))]


def row_values(row: CelRow, columns: Mapping[str, str | None]) -> list[object]:
    """The row's value of each written column, in ``written_columns`` order; the columns the event has
    nothing for are empty (0 for amaflags), as the tables without defaults (FreePBX's) need."""
    values: dict[str, object] = {"amaflags": 0, **dataclasses.asdict(row)}  # a CelRow field is a column
    return [values.get(standard, "") for standard, _ in written_columns(columns)]


def postgres_insert(site: RecordsSite) -> str:
    """One statement per row: $1 source, $2 entry id, then the row's values."""
    written = written_columns(site.columns)
    names = ", ".join(quote(Dialect.POSTGRESQL, actual) for _, actual in written)
    values = ", ".join(f"${n}::{_CASTS.get(standard, 'text')}" for n, (standard, _) in enumerate(written, 3))
    marker = quote(Dialect.POSTGRESQL, site.marker_table)
    return (
        f"WITH marked AS (INSERT INTO {marker} (source, entry_id) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING RETURNING entry_id) "
        f"INSERT INTO {quote(Dialect.POSTGRESQL, site.cel_table)} ({names}) SELECT {values} FROM marked"
    )


def mysql_marker_insert(site: RecordsSite) -> str:
    """One affected row when the marker is new, none when it was there (the no-op update; the client
    does not ask for found rows). Not ``INSERT IGNORE``: it also ignores other errors, and reports
    each skipped duplicate as a warning the driver fetches and raises as a Python warning."""
    table = quote(Dialect.MYSQL, site.marker_table)
    return (
        f"INSERT INTO {table} (source, entry_id) VALUES (%s, %s) ON DUPLICATE KEY UPDATE entry_id = entry_id"
    )


def mysql_cel_insert(site: RecordsSite) -> str:
    written = written_columns(site.columns)
    names = ", ".join(quote(Dialect.MYSQL, actual) for _, actual in written)
    places = ", ".join("%s" for _ in written)
    return f"INSERT INTO {quote(Dialect.MYSQL, site.cel_table)} ({names}) VALUES ({places})"


def migration(site: RecordsSite) -> Sequence[str]:
    """The statements ``db migrate`` runs (and prints with ``--dry-run``)."""
    assert site.dsn is not None
    return [marker_ddl(site.dsn.dialect, site.marker_table)]
