"""Reading Asterisk's cdr table for ``asterisk-cb calls`` over the ``[records]`` DSN, through the records
adapters: the table's columns first (its schema), then the callback calls. Read only: SELECTs, nothing
written or created. A database that cannot be reached raises ``DatabaseDown``, a table that is missing
or no cdr table ``CdrUnreadable``; neither message carries the DSN's password.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asterisk_cb.core.cdr_marks import CdrMark
from asterisk_cb.records import cdr_sql
from asterisk_cb.records.cdr_sql import CallsFilter
from asterisk_cb.records.connect import open_database
from asterisk_cb.records.database import CelDatabase
from asterisk_cb.records.settings import RecordsSite


class CdrUnreadable(Exception):
    """No cdr table to read (missing, not readable by the DSN's user, not a cdr table), or nothing in
    it tells a callback call."""


async def read_calls(site: RecordsSite, mark: CdrMark, wanted: CallsFilter) -> list[dict[str, object]]:
    """The rows of ``cdr_sql.calls_query`` (``site.dsn`` must be set)."""
    assert site.dsn is not None
    async with opened(site) as (database, shape):
        try:
            query = cdr_sql.calls_query(
                site.dsn.dialect, site.cdr_table, shape, mark, wanted,
                usegmtime=site.usegmtime, cel_table=site.cel_table,
            )  # fmt: skip
        except ValueError as error:
            raise CdrUnreadable(str(error)) from None
        return await database.fetch(query.text, query.params)


@asynccontextmanager
async def opened(site: RecordsSite) -> AsyncIterator[tuple[CelDatabase, cdr_sql.CdrShape]]:
    """The database of ``site.dsn`` (which must be set) and its cdr table's shape, for one reading:
    the connection is closed after it (a reading is rare and short; nothing is held between)."""
    database = open_database(site)
    try:
        yield database, await _shape(database, site)
    finally:
        await database.close()


async def _shape(database: CelDatabase, site: RecordsSite) -> cdr_sql.CdrShape:
    assert site.dsn is not None
    where = f"{site.cdr_table} in {site.dsn.shown}"
    query = cdr_sql.columns_query(site.dsn.dialect, site.cdr_table)
    found = await database.fetch(query.text, query.params)
    if not found:
        raise CdrUnreadable(f"no table {where} (or its user may not read it: GRANT SELECT)")
    try:
        return cdr_sql.shape_from_columns({str(row["column_name"]): str(row["data_type"]) for row in found})
    except ValueError as error:
        raise CdrUnreadable(f"{where}: {error}") from None
