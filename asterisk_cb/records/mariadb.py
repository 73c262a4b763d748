"""The CEL writer's MariaDB/MySQL adapter (aiomysql): one connection, one transaction per batch.

Per row: insert the marker, and the cel row only when the marker was new (one affected row). Both
tables must be InnoDB for the pair to be atomic (``doctor`` warns otherwise). ``eventtime`` goes in
as a naive datetime, as cel_odbc writes it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import aiomysql
import pymysql

from asterisk_cb.records import sql
from asterisk_cb.records.database import Guarded, Marked, Tables
from asterisk_cb.records.settings import RecordsSite

_TABLES = """SELECT table_name, engine FROM information_schema.tables
WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name IN (%s, %s)"""


class MariaDbCel(Guarded[aiomysql.Connection]):
    DOWN = (OSError, TimeoutError, pymysql.err.MySQLError)

    def __init__(self, site: RecordsSite) -> None:
        super().__init__(site)
        self._marker_insert = sql.mysql_marker_insert(site)
        self._cel_insert = sql.mysql_cel_insert(site)

    async def write(self, source: str, rows: Sequence[Marked]) -> int:
        async def insert(connection: aiomysql.Connection) -> int:
            await connection.begin()
            try:
                new = await self._insert(connection, source, rows)
            except Exception:  # a refused row: none of the batch stays (a timeout drops the
                await connection.rollback()  # connection instead: the server rolls back)
                raise
            await connection.commit()
            return new

        return await self._run(insert)

    async def _insert(self, connection: aiomysql.Connection, source: str, rows: Sequence[Marked]) -> int:
        new = 0
        async with connection.cursor() as cursor:
            for entry_id, row in rows:
                if await cursor.execute(self._marker_insert, (source, entry_id)) == 1:
                    await cursor.execute(self._cel_insert, sql.row_values(row, self._site.columns))
                    new += 1
        return new

    async def tables(self) -> Tables:
        async def look(connection: aiomysql.Connection) -> Tables:
            cel_schema, _, cel = self._site.cel_table.rpartition(".")
            marker = self._site.marker_table.rpartition(".")[2]
            async with connection.cursor() as cursor:
                await cursor.execute(_TABLES, (cel_schema or None, cel, marker))
                engines = {name: engine for name, engine in await cursor.fetchall()}
            transactional = (engines.get(cel) or "InnoDB").lower() not in ("myisam", "aria", "memory")
            return Tables(cel=cel in engines, marker=marker in engines, transactional=transactional)

        return await self._run(look)

    async def execute(self, statements: Sequence[str]) -> None:
        async def run(connection: aiomysql.Connection) -> None:
            async with connection.cursor() as cursor:
                for statement in statements:
                    with warnings.catch_warnings():  # "already exists" of IF NOT EXISTS: the point
                        warnings.simplefilter("ignore", pymysql.err.Warning)
                        await cursor.execute(statement)
            await connection.commit()

        await self._run(run)

    async def fetch(self, query: str, params: Sequence[object]) -> list[dict[str, object]]:
        async def read(connection: aiomysql.Connection) -> list[dict[str, object]]:
            async with connection.cursor(aiomysql.DictCursor) as cursor:
                await cursor.execute(query, tuple(params))
                rows = list(await cursor.fetchall())
            await connection.rollback()  # ends the read's transaction (autocommit is off)
            return rows

        return await self._run(read)

    async def _open(self) -> aiomysql.Connection:
        dsn = self._dsn
        return await aiomysql.connect(
            host=dsn.host,
            port=dsn.port,
            user=dsn.user,
            password=dsn.password,
            db=dsn.database,
            charset="utf8mb4",
            connect_timeout=self._site.connect_timeout.total_seconds(),
            autocommit=False,
        )

    async def _drop(self, connection: aiomysql.Connection) -> None:
        connection.close()

    def _blames_row(self, error: Exception) -> bool:
        return isinstance(error, pymysql.err.DataError | pymysql.err.IntegrityError)
