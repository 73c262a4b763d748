"""One agent's recent calls, read from the cdr table Asterisk writes: the API's call history, from which
an agent creates a callback for a call it had.

An agent's call is a linkedid with at least one row whose ``channel`` or ``dstchannel`` is one of the
agent's devices: a channel is the device, ``-`` and Asterisk's hex counter (``PJSIP/1001-0000002a``),
so a device matches ``<device>-%`` and not ``<device>-%-%`` (``PJSIP/1002`` never takes the rows of
``PJSIP/1002-mobile``, nor ``PJSIP/100`` those of ``PJSIP/1001``); LIKE's own wildcards in a device
name are escaped, and every value is a parameter.

Two queries, the time bound and the limit in SQL. The first finds the calls: the agent's rows before
``before``, grouped by linkedid, newest first, ``LIMIT``; the second reads every row of those calls
(``linkedid IN``, the ``cdr_linkedid`` index of the lab's and FreePBX's tables). What makes the
first cheap on a table of millions of rows is an index on the device columns with the time:
``(channel, calldate)`` and ``(dstchannel, calldate)`` (``start`` for the alembic schema; on
PostgreSQL with ``varchar_pattern_ops`` unless the database's collation is C, or LIKE cannot use
it): it reads the agent's own rows by index. Without them the time column's index
(``cdr_calldate``) still bounds the rows read to those before ``before``.

A call's time is the first of the agent's rows in it (before ``before``): the next page's ``before``
is the oldest entry's ``started_at``, so no call is listed twice. The other rows of the call tell
the rest: the contact (a callback's ``Dial`` row has the number dialled), the queue, the mark.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from asterisk_cb.core import cdr_marks
from asterisk_cb.core.cdr_marks import CdrMark, MarkField
from asterisk_cb.records import cdr_calls, cdr_read, cdr_sql
from asterisk_cb.records.cdr_sql import CdrShape, Query, Sql
from asterisk_cb.records.cel_rows import event_time
from asterisk_cb.records.settings import Dialect, RecordsSite
from asterisk_cb.records.sql import quote

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# The columns the history reads; both schemas (classic, alembic) have them.
_COLUMNS = (
    "clid", "src", "dst", "channel", "dstchannel", "lastapp", "lastdata", "duration", "billsec",
    "disposition", "uniqueid", "linkedid", "sequence",
)  # fmt: skip
_CLID = re.compile(r'\s*"(?P<name>(?:[^"\\]|\\.)*)"\s*<(?P<number>[^>]*)>\s*\Z')
_CLID_BARE = re.compile(r"\s*(?P<name>[^<]*?)\s*<(?P<number>[^>]*)>\s*\Z")
_LIKE_ESCAPE = "!"
# The outcome a call had for the agent when several of its rows differ (a queue rang it twice).
_RANK = ("ANSWERED", "BUSY", "NO ANSWER", "FAILED", "CONGESTION")


class Direction(StrEnum):
    INBOUND = "inbound"  # the agent's device is the dialled side (dstchannel) of a call from outside
    OUTBOUND = "outbound"  # the agent's device is the calling side (channel), calling out
    INTERNAL = "internal"  # both sides are agents' devices


@dataclass(frozen=True)
class HistoryCall:
    """One call of an agent. ``uniqueid``: the first of the agent's rows; ``started_at`` aware; the
    contact is the other party (for an internal call, the other agent's phone); ``duration_s``,
    ``talk_s`` (billsec) and ``disposition`` those of the agent's row that went furthest."""

    linkedid: str
    uniqueid: str
    started_at: datetime
    direction: Direction
    contact_number: str
    contact_name: str | None
    duration_s: int
    talk_s: int
    disposition: str
    queue: str | None
    is_callback: bool


def parse_clid(clid: str) -> tuple[str | None, str]:
    """``"Ada Lovelace" <4930555>`` -> ("Ada Lovelace", "4930555"); ``"" <4930555>`` (the lab's inbound
    rows) -> (None, "4930555"); ``Ada <4930555>`` alike; text without ``<...>`` is the number alone."""
    found = _CLID.match(clid) or _CLID_BARE.match(clid)
    if found is None:
        return None, clid.strip()
    name = re.sub(r"\\(.)", r"\1", found["name"]).strip() if found.re is _CLID else found["name"]
    return name or None, found["number"].strip()


def device_of(channel: str) -> str:
    """``PJSIP/1001-0000002a`` -> ``PJSIP/1001``; a channel without the counter -> itself."""
    device, dash, _ = channel.rpartition("-")
    return device if dash else channel


def direction(row: Mapping[str, object], mine: Collection[str], agents_devices: Collection[str]) -> Direction:
    """The direction of one of the agent's rows: ``mine`` the agent's devices, ``agents_devices``
    every agent's (the agent's included)."""
    caller, called = device_of(_text(row, "channel")), device_of(_text(row, "dstchannel"))
    other = caller if called in mine else called
    if other in agents_devices:
        return Direction.INTERNAL
    return Direction.INBOUND if called in mine else Direction.OUTBOUND


def like_device(device: str) -> str:
    """The LIKE pattern of a device's channels (its wildcards and the escape character escaped)."""
    escaped = re.sub(r"([%_!])", rf"{_LIKE_ESCAPE}\1", device)
    return f"{escaped}-%"


def calls_query(
    dialect: Dialect,
    table: str,
    shape: CdrShape,
    devices: Sequence[str],
    *,
    limit: int,
    before: datetime | None = None,
    usegmtime: bool = False,
) -> Query:
    """(linkedid, started) of the agent's ``limit`` newest calls started before ``before``."""
    sql = Sql(dialect)
    when = sql.name(shape.time_column)
    conditions = [f"({_mine(sql, devices)})"]
    if before is not None:
        conditions.append(f"{when} < {sql.add(before if shape.zoned else event_time(before, usegmtime))}")
    linkedid = sql.name("linkedid")
    text = (
        f"SELECT {linkedid} AS linkedid, MIN({when}) AS started FROM {quote(dialect, table)} "
        f"WHERE {' AND '.join(conditions)} GROUP BY {linkedid} "
        f"ORDER BY started DESC, {linkedid} DESC LIMIT {sql.add(limit)}"
    )
    return Query(text, tuple(sql.values))


def _mine(sql: Sql, devices: Sequence[str]) -> str:
    """A row whose channel or dstchannel is one of ``devices``."""
    escape = f"ESCAPE '{_LIKE_ESCAPE}'"
    matches = []
    for column in ("channel", "dstchannel"):
        name = sql.name(column)
        for device in devices:
            pattern = like_device(device)
            own, longer = sql.add(pattern), sql.add(f"{pattern}-%")
            matches.append(f"({name} LIKE {own} {escape} AND {name} NOT LIKE {longer} {escape})")
    return " OR ".join(matches)


def rows_query(
    dialect: Dialect, table: str, shape: CdrShape, mark: CdrMark, linkedids: Sequence[str]
) -> Query:
    """Every row of these calls, oldest first, with the mark's column and ``acb_id`` when there."""
    sql = Sql(dialect)
    when = sql.name(shape.time_column)
    extra = [mark.field.value] if mark.field is not MarkField.NONE else []
    extra += [cdr_marks.ID] if shape.has(cdr_marks.ID) else []
    columns = ", ".join([f"{when} AS calltime", *(sql.name(column) for column in (*_COLUMNS, *extra))])
    places = ", ".join(sql.add(linkedid) for linkedid in linkedids)
    text = (
        f"SELECT {columns} FROM {quote(dialect, table)} WHERE {sql.name('linkedid')} IN ({places}) "
        f"ORDER BY {when}, {sql.name('sequence')}"
    )
    return Query(text, tuple(sql.values))


def aware(at: datetime, usegmtime: bool) -> datetime:
    """A time read from the table, with its zone: a naive one is UTC with ``usegmtime``, else this
    host's local time (what Asterisk wrote, ``cel_rows.event_time``'s inverse)."""
    if at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC) if usegmtime else at.astimezone()


