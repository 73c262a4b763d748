"""The CEL writer as a daemon component (auxiliary: its failure never stops the callbacks), and its
metrics: rows written, database up, and the ``cel`` group's backlog (read from Redis at each scrape).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from asterisk_cb.consumer import ConsumerOptions, EventConsumer, EventSource
from asterisk_cb.records.connect import open_database
from asterisk_cb.records.settings import RecordsSite
from asterisk_cb.records.writer import GROUP, CallbackReader, CelWriter, WriterStats
from asterisk_cb.store import GroupInfo

log = logging.getLogger(__name__)


class GroupReader(EventSource, CallbackReader, Protocol):
    """What the writer reads of the store: its group's entries, callback records, group infos."""

    async def event_groups(self) -> Sequence[GroupInfo]: ...


@dataclass(frozen=True)
class CelWriterPart:
    """Runs the ``cel`` group's consumer; closes the database connection when stopped."""

    consumer: EventConsumer
    writer: CelWriter
    name: str = "cel"
    essential: bool = False

    async def run(self) -> None:
        await self.writer.probe()
        try:
            await self.consumer.run()
        finally:
            await self.writer.close()


def cel_writer(site: RecordsSite, store: GroupReader, source: str, consumer: str) -> CelWriterPart:
    """This daemon's CEL writer: one consumer of the ``cel`` group every daemon shares."""
    writer = CelWriter(open_database(site), store, source, usegmtime=site.usegmtime)
    options = ConsumerOptions(batch=site.batch)
    return CelWriterPart(EventConsumer(store, GROUP, consumer, writer.handle, options), writer)


def backlog(groups: Sequence[GroupInfo]) -> int | None:
    """Entries the ``cel`` group has not written yet: handed out but unacknowledged, plus not yet read
    (None: no such group yet, or Redis cannot tell its lag)."""
    group = next((group for group in groups if group.name == GROUP), None)
    if group is None or group.lag is None:
        return None
    return group.pending + group.lag


class WriterCollector(Collector):
    """The writer's metrics; ``refresh`` (before each scrape) reads the group's backlog."""

    def __init__(self, stats: WriterStats, store: GroupReader) -> None:
        self._stats = stats
        self._store = store

    async def refresh(self) -> None:
        try:
            self._stats.backlog = backlog(await self._store.event_groups())
        except RedisError as error:
            log.warning("metrics: cel backlog unreadable", extra={"error": str(error)})

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        yield CounterMetricFamily(
            "asterisk_cb_cel_rows_written",
            "CEL rows this daemon wrote (sum over daemons)",
            value=stats.rows_written,
        )
        up = GaugeMetricFamily(
            "asterisk_cb_cel_database_up", "1 when the CEL writer's last use of its database worked"
        )
        up.add_metric([], 1.0 if stats.database_up else 0.0)
        yield up
        if stats.backlog is not None:
            yield GaugeMetricFamily(
                "asterisk_cb_cel_backlog", "Events the cel group has not written yet", value=stats.backlog
            )
