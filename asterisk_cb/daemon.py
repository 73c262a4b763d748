"""``asterisk-cb run``: wiring only. Config -> Redis, ARI, AMI -> availability -> executor -> scheduler.

Signals, as admins expect from a PBX daemon:

* SIGTERM / SIGINT: stop taking new callbacks and exit. Live calls stay up: their leases lapse and the
  restarted daemon (or another one on the same Redis) resumes them from the recorded channel ids,
  never dialling again.
* SIGHUP: reload the callback settings from the config file. A file with an error is refused (logged
  with file and line) and the running settings stay; the connection sections need a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from asterisk_cb import config, deployment
from asterisk_cb.core.model import Callback
from asterisk_cb.core.settings import Settings, SettingsFile
from asterisk_cb.keys import Keys
from asterisk_cb.metrics import GROUP, Metrics, serve
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.scheduler import Scheduler, SchedulerOptions
from asterisk_cb.service import effective_settings
from asterisk_cb.store import Store
from asterisk_cb.telephony.ami import AmiConnection, AmiSettings
from asterisk_cb.telephony.answer_marks import AnswerMarks
from asterisk_cb.telephony.ari import AriClient, AriSettings
from asterisk_cb.telephony.ari_stream import AriEventStream, StreamSettings
from asterisk_cb.telephony.availability import AvailabilityView
from asterisk_cb.telephony.availability_feed import feed_from_ami
from asterisk_cb.telephony.executor import CallbackExecutor, ExecutorOptions
from asterisk_cb.telephony.queue_guard import QueueGuard

log = logging.getLogger(__name__)

# How long start-up waits for each of ARI and AMI before the scheduler runs anyway: a callback found due
# while Asterisk is away is simply seen as "agent unavailable" and checked again after the reschedule delay.
LINK_READY_TIMEOUT_S = 10.0


class Daemon:
    """Everything one ``asterisk-cb run`` process holds; ``run`` returns when it is told to stop."""

    def __init__(self, config_path: Path, file: SettingsFile, site: deployment.Deployment) -> None:
        self.config_path = config_path
        self.file = file
        self.site = site
        self.redis: RedisClient = site.redis.connect("asterisk-cb")
        self.store = Store(self.redis, Keys(site.redis.namespace))
        self.ari = AriClient(AriSettings(site.ari.url, site.ari.user, site.ari.password, site.ari.app))
        self.view = AvailabilityView.of(site.agents.values())
        self.events = AriEventStream(self.ari, StreamSettings())
        self.ami = AmiConnection(
            AmiSettings(
                site.ami.user,
                site.ami.secret,
                site.ami.host,
                site.ami.port,
                # an agent logged in to app_agent_pool before the daemon started is known from the seed
                agent_pool=any(spec.pool_agent for spec in site.agents.values()),
            ),
            watched_devices=self.view.watched_devices,
        )
        feed_from_ami(self.view, self.ami)
        self.queue_guard = QueueGuard(self.ami)
        self.executor = CallbackExecutor(
            self.store,
            self.ari,
            self.events,
            availability=self.view,
            settings_for=self.settings_for,
            options=ExecutorOptions(
                site.dialing.outbound_context,
                recheck_s=site.timing.call_check.total_seconds(),
                queue_context=site.dialing.queue_context,
                amd_context=site.dialing.amd_context,
                lines=site.dialing.lines,
            ),
            queue_guard=self.queue_guard,
            answers=AnswerMarks(self.ami),
            feeds=(self.ami.health,),
        )
        # Every AMI (re)connect, the first included: a daemon that died mid-callback left its agents
        # paused with reason "callback" (or AMI was down when it should have lifted them): lift those.
        self.ami.on_resync(lambda _: self.executor.release_leftover_pauses())
        lease_ms = int(site.timing.lease.total_seconds() * 1000)
        lines = site.dialing.lines
        scheduling = SchedulerOptions(lease_ms=lease_ms, renew_every_ms=lease_ms // 3, lines=lines)
        if site.dialing.max_calls is not None:  # one executor run per call: its concurrency caps the calls
            scheduling = dataclasses.replace(scheduling, concurrency=site.dialing.max_calls)
        self.scheduler = Scheduler(self.store, self.executor, scheduling)
        self.metrics = Metrics(
            self.scheduler.stats, lambda: (self.events.health.snapshot(), self.ami.health.snapshot())
        )

    async def settings_for(self, callback: Callback) -> Settings:
        """The callback's effective settings: run-time overrides over the file, agent > queue > general."""
        return await effective_settings(self.file, self.store, callback.agent, callback.queue)

    def reload(self) -> None:
        try:
            self.file = config.load(self.config_path, other_sections=deployment.SECTIONS)
        except config.ConfigError as error:
            log.error("reload refused, running settings kept", extra={"error": str(error)})
            return
        log.info("settings reloaded", extra={"config": str(self.config_path)})

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, self._stop, stop_signal)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.events.start()
        await self.ami.start()
        await self._wait_for_links()
        log.info("running", extra={"owner": self.scheduler.owner, "agents": len(self.site.agents)})
        requests = asyncio.create_task(self.executor.follow_requests())
        try:
            async with self._metrics_served():
                await self.scheduler.run()
        finally:
            requests.cancel()
            await asyncio.gather(requests, return_exceptions=True)
            await self.events.stop()
            await self.ami.stop()
            await self.ari.close()
            await self.redis.aclose()
            log.info("stopped")

    async def _wait_for_links(self) -> None:
        """Give ARI and AMI a moment to connect and seed: a callback due before that would find its
        resumed channels not looked up yet (ARI), or its agent's devices unknown and queue pause missed
        (AMI). Neither is needed to run."""
        for link, ready, peer in (
            ("ARI", self.events.wait_ready, self.site.ari.url),
            ("AMI", self.ami.wait_ready, self.site.ami.host),
        ):
            try:
                await ready(LINK_READY_TIMEOUT_S)
            except TimeoutError:
                log.warning(f"{link} not ready yet; running anyway", extra={"peer": peer})

    @asynccontextmanager
    async def _metrics_served(self) -> AsyncIterator[None]:
        """Serve /metrics and count events while the scheduler runs; without [metrics] the shared
        consumer group is dropped, so an unread group never holds back the event stream's trimming."""
        listen = self.site.metrics
        if listen is None:
            await self.store.drop_group(GROUP)
            yield
            return
        runner = await serve(self.metrics, listen.host, listen.port)
        counting = asyncio.create_task(self.metrics.count_events(self.store, self.scheduler.owner))
        log.info("metrics served", extra={"url": f"http://{listen.host}:{listen.port}/metrics"})
        try:
            yield
        finally:
            counting.cancel()
            await runner.cleanup()

    def _stop(self, received: signal.Signals) -> None:
        log.info("stopping: live calls stay up and will be resumed", extra={"signal": received.name})
        self.scheduler.stop()


async def run(config_path: Path) -> None:
    file = config.load(config_path, other_sections=deployment.SECTIONS)
    await Daemon(config_path, file, deployment.from_settings_file(file)).run()
