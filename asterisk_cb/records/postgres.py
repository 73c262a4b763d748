"""The CEL writer's PostgreSQL adapter (asyncpg): one connection, one transaction per batch.

``eventtime`` goes in as a ``timestamp`` without zone, exactly as cel_pgsql sends its text: a
``timestamptz`` column reads it in the session's TimeZone, like Asterisk's own rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from asterisk_cb.records import sql
from asterisk_cb.records.database import Guarded, Marked, Tables
from asterisk_cb.records.settings import Dialect, RecordsSite

# SQLSTATE classes that blame the row (data exception, integrity violation): park it, do not wait.
_ROW_CLASSES = ("22", "23")


class PostgresCel(Guarded[asyncpg.Connection]):
    DOWN = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

    def __init__(self, site: RecordsSite) -> None:
        super().__init__(site)
        self._insert = sql.postgres_insert(site)

    async def write(self, source: str, rows: Sequence[Marked]) -> int:
        async def insert(connection: asyncpg.Connection) -> int:
            statement = await connection.prepare(self._insert)
            new = 0
            async with connection.transaction():
                for entry_id, row in rows:
                    await statement.fetch(source, entry_id, *sql.row_values(row, self._site.columns))
                    new += statement.get_statusmsg() == "INSERT 0 1"
            return new

        return await self._run(insert)

    async def tables(self) -> Tables:
        async def look(connection: asyncpg.Connection) -> Tables:
            names = (self._site.cel_table, self._site.marker_table)
            query = "SELECT to_regclass($1) IS NOT NULL"
            cel, marker = [await connection.fetchval(query, sql.quote(Dialect.POSTGRESQL, n)) for n in names]
            return Tables(cel=cel, marker=marker)

        return await self._run(look)

    async def execute(self, statements: Sequence[str]) -> None:
        async def run(connection: asyncpg.Connection) -> None:
            for statement in statements:
                await connection.execute(statement)

        await self._run(run)

    async def fetch(self, query: str, params: Sequence[object]) -> list[dict[str, object]]:
        async def read(connection: asyncpg.Connection) -> list[dict[str, object]]:
            return [dict(row) for row in await connection.fetch(query, *params)]

        return await self._run(read)

    async def _open(self) -> asyncpg.Connection:
        return await asyncpg.connect(self._dsn.url, timeout=self._site.connect_timeout.total_seconds())

    async def _drop(self, connection: asyncpg.Connection) -> None:
        connection.terminate()

    def _blames_row(self, error: Exception) -> bool:
        return isinstance(error, asyncpg.PostgresError) and (error.sqlstate or "")[:2] in _ROW_CLASSES
