"""The schedule in Redis: callbacks, their indexes, leased claims with fencing, locks, change requests,
the event stream, API tokens and panel sessions (the layout and who may write what: docs/store.md; key names:
``asterisk_cb.keys``).

``Store`` is composed of one part per concern, sharing one namespace's client and scripts:
``records`` (create, read, edit, commit), ``claims``, ``locks``, ``requests``, ``events``,
``overrides``, ``roles``, ``tokens``, ``tickets``, ``passwords``, ``sessions`` and
``housekeeping``; ``scripts`` runs the Lua scripts and maps their refusals to the ``errors``. Callers
hold a ``Store`` (or a protocol of the few methods they call), never the client.
"""

from __future__ import annotations

from asterisk_cb.store.claims import (
    DEFAULT_LEASE_MS,
    Claim,
    ClaimBatch,
    Claimed,
    Claims,
    LinePool,
    open_or_none,
)
from asterisk_cb.store.errors import (
    CallbackLive,
    CallbackNotFound,
    CallbackNotLive,
    ChangePending,
    DuplicateCallback,
    LeaseExpired,
    LeaseLost,
    NotReplicated,
    StaleToken,
    StoreError,
    VersionConflict,
)
from asterisk_cb.store.events import (
    DEAD_LETTERS_KEPT,
    STREAM_START,
    EventLog,
    GroupInfo,
    StreamEntry,
    StreamEvent,
    UnreadableEntry,
    stream_id_key,
)
from asterisk_cb.store.housekeeping import Housekeeping
from asterisk_cb.store.locks import CallLocks, Locks
from asterisk_cb.store.overrides import Overrides
from asterisk_cb.store.passwords import PasswordRecord, PasswordRecords
from asterisk_cb.store.records import IDEMPOTENCY_WINDOW, Created, DueWindow
from asterisk_cb.store.requests import OUTCOME_TTL, RequestOutcome, Requests
from asterisk_cb.store.roles import RoleOverrides
from asterisk_cb.store.sessions import SessionRecord, SessionRecords
from asterisk_cb.store.tickets import TicketStore
from asterisk_cb.store.tokens import TokenRecord, TokenRecords

__all__ = [
    "DEAD_LETTERS_KEPT",
    "DEFAULT_LEASE_MS",
    "IDEMPOTENCY_WINDOW",
    "OUTCOME_TTL",
    "STREAM_START",
    "CallLocks",
    "CallbackLive",
    "CallbackNotFound",
    "CallbackNotLive",
    "ChangePending",
    "Claim",
    "ClaimBatch",
    "Claimed",
    "Created",
    "DueWindow",
    "DuplicateCallback",
    "GroupInfo",
    "LeaseExpired",
    "LeaseLost",
    "LinePool",
    "NotReplicated",
    "PasswordRecord",
    "RequestOutcome",
    "SessionRecord",
    "StaleToken",
    "Store",
    "StoreError",
    "StreamEntry",
    "StreamEvent",
    "TicketStore",
    "TokenRecord",
    "UnreadableEntry",
    "VersionConflict",
    "open_or_none",
    "stream_id_key",
]


class Store(
    Housekeeping,
    Claims,
    Locks,
    Requests,
    EventLog,
    Overrides,
    RoleOverrides,
    TokenRecords,
    TicketStore,
    PasswordRecords,
    SessionRecords,
):
    """The Redis schedule of one namespace (``Housekeeping`` brings ``Records``). Share one instance
    per process: the scripts are registered once."""
