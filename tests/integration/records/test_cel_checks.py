"""What an admin sees of the CEL writer: the ``doctor`` line ``records`` and the writer's metrics,
against real databases (PostgreSQL and MariaDB) and the lab Redis."""

from __future__ import annotations

import dataclasses

import pytest
from cel_databases import Database, schedule_and_cancel

from asterisk_cb import deployment, doctor
from asterisk_cb.metrics import Metrics
from asterisk_cb.records.component import WriterCollector
from asterisk_cb.records.connect import open_database
from asterisk_cb.records.writer import GROUP, CelWriter
from asterisk_cb.scheduler import SchedulerStats
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab


def site_of(database: Database, store: Store, lab_redis_url: str) -> deployment.Deployment:
    return deployment.Deployment(
        redis=deployment.RedisTarget(lab_redis_url, None, store._keys.namespace),
        ari=deployment.AriTarget("http://127.0.0.1:1/ari", "u", "p", "app"),
        ami=deployment.AmiTarget("127.0.0.1", 1, "u", "s"),
        dialing=deployment.Dialing("x"),
        agents={},
        records=database.site,
    )


async def test_doctor_says_reachable_tables_present_and_the_backlog(
    database: Database, store: Store, lab_redis_url: str
) -> None:
    await store.ensure_group(GROUP, "0")
    await schedule_and_cancel(store, 3)
    check = await doctor._records(site_of(database, store, lab_redis_url))
    assert check.verdict is doctor.Verdict.OK, check.detail
    assert "tables cel and acb_cel_written present; writer backlog 6 (group cel)" in check.detail
    assert "p@ss" not in check.detail and ":(set)@" in check.detail


async def test_doctor_says_to_migrate_when_the_marker_table_is_missing(
    database: Database, store: Store, lab_redis_url: str
) -> None:
    await database.query("DROP TABLE acb_cel_written")
    check = await doctor._records(site_of(database, store, lab_redis_url))
    assert check.verdict is doctor.Verdict.FAIL
    assert "no table acb_cel_written: run `asterisk-cb db migrate`" in check.detail


async def test_doctor_fails_on_an_unreachable_database_without_its_password(
    database: Database, store: Store, lab_redis_url: str
) -> None:
    await database.proxy.stop()
    check = await doctor._records(site_of(database, store, lab_redis_url))
    assert check.verdict is doctor.Verdict.FAIL
    assert "events wait in the stream" in check.detail and "p@ss" not in check.detail


async def test_doctor_says_when_the_writer_is_off(
    database: Database, store: Store, lab_redis_url: str
) -> None:
    site = site_of(database, store, lab_redis_url)
    off = dataclasses.replace(site, records=dataclasses.replace(site.records, dsn=None))
    assert (await doctor._records(off)).detail.startswith("off ([records] dsn is empty)")


async def test_metrics_show_rows_written_database_up_and_the_backlog(
    database: Database, store: Store
) -> None:
    await store.ensure_group(GROUP, "0")
    await schedule_and_cancel(store, 2)
    writer = CelWriter(open_database(database.site), store, store._keys.namespace)
    metrics = Metrics(SchedulerStats(), lambda: ())
    collector = WriterCollector(writer.stats, store)
    metrics.add(collector, collector.refresh)
    try:
        await metrics.refresh()
        assert metrics.registry.get_sample_value("asterisk_cb_cel_backlog") == 4
        assert metrics.registry.get_sample_value("asterisk_cb_cel_database_up") == 0
        entries = await store.read_group(GROUP, "daemon-a", count=100)
        await writer.handle(entries)
        await store.ack(GROUP, [entry.entry_id for entry in entries])
        await metrics.refresh()
    finally:
        await writer.close()
    assert metrics.registry.get_sample_value("asterisk_cb_cel_backlog") == 0
    assert metrics.registry.get_sample_value("asterisk_cb_cel_database_up") == 1
    assert metrics.registry.get_sample_value("asterisk_cb_cel_rows_written_total") == 4
