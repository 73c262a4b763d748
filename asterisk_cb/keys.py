"""Every Redis key (and pub/sub channel) name asterisk-cb uses, and nothing else.

All names of one deployment share one hash tag, ``{<namespace>}``, so every key a Lua script touches
lives in the same Redis Cluster slot: the scripts then run unchanged on a Cluster. The price is that one
deployment's schedule lives on one shard: Cluster gives compatibility and failover, not sharded scale.

The namespace also lets several deployments (or tests) share one Redis without seeing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "acb"

# Separates the indexed value from the callback id in the lexicographic index sorted sets. NUL sorts
# before every other byte, so all members of one value form one contiguous ZRANGEBYLEX range, and
# neither contact numbers, call ids nor callback ids can contain it.
_LEX_SEPARATOR = "\x00"
_FORBIDDEN_IN_NAMESPACE = frozenset("{}:\x00 ")


class InvalidKeyPart(ValueError):
    """A namespace or key component that would break the key layout (hash tag, separators)."""


def _check_part(kind: str, value: str) -> str:
    if not value or _LEX_SEPARATOR in value:
        raise InvalidKeyPart(f"{kind} must be a non-empty string without NUL: {value!r}")
    return value


@dataclass(frozen=True)
class Keys:
    """The key names of one namespace.

    Layout (``P`` = ``{namespace}:``)::

        P due                  zset   callback id -> next_at (ms): scheduled callbacks waiting their turn
        P leases               zset   callback id -> lease expiry (ms, Redis server clock): claimed ones
        P fence                string fencing-token counter (INCR; tokens only ever grow)
        P paused               string present = "pause all callbacks"
        P events               stream one stream for all callbacks' lifecycle events
        P cb:<id>              hash   the callback (codec fields + store bookkeeping fields "_...")
        P ix:state:<state>     set    callback ids per state
        P ix:agent:<agent>     set    callback ids per owning agent
        P ix:contact           zset   "<number>\\0<id>" (score 0, read by lex range)
        P ix:call              zset   "<uniqueid or linkedid>\\0<id>" (score 0, read by lex range)
        P idem:<key>           string idempotency key -> callback id (expires)
        P settings:<scope>     hash   runtime setting overrides: option -> value
        P settings:scopes      set    scopes that have overrides
        P wake                 channel published when a callback becomes the earliest due one
        P settings-changed     channel published (with the scope) when an override changes
    """

    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        if not self.namespace or _FORBIDDEN_IN_NAMESPACE.intersection(self.namespace):
            raise InvalidKeyPart(
                f"namespace must be non-empty without '{{}}:', NUL or space: {self.namespace!r}"
            )

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

    @property
    def wake_channel(self) -> str:
        return self.prefix + "wake"

    @property
    def settings_channel(self) -> str:
        """Published (with the scope) whenever a runtime setting override changes."""
        return self.prefix + "settings-changed"

    @property
    def callback_prefix(self) -> str:
        """Prefix of the callback hashes; Lua scripts append the id (they only get ids from zsets)."""
        return self.prefix + "cb:"

    def callback(self, callback_id: str) -> str:
        return self.callback_prefix + _check_part("callback id", callback_id)

    def state_index(self, state: str) -> str:
        return self.prefix + "ix:state:" + _check_part("state", state)

    def agent_index(self, agent: str) -> str:
        return self.prefix + "ix:agent:" + _check_part("agent", agent)

    @property
    def contact_index(self) -> str:
        return self.prefix + "ix:contact"

    @property
    def call_index(self) -> str:
        return self.prefix + "ix:call"

    def idempotency(self, key: str) -> str:
        return self.prefix + "idem:" + _check_part("idempotency key", key)

    def settings(self, scope: str) -> str:
        return self.prefix + "settings:" + _check_part("settings scope", scope)

    @property
    def settings_scopes(self) -> str:
        return self.prefix + "settings:scopes"

    @property
    def pattern(self) -> str:
        """SCAN pattern matching every key of this namespace (tests use it to delete only their own)."""
        return self.prefix.replace("{", "\\{").replace("}", "\\}") + "*"


def lex_member(value: str, callback_id: str) -> str:
    """Member of a lexicographic index: the indexed value, NUL, the callback id."""
    return _check_part("indexed value", value) + _LEX_SEPARATOR + _check_part("callback id", callback_id)


def lex_range(value: str) -> tuple[str, str]:
    """ZRANGEBYLEX bounds selecting exactly the members of ``value`` (NUL < any id byte < \\x01)."""
    _check_part("indexed value", value)
    return "(" + value + _LEX_SEPARATOR, "(" + value + "\x01"


def lex_callback_id(member: str) -> str:
    """The callback id part of a lexicographic index member."""
    return member.rpartition(_LEX_SEPARATOR)[2]