@dataclass(frozen=True)
class Reading:
    """What turning rows into calls needs: the agent's devices, every agent's, the mark."""

    mine: frozenset[str]
    agents_devices: frozenset[str]
    mark: CdrMark
    usegmtime: bool = False


def history_calls(
    started: Sequence[tuple[str, datetime]], rows: Sequence[Mapping[str, object]], reading: Reading
) -> list[HistoryCall]:
    """The calls in ``started``'s order (the first query's), from ``rows`` (the second's)."""
    by_call: dict[str, list[Mapping[str, object]]] = {}
    for row in rows:
        by_call.setdefault(_text(row, "linkedid"), []).append(row)
    calls = (_call(linkedid, at, by_call.get(linkedid, []), reading) for linkedid, at in started)
    return [call for call in calls if call is not None]


def _call(
    linkedid: str, started: datetime, rows: Sequence[Mapping[str, object]], reading: Reading
) -> HistoryCall | None:
    mine = [row for row in rows if _is_mine(row, reading.mine)]
    if not mine:  # the rows went between the two queries (a purge): nothing to show
        return None
    best = min(mine, key=_rank)
    way = direction(mine[0], reading.mine, reading.agents_devices)
    name, number = _contact(mine[0], rows, way, reading.mine)
    return HistoryCall(
        linkedid=linkedid,
        uniqueid=_text(mine[0], "uniqueid"),
        started_at=aware(started, reading.usegmtime),
        direction=way,
        contact_number=number,
        contact_name=name,
        duration_s=_number(best, "duration"),
        talk_s=_number(best, "billsec"),
        disposition=_text(best, "disposition"),
        queue=_queue(mine) or _queue(rows),
        is_callback=any(_is_marked(row, reading.mark) for row in rows),
    )


def _is_mine(row: Mapping[str, object], mine: Collection[str]) -> bool:
    return device_of(_text(row, "channel")) in mine or device_of(_text(row, "dstchannel")) in mine


