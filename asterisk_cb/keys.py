"""Every Redis key (and pub/sub channel) name asterisk-cb uses, and nothing else.

All names of one deployment share one hash tag, ``{<namespace>}``, so every key a Lua script touches
lives in the same Redis Cluster slot: the scripts then run unchanged on a Cluster. The price is that one
deployment's schedule lives on one shard: Cluster gives compatibility and failover, not sharded scale.

The namespace also lets several deployments (or tests) share one Redis without seeing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asterisk_cb.core.numbers import DEFAULT_PLAN, NumberPlan

# The namespace of a deployment whose [redis] section names none (the daemon, CLI and tools alike).
DEFAULT_NAMESPACE = "asterisk-cb"

# No glob characters (``*?[]\\``): deleting namespace ``prod*`` must not reach other deployments' keys;
# no ``{}:`` (hash tag, separator) and no space.
_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_GLOB_SPECIALS = re.compile(r"([*?\[\]\\{}])")


class InvalidKeyPart(ValueError):
    """A namespace or key component that would break the key layout (hash tag, separators)."""


def _check_part(kind: str, value: str) -> str:
    if not value or "\x00" in value:
        raise InvalidKeyPart(f"{kind} must be a non-empty string without NUL: {value!r}")
    return value


def check_namespace(namespace: str) -> str:
    """A namespace: ASCII letters, digits and ``_.-``, 1-64 characters, starting with a letter or digit."""
    if not _NAMESPACE.match(namespace):
        raise InvalidKeyPart(
            f"{namespace!r} is not a valid namespace (ASCII letters, digits, _.- ; 1-64 characters, "
            "starting with a letter or digit)"
        )
    return namespace


def check_callback_id(callback_id: str) -> str:
    """Callback ids are listed space-separated in the multi-valued index hashes: no whitespace."""
    if not callback_id or any(char.isspace() or char == "\x00" for char in callback_id):
        raise InvalidKeyPart(f"callback id must be non-empty without whitespace: {callback_id!r}")
    return callback_id


@dataclass(frozen=True)
class Keys:
    """The key names of one namespace.

    Layout (``P`` = ``{namespace}:``)::

        P due                  zset   callback id -> next_at (ms): scheduled callbacks waiting their turn
        P leases               zset   callback id -> lease expiry (ms, Redis server clock): claimed ones
        P fence                string fencing-token counter (INCR; tokens only ever grow)
        P paused               string present = "pause all callbacks"
        P events               stream one stream for all callbacks' lifecycle events
        P dead:<group>         stream entries the consumer group <group> could not handle, parked
                               for an admin (the entry's fields plus _id and _error)
        P cb:<id>              hash   the callback (codec fields + store bookkeeping fields "_...")
        P hist:<id>            string the callback's attempt history (codec JSON), when it has one
        P ix:state:<state>     set    callback ids per state
        P ix:due               zset   every callback id -> its due time (microseconds): listings
                                      in due order, a page at a time, without reading the rest
        P ix:agent-due:<agent> zset   the same per owning agent (also the agent's callbacks)
        P ix:due-built         string present once the two above were built for every callback
                                      (an upgrade from the agent sets, ``ix:agent:<agent>``)
        P ix:contact           hash   canonical contact number -> space-separated ids of its pending
                                      (unfinished) callbacks
        P ix:call              hash   uniqueid or linkedid of the originating call -> callback ids
        P idem:<bucket>        hash   idempotency key -> callback id, one hash per time window
                                      (bucket = server time // window), expiring as a whole
        P lock:agent:<agent>   string "<callback id> <token>": the callback whose call holds the agent
        P lock:contact:<num>   string "<callback id> <token>": the same for a canonical contact number
        P lines:<pool>         hash   callback id -> token: the calls holding a line of a pool (a cap
                                      shared by every daemon, e.g. the outbound context's)
        P settings:<scope>     hash   runtime setting overrides: option -> value
        P settings:scopes      set    scopes that have overrides
        P roles                hash   run-time role definitions: role -> permissions
        P agent-roles          hash   run-time agent roles: agent id or "default" -> role
        P tokens               hash   API tokens: token id -> JSON record (sha256 of the secret, never
                                      the secret; identity kind and name, created, expires, label)
        P passwords            hash   web panel passwords: "agent:<id>"/"user:<name>" -> JSON record
                                      (scrypt hash, its salt and parameters, a generation number)
        P session:<digest>     string a web panel session (JSON), under the SHA-256 of its id, never
                                      the id; expires at the session's maximum age
        P ticket:<digest>      string a short-lived single-use ticket's holder (kind and name, JSON),
                                      under the SHA-256 of the ticket, never the ticket; expires
        P outcome:<request>    list   what the holder did with a person's change request (applied or
                                      refused), for the requester to BLPOP; expires
        P wake                 channel published when a callback becomes the earliest due one
        P requests             channel published (with the callback id) when a person's change of a
                                      live callback awaits its holder
        P settings-changed     channel published (with the scope) when an override changes

    A contact number is keyed in its canonical form under ``numbers`` (``core.numbers``), so every way
    of writing one line is one lock and one index entry.
    """

    namespace: str = DEFAULT_NAMESPACE
    numbers: NumberPlan = DEFAULT_PLAN

    def __post_init__(self) -> None:
        check_namespace(self.namespace)

    @property
    def prefix(self) -> str:
        """Common prefix of every name; the braces make it the Redis Cluster hash tag."""
        return "{" + self.namespace + "}:"

    @property
    def due(self) -> str:
        return self.prefix + "due"

    @property
    def leases(self) -> str:
        return self.prefix + "leases"

    @property
    def fence(self) -> str:
        return self.prefix + "fence"

    @property
    def paused(self) -> str:
        return self.prefix + "paused"

    @property
    def events(self) -> str:
        return self.prefix + "events"

    def dead_letters(self, group: str) -> str:
        """Where a consumer group parks the entries it could not decode or handle (one per group)."""
        return self.prefix + "dead:" + _check_part("consumer group", group)

    @property
    def wake_channel(self) -> str:
        return self.prefix + "wake"

    @property
    def requests_channel(self) -> str:
        """Published (with the callback id) when a change request awaits the callback's holder."""
        return self.prefix + "requests"

    def request_outcome(self, request_id: str) -> str:
        """The list the holder pushes a change request's outcome onto (the requester BLPOPs it)."""
        return self.prefix + "outcome:" + check_callback_id(request_id)

    def session(self, digest: str) -> str:
        """A panel session, under its id's digest (hex): a dump of Redis holds no usable cookie."""
        return self.prefix + "session:" + _check_part("session digest", digest)

    def ticket(self, digest: str) -> str:
        """A ticket's holder, under the ticket's digest (hex): a dump of Redis shows no usable ticket."""
        return self.prefix + "ticket:" + _check_part("ticket digest", digest)

    @property
    def settings_channel(self) -> str:
        """Published (with the scope) whenever a runtime setting override changes."""
        return self.prefix + "settings-changed"

    @property
    def callback_prefix(self) -> str:
        """Prefix of the callback hashes; Lua scripts append the id (they only get ids from zsets)."""
        return self.prefix + "cb:"

    @property
    def history_prefix(self) -> str:
        """Prefix of the attempt-history strings (kept out of the hash to keep it compact)."""
        return self.prefix + "hist:"

    def history(self, callback_id: str) -> str:
        return self.history_prefix + check_callback_id(callback_id)

    def callback(self, callback_id: str) -> str:
        return self.callback_prefix + check_callback_id(callback_id)

    def state_index(self, state: str) -> str:
        return self.prefix + "ix:state:" + _check_part("state", state)

    @property
    def due_order(self) -> str:
        return self.prefix + "ix:due"

    @property
    def agent_due_order_prefix(self) -> str:
        return self.prefix + "ix:agent-due:"

    def agent_due_order(self, agent: str) -> str:
        return self.agent_due_order_prefix + _check_part("agent", agent)

    def agent_waiting(self, agent: str) -> str:
        """The agent's callbacks scheduled to look at it again while it is busy, by due time: what
        the agent turning free wakes (``Claims.wake_waiting``)."""
        return self.prefix + "ix:agent-wait:" + _check_part("agent", agent)

    @property
    def due_order_built(self) -> str:
        return self.prefix + "ix:due-built"

    @property
    def legacy_agent_index_pattern(self) -> str:
        """The agent sets of versions before the due order (deleted once it is built)."""
        return _GLOB_SPECIALS.sub(r"\\\1", self.prefix) + "ix:agent:*"

    @property
    def contact_index(self) -> str:
        return self.prefix + "ix:contact"

    @property
    def call_index(self) -> str:
        return self.prefix + "ix:call"

    @property
    def idempotency_prefix(self) -> str:
        """Prefix of the idempotency buckets; the create script appends the bucket number (it reads the
        server clock), so one hash per window holds the keys and expires as a whole: far cheaper than a
        key with its own TTL per request."""
        return self.prefix + "idem:"

    def idempotency_bucket(self, bucket: int) -> str:
        return self.idempotency_prefix + str(bucket)

    def agent_lock(self, agent: str) -> str:
        return self.prefix + "lock:agent:" + _check_part("agent", agent)

    def contact_lock(self, number: str) -> str:
        return self.prefix + "lock:contact:" + self.contact_entry(number)

    def contact_entry(self, number: str) -> str:
        """The field of the contact index (and the tail of the lock key) standing for ``number``."""
        return _check_part("contact number", self.numbers.canonical(number))

    def lines(self, pool: str) -> str:
        return self.prefix + "lines:" + _check_part("line pool", pool)

    def settings(self, scope: str) -> str:
        return self.prefix + "settings:" + _check_part("settings scope", scope)

    @property
    def settings_scopes(self) -> str:
        return self.prefix + "settings:scopes"

    @property
    def roles(self) -> str:
        return self.prefix + "roles"

    @property
    def agent_roles(self) -> str:
        return self.prefix + "agent-roles"

    @property
    def tokens(self) -> str:
        return self.prefix + "tokens"

    @property
    def passwords(self) -> str:
        return self.prefix + "passwords"

    @property
    def pattern(self) -> str:
        """SCAN pattern matching every key of this namespace and no other (``delete_namespace``): every
        glob character of the prefix is escaped, not only the braces (the namespace rule already
        refuses them; this holds even if that rule is ever widened)."""
        return _GLOB_SPECIALS.sub(r"\\\1", self.prefix) + "*"
