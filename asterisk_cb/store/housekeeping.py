"""Housekeeping: finished callbacks are purged after a retention, so the schedule's memory stays
bounded (their events stay in the stream, trimmed separately); the contact index is rebuilt for a new
numbering plan; a namespace can be deleted whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from asterisk_cb.core.codec import FIELDS
from asterisk_cb.core.model import Callback, State
from asterisk_cb.store.encoding import VERSION_FIELD, change, contact_listed
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

    async def build_due_order(self, batch: int = 500) -> int:
        """Place every callback in the due orders (``keys.due_order``, per agent), drop the agent sets
        they replace and mark the build done. An upgrade needs it once (the daemon runs it at start
        while the mark is missing); idempotent, and safe while daemons write (each callback is placed
        from its own hash in one step). Returns how many callbacks were placed."""
        keys = self._keys
        placed = 0
        for state in State:
            ids = [callback_id async for callback_id in self._redis.sscan_iter(keys.state_index(state.value))]
            for start in range(0, len(ids), batch):
                fields = [FIELDS["due_at"], FIELDS["agent"], *ids[start : start + batch]]
                args = [keys.callback_prefix, keys.agent_due_order_prefix, *fields]
                placed += int(await self._scripts.run(Script.ORDER, [keys.due_order], args))
        async for legacy in self._redis.scan_iter(match=keys.legacy_agent_index_pattern):
            await self._redis.delete(legacy)
        await self._redis.set(keys.due_order_built, "1")
        return placed

    async def due_order_is_built(self) -> bool:
        return bool(await self._redis.exists(self._keys.due_order_built))

    async def reindex_contacts(self, batch: int = 500) -> int:
        """Move every callback of the contact index to the entry of its number under this store's
        numbering plan, and drop entries of callbacks that are gone or finished (the index lists pending
        ones only). Needed once after an upgrade from literal number keys or from an index that kept
        finished callbacks, and after a change of ``[numbers]``; safe while daemons run (each move is
        checked against the number read; a finished callback never changes again) and idempotent.
        Returns how many entries moved or were dropped."""
        index = self._keys.contact_index
        listed = [
            (entry, callback_id)
            async for entry, ids in self._redis.hscan_iter(index, count=batch)
            for callback_id in ids.split()
        ]
        moved = 0
        for start in range(0, len(listed), batch):
            moves = await self._misplaced(listed[start : start + batch])
            if moves:
                args = [self._keys.callback_prefix, FIELDS["contact_number"], *moves]
                moved += int(await self._scripts.run(Script.REINDEX, [index], args))
        return moved

    async def _misplaced(self, listed: list[tuple[str, str]]) -> list[str]:
        """The reindex script's moves for (entry, callback id) pairs not where their numbers belong."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, callback_id in listed:
                pipe.hmget(self._keys.callback(callback_id), [FIELDS["contact_number"], FIELDS["state"]])
            read = await pipe.execute()
        moves = []
        for (entry, callback_id), (number, state) in zip(listed, read, strict=True):
            listed_here = number and state and contact_listed(State(state))
            belongs = self._keys.contact_entry(number) if listed_here else ""
            if belongs != entry:
                moves += [callback_id, entry, number or "", belongs]
        return moves

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
