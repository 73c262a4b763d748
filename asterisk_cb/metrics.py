"""Prometheus metrics of one daemon, served at ``http://<[metrics] listen>/metrics``.

Event counters come from the callbacks' event stream through ONE consumer group shared by every
daemon: each event is counted by exactly one daemon, so summing ``asterisk_cb_events_total`` over
the daemons gives the deployment's totals (a missed agent ring is ``kind="agent_missed"``); the counting
is a handler on ``asterisk_cb.consumer``. Gauges are read when Prometheus scrapes: callbacks per state
(from the store, at each scrape), the scheduler's counters, whether ARI and AMI are connected and
whether each daemon component runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from asterisk_cb.components import forever
from asterisk_cb.consumer import EventConsumer, EventSource
from asterisk_cb.core.model import EventKind, State
from asterisk_cb.scheduler import SchedulerStats
from asterisk_cb.store import StreamEvent
from asterisk_cb.telephony.health import HealthSnapshot

log = logging.getLogger(__name__)

GROUP = "metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DaemonCollector(Collector):
    """Gauges and counters read from the daemon's live objects at scrape time."""

    def __init__(
        self,
        stats: SchedulerStats,
        links: Callable[[], Sequence[HealthSnapshot]],
        states: dict[State, int],
        components: Callable[[], Mapping[str, bool]],
    ) -> None:
        self._stats = stats
        self._links = links
        self._states = states
        self._components = components

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
        components = GaugeMetricFamily(
            "asterisk_cb_component_up", "1 while the daemon component runs", labels=["component"]
        )
        for name, up in self._components().items():
            components.add_metric([name], 1.0 if up else 0.0)
        yield components


_FINISHING = frozenset({EventKind.COMPLETED, EventKind.EXHAUSTED, EventKind.EXPIRED, EventKind.CANCELLED})


class Metrics:
    """The registry of one daemon; ``handle`` counts a batch of the event stream into it."""

    def __init__(
        self,
        stats: SchedulerStats,
        links: Callable[[], Sequence[HealthSnapshot]],
        *,
        states: Callable[[], Awaitable[Mapping[State, int]]] | None = None,
        components: Callable[[], Mapping[str, bool]] = dict,
    ) -> None:
        self.registry = CollectorRegistry()
        self.states: dict[State, int] = {}
        self._count_states = states
        self.events = Counter(
            "asterisk_cb_events",
            "Callback lifecycle events counted by this daemon (sum over daemons for the total)",
            ["kind"],
            registry=self.registry,
        )
        self.finished = Counter(
            "asterisk_cb_finished",
            "Callbacks finished, by event kind and reason (contact_called_in: the contact called in first)",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.registry.register(DaemonCollector(stats, links, self.states, components))
        self._refreshers: list[Callable[[], Awaitable[None]]] = [self.refresh_states]

    def add(self, collector: Collector, refresh: Callable[[], Awaitable[None]]) -> None:
        """A part's own metrics (the CEL writer's) and what to read before each scrape."""
        self.registry.register(collector)
        self._refreshers.append(refresh)

    async def refresh(self) -> None:
        """Everything read at scrape time (each part keeps its last values when Redis does not answer)."""
        for refresh in self._refreshers:
            await refresh()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def refresh_states(self) -> None:
        """Callbacks per state from the store; the last known counts stay when Redis does not answer."""
        if self._count_states is None:
            return
        try:
            self.states.update(await self._count_states())
        except RedisError as error:
            log.warning("metrics: callbacks per state unreadable", extra={"error": str(error)})

    async def handle(self, entries: Sequence[StreamEvent]) -> None:
        for entry in entries:
            self.events.labels(entry.event.kind.value).inc()
            if entry.event.kind in _FINISHING:
                self.finished.labels(entry.event.kind.value, entry.event.attributes.get("reason", "")).inc()


def event_counter(source: EventSource, metrics: Metrics, consumer: str) -> EventConsumer:
    """This daemon's consumer of the group every daemon shares, so each event is counted once."""
    return EventConsumer(source, GROUP, consumer, metrics.handle)


async def serve(metrics: Metrics, host: str, port: int) -> web.AppRunner:
    """An HTTP server answering GET /metrics; the caller cleans the runner up."""

    async def scrape(_: web.Request) -> web.Response:
        await metrics.refresh()
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


@dataclass(frozen=True)
class MetricsServer:
    """/metrics as a daemon component: a side job, restarted (e.g. when its port was busy)."""

    metrics: Metrics
    host: str
    port: int
    name: str = "metrics"
    essential: bool = False

    async def run(self) -> None:
        runner = await serve(self.metrics, self.host, self.port)
        log.info("metrics served", extra={"url": f"http://{self.host}:{self.port}/metrics"})
        try:
            await forever()
        finally:
            await runner.cleanup()
