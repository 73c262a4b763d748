"""The CEL writer against real databases (PostgreSQL and MariaDB, each test on both) and the lab Redis:
rows land once whatever is handed twice, a database that is down or hangs makes the handler wait
(``HandlerUnavailable``) while the events stay in the stream, and a writer killed mid-batch and
restarted writes no row twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from cel_databases import REPO, Database, schedule_and_cancel

from asterisk_cb.cli import main
from asterisk_cb.consumer import ConsumerOptions, EventConsumer, HandlerUnavailable
from asterisk_cb.records.connect import open_database
from asterisk_cb.records.settings import RecordsSite
from asterisk_cb.records.writer import GROUP, CelWriter
from asterisk_cb.secrecy import write_private
from asterisk_cb.store import Store

pytestmark = pytest.mark.lab

ORIGIN = "1765000000.42"
FAST = ConsumerOptions(start_id="0", poll_s=0.05, stale_ms=0, retry_s=0.1)


def writer_for(database: Database, store: Store) -> CelWriter:
    return CelWriter(open_database(database.site), store, store._keys.namespace)


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def rows(database: Database, at_least: int, exactly: bool = True) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        count = await database.count()
        return count == at_least if exactly else count >= at_least

    return check


@asynccontextmanager
async def consuming(consumer: EventConsumer) -> AsyncIterator[None]:
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_rows_land_once_when_the_same_entries_are_handed_again(
    database: Database, store: Store
) -> None:
    """An acknowledgement lost (or a dead daemon's entries taken over): the same entries come again,
    also to another daemon's writer; each event is one row, and the linkedid tells the story."""
    await store.ensure_group(GROUP, "0")
    ids = await schedule_and_cancel(store, 3, ORIGIN)
    entries = await store.read_group(GROUP, "daemon-a", count=100)
    first, second = writer_for(database, store), writer_for(database, store)
    try:
        await first.handle(entries)
        await first.handle(entries)
        await second.handle(entries[2:])
    finally:
        await first.close()
        await second.close()
    assert (first.stats.rows_written, second.stats.rows_written) == (6, 0)
    story = await database.query(  # the README's query on a linkedid
        f"SELECT eventtype, cid_num, cid_name, uniqueid, appname, extra FROM cel WHERE linkedid = '{ORIGIN}' "
        f"OR linkedid IN (SELECT uniqueid FROM cel WHERE linkedid = '{ORIGIN}' "
        "AND eventtype LIKE 'CALLBACK%') ORDER BY eventtime, id"
    )
    assert [row[0] for row in story] == ["CALLBACK_SCHEDULED", "CALLBACK_CANCELLED"] * 3
    assert [json.loads(str(row[5]))["callback"] for row in story] == [i for i in ids for _ in (1, 2)]
    assert story[1][1:5] == ("+4930000000", "Contact 0", f"{ORIGIN}1", "asterisk-cb")
    assert json.loads(str(story[1][5])) == {
        "callback": ids[0],
        "agent": "1001",
        "by": "cli:root",
        "reason": "cancelled",
    }


async def test_a_dead_or_hung_database_makes_the_writer_wait(database: Database, store: Store) -> None:
    """Connection refused, or a connection that stopped answering: ``HandlerUnavailable`` within the
    write timeout (2 s here), nothing written; the same batch lands once the database is back."""
    await store.ensure_group(GROUP, "0")
    await schedule_and_cancel(store, 2, ORIGIN)
    entries = await store.read_group(GROUP, "daemon-a", count=100)
    writer = writer_for(database, store)
    try:
        await writer.probe()  # connected through the proxy
        database.proxy.pause()
        started = time.monotonic()
        with pytest.raises(HandlerUnavailable, match="TimeoutError"):
            await writer.handle(entries)
        assert time.monotonic() - started < 3.0
        database.proxy.resume()
        await database.proxy.stop()
        with pytest.raises(HandlerUnavailable) as down:
            await writer.handle(entries)
        assert "p@ss" not in str(down.value) and "(set)" in str(down.value)
        assert writer.stats.database_up is False
        await database.proxy.start()
        await writer.handle(entries)
    finally:
        await writer.close()
    assert writer.stats.database_up is True
    assert await database.count() == 4


async def test_events_wait_in_the_stream_while_the_database_is_down_then_catch_up(
    database: Database, store: Store
) -> None:
    """Through the consumer: the database cut while callbacks are scheduled; nothing is lost, trimming
    keeps every entry the group has not written, and the writer catches up alone once it is back."""
    writer = writer_for(database, store)
    async with consuming(EventConsumer(store, GROUP, "daemon-a", writer.handle, FAST)):
        await schedule_and_cancel(store, 2, ORIGIN)
        await until(rows(database, 4))
        await database.proxy.stop()
        await schedule_and_cancel(store, 20, "1765000001.7", prefix="d")
        await asyncio.sleep(2.0)
        assert await store.trim_events(timedelta(0)) <= 4  # only what was written may go
        assert await database.count() == 4
        (group,) = [group for group in await store.event_groups() if group.name == GROUP]
        assert group.pending + (group.lag or 0) == 40
        await database.proxy.start()
        await until(rows(database, 44))
    await writer.close()
    assert await database.count("linkedid = '1765000001.7'") == 40


async def test_a_writer_killed_mid_batch_and_restarted_writes_no_row_twice(
    database: Database, store: Store, lab_redis_url: str
) -> None:
    """A writer process SIGKILLed while it holds a batch whose rows it committed but whose entries it
    has not acknowledged (up to five kills until one lands there); the restarted writer takes the
    entries over, skips what was written, and every event is one row."""
    callbacks = 600
    await schedule_and_cancel(store, callbacks, ORIGIN)
    command = [sys.executable, str(Path(__file__).with_name("cel_worker.py")), lab_redis_url]
    command += [store._keys.namespace, database.site.dsn.url, "25"]  # type: ignore[union-attr]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    caught = 0
    for _ in range(5):
        worker = await asyncio.create_subprocess_exec(*command, env=environment)
        try:
            await until(rows(database, await database.count() + 50, exactly=False), timeout_s=60)
        finally:
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
        caught = await _caught_mid_batch(database, store)
        if caught or await database.count() >= 2 * callbacks - 100:
            break
    assert caught, "no kill caught the writer between a commit and its acknowledgement"
    worker = await asyncio.create_subprocess_exec(*command, env=environment)
    try:
        await until(rows(database, 2 * callbacks), timeout_s=120)
        await asyncio.sleep(1.0)  # anything written twice would show now
    finally:
        worker.kill()
        await worker.wait()
    assert await database.count() == 2 * callbacks
    doubled = "SELECT eventtype, extra FROM cel GROUP BY eventtype, extra HAVING count(*) > 1"
    assert await database.query(doubled) == []
    assert (await database.query("SELECT count(*) FROM acb_cel_written"))[0][0] == 2 * callbacks


async def _caught_mid_batch(database: Database, store: Store) -> int:
    """Entries the killed writer held (handed out, not acknowledged); printed with how many of them
    it had already written (rows beyond the acknowledged entries), which a redelivery must skip."""
    (group,) = [group for group in await store.event_groups() if group.name == GROUP]
    stream = await store._redis.xlen(store._keys.events)
    acknowledged = stream - (group.lag or 0) - group.pending
    written = await database.count()
    print(f"killed: {written} rows, {group.pending} entries held, {written - acknowledged} of them written")
    return written - acknowledged


def test_migrate_dry_run_creates_nothing_and_migrate_twice_is_fine(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(database.query("DROP TABLE acb_cel_written"))
    assert database.admin.dsn is not None
    path = tmp_path / "asterisk-cb.conf"
    write_private(path, f"[ari]\nuser=a\npassword=b\n[ami]\nuser=a\nsecret=b\n[dialing]\noutbound_context=x\n"
                  f"[records]\ndsn = {database.admin.dsn.url}\n")  # fmt: skip
    assert main(["--config", str(path), "db", "migrate", "--dry-run"]) == 0
    assert "CREATE TABLE IF NOT EXISTS" in capsys.readouterr().out
    assert not asyncio.run(_tables(database.admin)).marker
    assert main(["--config", str(path), "db", "migrate"]) == 0
    assert main(["--config", str(path), "db", "migrate"]) == 0
    assert "marker table acb_cel_written ready" in capsys.readouterr().out
    assert asyncio.run(_tables(database.admin)).marker


async def _tables(site: RecordsSite) -> object:
    connection = open_database(site)
    try:
        return await connection.tables()
    finally:
        await connection.close()