def _rank(row: Mapping[str, object]) -> int:
    disposition = _text(row, "disposition")
    return _RANK.index(disposition) if disposition in _RANK else len(_RANK)


def _contact(
    row: Mapping[str, object], rows: Sequence[Mapping[str, object]], way: Direction, mine: Collection[str]
) -> tuple[str | None, str]:
    """(name, number) of the other party: the caller's ID when the agent was called, else the number
    dialled (a callback's or a routed call's ``Dial`` row further down the call has the real one: the
    agent's own row of a callback shows ``s``)."""
    if device_of(_text(row, "dstchannel")) in mine:
        name, number = parse_clid(_text(row, "clid"))
        return name, number or _text(row, "src")
    if way is Direction.INTERNAL:
        return None, _text(row, "dst")
    dialled = (
        _text(other, "dst") for other in rows if other is not row and _text(other, "lastapp") == "Dial"
    )
    own = _text(row, "dst")
    return None, own if own.lstrip("+").isdigit() else next(dialled, own)


def _queue(rows: Sequence[Mapping[str, object]]) -> str | None:
    """The queue of the first ``Queue`` row: its first argument (``support,,,,300,,acb-queue-member``)."""
    data = next((_text(row, "lastdata") for row in rows if _text(row, "lastapp") == "Queue"), "")
    return data.split(",")[0].strip() or None


def _is_marked(row: Mapping[str, object], mark: CdrMark) -> bool:
    """The callback CDR mark (a bridged row joins two userfields with ``;``), or an ``acb_id``."""
    if _text(row, cdr_marks.ID):
        return True
    return mark.field is not MarkField.NONE and mark.text in _text(row, mark.field.value).split(";")


def _text(row: Mapping[str, object], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value)


def _number(row: Mapping[str, object], column: str) -> int:
    return int(_text(row, column) or 0)


class CdrHistory:
    """The reader over ``[records]``: ``site.dsn`` must be set (the service tells a deployment without
    one); ``agents`` agent -> its fixed devices (``[agents]``). Raises ``DatabaseDown`` and
    ``cdr_read.CdrUnreadable`` as ``asterisk-cb calls`` does."""

    def __init__(self, site: RecordsSite, mark: CdrMark, agents: Mapping[str, Sequence[str]]) -> None:
        assert site.dsn is not None
        self._site = site
        self._dialect = site.dsn.dialect
        self._mark = mark
        self._device_agents = cdr_calls.device_agents(agents)

    async def calls(
        self, devices: Sequence[str], *, limit: int = DEFAULT_LIMIT, before: datetime | None = None
    ) -> list[HistoryCall]:
        """The calls of an agent with these devices, newest first (``limit`` 1-200)."""
        if not 1 <= limit <= MAX_LIMIT or not devices:
            raise ValueError(f"limit {limit} is not 1-{MAX_LIMIT}, or no device")
        site, table = self._site, self._site.cdr_table
        async with cdr_read.opened(site) as (database, shape):
            query = calls_query(
                self._dialect, table, shape, devices, limit=limit, before=before, usegmtime=site.usegmtime
            )
            started = [
                (str(row["linkedid"]), _time(row["started"]))
                for row in await database.fetch(query.text, query.params)
            ]
            if not started:
                return []
            query = rows_query(self._dialect, table, shape, self._mark, [linkedid for linkedid, _ in started])
            rows = await database.fetch(query.text, query.params)
        everyone = frozenset(self._device_agents) | set(devices)
        return history_calls(started, rows, Reading(frozenset(devices), everyone, self._mark, site.usegmtime))

    async def call(self, devices: Sequence[str], linkedid: str) -> HistoryCall | None:
        """The call ``linkedid`` as the history lists it for an agent with these devices; None when
        none of them took part (or no such call)."""
        site = self._site
        async with cdr_read.opened(site) as (database, shape):
            query = rows_query(self._dialect, site.cdr_table, shape, self._mark, [linkedid])
            rows = await database.fetch(query.text, query.params)
        mine = frozenset(devices)
        started = [_time(row["calltime"]) for row in rows if _is_mine(row, mine)]
        if not started:
            return None
        reading = Reading(mine, frozenset(self._device_agents) | mine, self._mark, site.usegmtime)
        return history_calls([(linkedid, min(started))], rows, reading)[0]

    async def callback_calls(self, callback_id: str, linkedids: Sequence[str]) -> list[cdr_calls.CallRow]:
        """One callback's rows (``cdr_sql.callback_query``) as ``asterisk-cb calls`` reads them, their
        times made aware like the history's; none when it placed no call and the table has no
        ``acb_id`` column."""
        site = self._site
        async with cdr_read.opened(site) as (database, shape):
            try:
                query = cdr_sql.callback_query(
                    self._dialect, site.cdr_table, shape, self._mark, callback_id, linkedids=linkedids
                )
            except ValueError:
                return []
            rows = await database.fetch(query.text, query.params)
        calls = cdr_calls.call_rows(rows, self._device_agents, usegmtime=site.usegmtime)
        return [dataclasses.replace(call, time=aware(call.time, site.usegmtime)) for call in calls]


def _time(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value
