"""What every part of the store shares: one namespace's client, key names and registered scripts.

The parts (records, claims, locks, requests, events, overrides, roles, tokens, housekeeping) are mixins
of ``Store``, so a caller holds one object; none of them hands the client out.
"""

from __future__ import annotations

from asterisk_cb.keys import Keys
from asterisk_cb.redis_conn import RedisClient, ReplicaWait
from asterisk_cb.store.replicas import ReplicaGuard
from asterisk_cb.store.scripts import Scripts


class StorePart:
    """The state of a store; each part adds the methods of one concern. ``replica_wait``: whether the
    commits before a dial wait for a replica (``[redis] replica_wait``; by default when one exists)."""

    def __init__(
        self, redis: RedisClient, keys: Keys | None = None, replica_wait: ReplicaWait | None = None
    ) -> None:
        self._redis = redis
        self._keys = keys or Keys()
        self._scripts = Scripts(redis)
        self.replicas = ReplicaGuard(redis, replica_wait or ReplicaWait(), self._keys.due)

    @property
    def keys(self) -> Keys:
        """The key names of this namespace (tests look at what the store wrote with their own client)."""
        return self._keys
