"""What the CEL writer needs of a database, and the connection handling both adapters share.

Two kinds of failure, told apart by each adapter: ``DatabaseDown`` (no connection, a timeout, the
server shutting down, a missing table or right: nothing the rows can help; the writer waits and
retries, the events stay in the stream) and any other exception (the server refused this row's data:
the consumer parks that entry alone). Messages never carry the DSN's password.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from asterisk_cb.records.cel_rows import CelRow
from asterisk_cb.records.settings import Dsn, RecordsSite

T = TypeVar("T")
C = TypeVar("C")


class DatabaseDown(Exception):
    """The database cannot take rows now (the message says why, without the password)."""


@dataclass(frozen=True)
class Tables:
    """Whether the cel table and the marker table exist, and whether the cel table is transactional
    (MariaDB's MyISAM is not: a crash between the two inserts could then leave a row unmarked)."""

    cel: bool
    marker: bool
    transactional: bool = True


Marked = tuple[str, CelRow]  # (stream entry id, its row)


class CelDatabase(Protocol):
    async def write(self, source: str, rows: Sequence[Marked]) -> int:
        """Insert the rows not marked yet, with their markers, in one transaction; how many were new."""

    async def tables(self) -> Tables: ...

    async def execute(self, statements: Sequence[str]) -> None:
        """Run DDL (``db migrate``)."""

    async def fetch(self, query: str, params: Sequence[object]) -> list[dict[str, object]]:
        """Rows of a read-only query (``asterisk-cb calls``), each as column name -> value."""

    async def close(self) -> None: ...


class Guarded(Generic[C]):
    """One connection, made on first use; each piece of work runs within the write timeout. A failure
    of a ``DOWN`` kind that does not blame the row drops the connection (the next call connects
    again) and becomes ``DatabaseDown``; anything else is raised as it is."""

    DOWN: tuple[type[Exception], ...] = (OSError, TimeoutError)

    def __init__(self, site: RecordsSite) -> None:
        assert site.dsn is not None
        self._site = site
        self._dsn: Dsn = site.dsn
        self._connection: C | None = None

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await self._drop(connection)

    async def _run(self, work: Callable[[C], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self._site.write_timeout.total_seconds()):
                if self._connection is None:
                    self._connection = await self._open()
                return await work(self._connection)
        except self.DOWN as error:
            if self._blames_row(error):
                raise
            await self.close()
            reason = str(error) or type(error).__name__
            raise DatabaseDown(self._dsn.hide(f"{self._dsn.shown}: {reason}")) from None

    async def _open(self) -> C:
        raise NotImplementedError

    async def _drop(self, connection: C) -> None:
        raise NotImplementedError

    def _blames_row(self, error: Exception) -> bool:
        return False
