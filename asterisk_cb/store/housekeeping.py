"""Housekeeping: finished callbacks are purged after a retention, so the schedule's memory stays
bounded (their events stay in the stream, trimmed separately); a namespace can be deleted whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from asterisk_cb.core.model import Callback, State
from asterisk_cb.store.encoding import VERSION_FIELD, change
from asterisk_cb.store.records import Records
from asterisk_cb.store.scripts import Script


class Housekeeping(Records):
    """Purge long-finished callbacks; delete a namespace (tests, benchmarks, decommissioning)."""

    async def purge_finished(self, older_than: timedelta, batch: int = 500) -> int:
        """Delete callbacks that finished more than ``older_than`` ago (Redis server clock), with their
        history and index entries. Returns how many were deleted."""
        seconds, micros = await self._redis.time()
        cutoff = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros) - older_than
        purged = 0
        for state in (state for state in State if state.is_finished):
            index = self._keys.state_index(state.value)
            ids = [callback_id async for callback_id in self._redis.sscan_iter(index)]
            for start in range(0, len(ids), batch):
                for callback in await self.get_many(ids[start : start + batch]):
                    finished_at = callback.finished_at or callback.updated_at or callback.created_at
                    if finished_at < cutoff:
                        purged += await self._purge(callback)
        return purged

    async def _purge(self, callback: Callback) -> int:
        keys = self._keys
        args = [
            keys.callback_prefix,
            callback.id,
            VERSION_FIELD,
            callback.version,
            keys.history(callback.id),
            change(keys, callback, None, ()),
        ]
        return int(await self._scripts.run(Script.PURGE, [keys.due, keys.leases], args))

    async def delete_namespace(self) -> int:
        """Delete every key of this namespace and nothing else."""
        deleted = 0
        batch: list[str] = []
        async for key in self._redis.scan_iter(match=self._keys.pattern, count=1000):
            batch.append(key)
            if len(batch) == 1000:
                deleted += await self._redis.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await self._redis.unlink(*batch)
        return deleted
