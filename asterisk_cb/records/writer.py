"""The CEL writer: a handler on the event stream's ``cel`` consumer group that appends one cel row per
lifecycle event, each exactly once (``sql``), in one transaction per batch.

A database that is down, slow (past ``[records] write_timeout``) or not migrated yet never blocks
anything: the handler raises ``HandlerUnavailable``, the consumer waits and retries, the events stay
in the stream (trimming never passes a group's unacknowledged entries) and the writer catches up when
the database is back. The callback records (origin linkedid, contact) are read from the store per
batch; Redis failing there is waited out the same way, never a parked event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.exceptions import RedisError

from asterisk_cb.consumer import HandlerUnavailable
from asterisk_cb.core.model import Callback
from asterisk_cb.records.cel_rows import cel_row
from asterisk_cb.records.database import CelDatabase, DatabaseDown
from asterisk_cb.store import StreamEvent

log = logging.getLogger(__name__)

GROUP = "cel"


class CallbackReader(Protocol):
    async def get_many(self, callback_ids: Iterable[str]) -> list[Callback]: ...


@dataclass
class WriterStats:
    """What the metrics show: rows written by this daemon, whether its last write reached the
    database (None before the first), the group's backlog when last read."""

    rows_written: int = 0
    database_up: bool | None = None
    backlog: int | None = None


class CelWriter:
    """``handle`` is the consumer's handler; ``source`` (the Redis namespace) keys the markers."""

    def __init__(
        self,
        database: CelDatabase,
        callbacks: CallbackReader,
        source: str,
        *,
        usegmtime: bool = False,
        stats: WriterStats | None = None,
    ) -> None:
        self._database = database
        self._callbacks = callbacks
        self._source = source
        self._usegmtime = usegmtime
        self.stats = stats or WriterStats()

    async def handle(self, entries: Sequence[StreamEvent]) -> None:
        callbacks = await self._callbacks_of(entries)
        rows = [
            (entry.entry_id, cel_row(entry.event, callbacks.get(entry.event.callback_id), self._usegmtime))
            for entry in entries
        ]
        try:
            written = await self._database.write(self._source, rows)
        except DatabaseDown as error:
            self._note_up(False)
            raise HandlerUnavailable(str(error)) from None
        self._note_up(True)
        self.stats.rows_written += written
        if written < len(rows):  # redelivered after a crash or a lost acknowledgement
            log.info("cel rows already written skipped", extra={"skipped": len(rows) - written})

    async def probe(self) -> None:
        """Look at the database once (at start): the metrics then say at once whether it is up, and
        the log says what is missing, before any event waits on it."""
        try:
            tables = await self._database.tables()
        except DatabaseDown as error:
            log.warning("cel database unreachable; events wait in the stream", extra={"error": str(error)})
            self._note_up(False)
            return
        self._note_up(tables.cel and tables.marker)
        if not (tables.cel and tables.marker):
            log.warning("cel or marker table missing (run `asterisk-cb db migrate`); events wait")

    async def close(self) -> None:
        await self._database.close()

    async def _callbacks_of(self, entries: Sequence[StreamEvent]) -> dict[str, Callback]:
        try:
            found = await self._callbacks.get_many({entry.event.callback_id for entry in entries})
        except RedisError as error:
            raise HandlerUnavailable(f"callback records unreadable: {error}") from None
        return {callback.id: callback for callback in found}

    def _note_up(self, up: bool) -> None:
        if self.stats.database_up is not up:
            log.log(logging.INFO if up else logging.WARNING, "cel database " + ("up" if up else "down"))
        self.stats.database_up = up
