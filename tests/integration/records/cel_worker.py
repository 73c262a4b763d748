"""A CEL writer process of ``test_cel_writer.py``'s SIGKILL test: the real consumer and writer on a
store namespace and a database, until killed.

Each batch's acknowledgement comes ``ACK_DELAY_S`` after its rows were committed, so a SIGKILL is
likely to land in that window too: rows written, entries not acknowledged, redelivered after the
restart (the case the markers exist for).

Run: ``python cel_worker.py REDIS_URL NAMESPACE DSN BATCH``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import timedelta

from asterisk_cb.consumer import ConsumerOptions, EventConsumer
from asterisk_cb.keys import Keys
from asterisk_cb.records.connect import open_database
from asterisk_cb.records.settings import RecordsSite, parse_dsn
from asterisk_cb.records.writer import GROUP, CelWriter
from asterisk_cb.redis_conn import connect
from asterisk_cb.store import Store, StreamEvent

ACK_DELAY_S = 0.3


async def main(redis_url: str, namespace: str, dsn: str, batch: int) -> None:
    store = Store(connect(redis_url), Keys(namespace))
    site = RecordsSite(parse_dsn(dsn), write_timeout=timedelta(seconds=30))
    writer = CelWriter(open_database(site), store, namespace)
    options = ConsumerOptions(start_id="0", batch=batch, poll_s=0.05, stale_ms=500, retry_s=0.1)

    async def handle(entries: Sequence[StreamEvent]) -> None:
        await writer.handle(entries)
        await asyncio.sleep(ACK_DELAY_S)

    await EventConsumer(store, GROUP, "worker", handle, options).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
