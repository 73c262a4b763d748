"""``asterisk-cb run``: wiring only. Config -> Redis, ARI, AMI -> availability -> executor -> scheduler,
and the list of components (``asterisk_cb.components``) the supervisor keeps running.

Signals, as admins expect from a PBX daemon:

* SIGTERM / SIGINT: stop taking new callbacks and exit (0), at any moment, also while still waiting
  for ARI and AMI. Live calls stay up: their leases lapse and the restarted daemon (or another one on
  the same Redis) resumes them from the recorded channel ids, never dialling again.
* SIGHUP: reload the callback settings from the config file. A file with an error, or one others can
  read (``secrecy``), is refused (logged with file and line) and the running settings stay; the
  connection sections need a restart.

Exit code 1 (``EXIT_COMPONENT_FAILED``): an essential component (scheduler, ARI, AMI) failed; the log
names it. A failing auxiliary component (metrics, change-requests follower) is restarted instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path

from redis.exceptions import RedisError

from asterisk_cb import config, deployment, feature_code, inbound_hook, secrecy
from asterisk_cb.api.component import api_server
from asterisk_cb.call_in_watch import CallInWatch
from asterisk_cb.components import (
    AmiLink,
    AriEvents,
    ChangeRequests,
    Component,
    DueOrderBuild,
    Link,
    SchedulerPart,
    Supervisor,
)
from asterisk_cb.core.model import Callback
from asterisk_cb.core.settings import Settings, SettingsFile, resolve
from asterisk_cb.feature_code import FeatureCode
from asterisk_cb.inbound_hook import CALL_IN, InboundHook
from asterisk_cb.keys import Keys
from asterisk_cb.metrics import Metrics, MetricsServer, event_counter
from asterisk_cb.records.component import WriterCollector, cel_writer
from asterisk_cb.redis_conn import RedisClient
from asterisk_cb.scheduler import Scheduler, SchedulerOptions
from asterisk_cb.service import CallbackService, RolesService, SettingsService
from asterisk_cb.settings_cache import OverridesCache, SettingsFollower
from asterisk_cb.store import Store
from asterisk_cb.telephony.agent_wakeups import wake_from_ami
from asterisk_cb.telephony.ami import AmiConnection
from asterisk_cb.telephony.ami_events import device_of_channel
from asterisk_cb.telephony.answer_marks import AnswerMarks
from asterisk_cb.telephony.ari import AriClient
from asterisk_cb.telephony.ari_stream import AriEventStream, StreamSettings
from asterisk_cb.telephony.availability import AvailabilityView
from asterisk_cb.telephony.availability_feed import feed_from_ami
from asterisk_cb.telephony.executor import CallbackExecutor, ExecutorOptions
from asterisk_cb.telephony.fastagi import FastAgiServer
from asterisk_cb.telephony.inbound_talk import Talk, TalkTracker
from asterisk_cb.telephony.pause_sweep import PauseSweep
from asterisk_cb.telephony.queue_guard import QueueGuard

log = logging.getLogger(__name__)
READY_PING_S = 1.0


class Daemon:
    """Everything one ``asterisk-cb run`` process holds; ``run`` returns when it is told to stop."""

    def __init__(self, config_path: Path, file: SettingsFile, site: deployment.Deployment) -> None:
        self.config_path = config_path
        self.file = file
        self.site = site
        self.redis: RedisClient = site.redis.connect("asterisk-cb")
        self.store = Store(self.redis, Keys(site.redis.namespace, site.numbers), site.redis.replica_wait)
        self.overrides = OverridesCache(self.store)
        self.ari = AriClient(site.ari.client_settings())
        self.view = AvailabilityView.of(site.agents.values())
        self.events = AriEventStream(self.ari, StreamSettings())
        self.ami = AmiConnection(
            # an agent logged in to app_agent_pool before the daemon started is known from the seed
            site.ami.client_settings(agent_pool=any(spec.pool_agent for spec in site.agents.values())),
            watched_devices=self.view.watched_devices,
        )
        feed_from_ami(self.view, self.ami)
        self.wakeups = wake_from_ami(self.view, self.ami, self.store)  # a free agent rings its waiting
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
                cdr_mark=site.dialing.cdr_mark,
            ),
            queue_guard=self.queue_guard,
            answers=AnswerMarks(self.ami),
            feeds=(self.ami.health,),
            after_run=self.wakeups.check,
        )
        # Every AMI (re)connect, the first included, and periodically: lift the "callback" pauses no
        # call holds (a daemon died mid-callback, AMI was down or an answer was lost).
        sweep_s = site.timing.pause_sweep.total_seconds()
        self.pause_sweep = PauseSweep(self.queue_guard, self.view, self.store, sweep_s)
        self.ami.on_resync(lambda _: self.pause_sweep.sweep())
        lease_ms = int(site.timing.lease.total_seconds() * 1000)
        lines = site.dialing.lines
        scheduling = SchedulerOptions(lease_ms=lease_ms, renew_every_ms=lease_ms // 3, lines=lines)
        if site.dialing.max_calls is not None:  # one executor run per call: its concurrency caps the calls
            scheduling = dataclasses.replace(scheduling, concurrency=site.dialing.max_calls)
        self.scheduler = Scheduler(self.store, self.executor, scheduling)
        self.metrics = Metrics(
            self.scheduler.stats,
            lambda: (self.events.health.snapshot(), self.ami.health.snapshot()),
            states=self.store.count_by_state,
            components=self.component_health,
        )
        # The feature code's face: asks the service with the agent's role, as every way in does.
        service = CallbackService(self.store, site, self.settings_of, lambda: datetime.now(UTC))
        roles = RolesService(self.store, site.roles, site.agents)
        options = site.feature_code.options
        self.feature_code = FeatureCode(service, roles, self.view.agent_at, self.settings_of, options=options)
        # The contact calling in first: the inbound hook's look-up, and its talk settling the callbacks.
        self.inbound_hook = InboundHook(service, self.view, self.settings_of)
        tracker = TalkTracker(lambda channel: self.view.agent_at(device_of_channel(channel)))

        def settle(talk: Talk) -> Awaitable[list[Callback]]:
            return service.settle_call_in(CALL_IN, talk.number, talk.agent, int(talk.seconds))

        self.call_in = CallInWatch(self.ami, tracker, settle)
        self.service, self.roles = service, roles
        self.supervisor = Supervisor(self.components())

    def component_health(self) -> dict[str, bool]:
        return self.supervisor.snapshot()

    def components(self) -> list[Component]:
        """What this daemon keeps running, in start order (stopped in reverse): a new way in is one
        line here. Essential ones first; the FastAGI server (feature code, inbound hook) unless
        [feature_code] listen is empty; metrics only with [metrics]; the CEL writer with [records] dsn;
        the REST API with [api] listen."""
        links = (
            Link("ARI", self.site.ari.url, self.events.wait_ready),
            Link("AMI", self.site.ami.host, self.ami.wait_ready),
        )
        parts: list[Component] = [
            AriEvents(self.events),
            AmiLink(self.ami),
            SchedulerPart(self.scheduler, links),
            ChangeRequests(self.executor.follow_requests),
            DueOrderBuild(self.store),
            SettingsFollower(self.store, self.overrides),
            self.pause_sweep,
            self.call_in,
        ]
        agi = self.site.feature_code
        if agi.listen is not None:
            routes = {feature_code.ROUTE: self.feature_code, inbound_hook.ROUTE: self.inbound_hook}
            parts.append(FastAgiServer(agi.server_settings(), routes))
        if self.site.metrics is not None:
            parts.append(MetricsServer(self.metrics, self.site.metrics.host, self.site.metrics.port))
            parts.append(event_counter(self.store, self.metrics, self.scheduler.owner))
        if self.site.records.dsn is not None:
            parts.append(self._cel_writer())
        if self.site.api.enabled:
            parts.append(self._api())
        return parts

    def _api(self) -> Component:
        """The REST API on the daemon's own services: the same door as the feature code and the CLI."""
        return api_server(
            self.site,
            self.store,
            self.service,
            lambda: SettingsService(self.store, self.file, self.site),
            self.roles,
            readiness=self.readiness,
            queues=self.ami.queue_names,
            clock=lambda: datetime.now(UTC),
        )

    async def readiness(self) -> tuple[dict[str, bool], bool]:
        """Each component running, and whether Redis answers (in ``READY_PING_S``)."""
        try:
            redis = bool(await asyncio.wait_for(self.redis.ping(), READY_PING_S))
        except (RedisError, OSError, TimeoutError):
            redis = False
        return self.supervisor.snapshot(), redis

    def _cel_writer(self) -> Component:
        """The CEL writer, one consumer of the ``cel`` group; its metrics join the daemon's."""
        part = cel_writer(self.site.records, self.store, self.site.redis.namespace, self.scheduler.owner)
        collector = WriterCollector(part.writer.stats, self.store)
        self.metrics.add(collector, collector.refresh)
        return part

    async def settings_for(self, callback: Callback) -> Settings:
        """The callback's effective settings: run-time overrides over the file, agent > queue > general."""
        return await self.settings_of(callback.agent, callback.queue)

    async def settings_of(self, agent: str | None, queue: str | None) -> Settings:
        """The effective settings for a callback of ``agent`` from ``queue``: the file as last reloaded,
        the run-time overrides as last changed (``settings_cache``)."""
        return resolve(self.file, await self.overrides.setting_layers(), agent, queue)

    def reload(self) -> None:
        try:
            secrecy.refuse_exposed(self.config_path)  # edited into a file others can read: not used
            self.file = config.load(self.config_path, other_sections=deployment.SECTIONS)
        except config.ConfigError as error:
            log.error("reload refused, running settings kept", extra={"error": str(error)})
            return
        self.overrides.changed()  # the overrides did not change, but a reload is when admins look again
        log.info("settings reloaded", extra={"config": str(self.config_path)})

    async def run(self) -> int:
        """Run the components until a signal (0) or an essential one fails (``EXIT_COMPONENT_FAILED``)."""
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, self._stop, stop_signal)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        log.info("starting", extra={"owner": self.scheduler.owner, "agents": len(self.site.agents)})
        try:
            return await self.supervisor.run()
        finally:
            for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(handled)
            self.wakeups.close()
            await self.ari.close()
            await self.redis.aclose()
            log.info("stopped")

    def _stop(self, received: signal.Signals) -> None:
        log.info("stopping: live calls stay up and will be resumed", extra={"signal": received.name})
        self.supervisor.stop()


async def run(config_path: Path) -> int:
    file = config.load(config_path, other_sections=deployment.SECTIONS)
    return await Daemon(config_path, file, deployment.from_settings_file(file)).run()
