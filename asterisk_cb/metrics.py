"""Prometheus metrics of one daemon, served at ``http://<[metrics] listen>/metrics``.

Event counters come from the callbacks' event stream through ONE consumer group shared by every
daemon: each event is counted by exactly one daemon, so summing ``asterisk_cb_events_total`` over
the daemons gives the deployment's totals (a missed agent ring is ``kind="agent_missed"``). Gauges are
read when Prometheus scrapes: callbacks per state (from the store, refreshed by the consumer loop),
the scheduler's counters and whether ARI and AMI are connected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from asterisk_cb.core.model import State
from asterisk_cb.scheduler import SchedulerStats
from asterisk_cb.store import Store, StreamEvent
from asterisk_cb.telephony.health import HealthSnapshot

log = logging.getLogger(__name__)

GROUP = "metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_READ_BLOCK_MS = 5000
_RETRY_S = 2.0
_STALE_MS = 60_000  # an entry read this long ago and not acknowledged: its reader is gone


class DaemonCollector(Collector):
    """Gauges and counters read from the daemon's live objects at scrape time."""

    def __init__(
        self,
        stats: SchedulerStats,
        links: Callable[[], Sequence[HealthSnapshot]],
        states: dict[State, int],
    ) -> None:
        self._stats = stats
        self._links = links
        self._states = states

    def collect(self) -> Iterator[Metric]:
        by_state = GaugeMetricFamily(
            "asterisk_cb_callbacks", "Callbacks in the store by state", labels=["state"]
        )
        for state in State:
            by_state.add_metric([state.value], self._states.get(state, 0))
        yield by_state
        for name, value in asdict(self._stats).items():
            if name != "last_claim_server_ms":
                yield CounterMetricFamily(f"asterisk_cb_scheduler_{name}", f"Scheduler: {name}", value=value)
        links = GaugeMetricFamily("asterisk_cb_link_up", "1 when the link to Asterisk is up", labels=["link"])
        reconnects = CounterMetricFamily(
            "asterisk_cb_link_reconnects", "Reconnects per link", labels=["link"]
        )
        for snapshot in self._links():
            links.add_metric([snapshot.name], 1.0 if snapshot.connected else 0.0)
            reconnects.add_metric([snapshot.name], snapshot.reconnects)
        yield links
        yield reconnects


class Metrics:
    """The registry of one daemon, and the loop that counts the event stream into it."""

    def __init__(self, stats: SchedulerStats, links: Callable[[], Sequence[HealthSnapshot]]) -> None:
        self.registry = CollectorRegistry()
        self.states: dict[State, int] = {}
        self.events = Counter(
            "asterisk_cb_events",
            "Callback lifecycle events counted by this daemon (sum over daemons for the total)",
            ["kind"],
            registry=self.registry,
        )
        self.registry.register(DaemonCollector(stats, links, self.states))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def count_events(self, store: Store, consumer: str) -> None:
        """Count every new event once across all daemons; also refresh the per-state gauge. Entries a
        dead daemon read but never acknowledged are taken over and counted here."""
        await store.ensure_group(GROUP, "$")
        while True:
            try:
                self.states.update(await store.count_by_state())
                stale = await store.take_over_stale(GROUP, consumer, _STALE_MS)
                fresh = await store.read_group(GROUP, consumer, count=500, block_ms=_READ_BLOCK_MS)
                self.count(stale + fresh)
                await store.ack(GROUP, [entry.entry_id for entry in stale + fresh])
            except RedisError as error:
                log.warning("metrics: event stream unreadable", extra={"error": str(error)})
                await asyncio.sleep(_RETRY_S)

    def count(self, entries: Sequence[StreamEvent]) -> None:
        for entry in entries:
            self.events.labels(entry.event.kind.value).inc()


async def serve(metrics: Metrics, host: str, port: int) -> web.AppRunner:
    """An HTTP server answering GET /metrics; the caller cleans the runner up."""

    async def scrape(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
