"""The SQL ``asterisk-cb calls`` runs on Asterisk's cdr table: which schema the table has, and the query
for the callback calls of a time span or of one originating call. Pure: text and parameters, no IO.

The schema is told from the table's columns (information_schema): ``calldate`` is the classic one
(the lab's, FreePBX's), ``start`` (with ``answer``, ``end``) the alembic one of contrib/ast-db-manage.
The filter is the CDR mark of ``[dialing]`` (``userfield = 'scheduled-callback'`` by default, README
"CDR: finding callback calls"); with ``cdr_mark_field = none`` it is ``acb_id <> ''``.
Names are checked (``settings.parse_table``) and quoted; values are always parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from asterisk_cb.core import cdr_marks
from asterisk_cb.core.cdr_marks import CdrMark, MarkField
from asterisk_cb.records.cel_rows import event_time
from asterisk_cb.records.settings import Dialect
from asterisk_cb.records.sql import quote

TIME_COLUMNS = ("calldate", "start")  # classic, alembic
# The standard columns the command reads; both schemas have them.
READ_COLUMNS = (
    "src", "dst", "channel", "dstchannel", "lastapp", "disposition", "billsec", "uniqueid", "linkedid",
    "sequence",
)  # fmt: skip
_COLUMNS = {
    Dialect.POSTGRESQL: "SELECT column_name, data_type FROM information_schema.columns "
    "WHERE table_name = $1 AND table_schema = COALESCE($2, current_schema())",
    Dialect.MYSQL: "SELECT column_name AS column_name, data_type AS data_type "
    "FROM information_schema.columns WHERE table_name = %s AND table_schema = COALESCE(%s, DATABASE())",
}


@dataclass(frozen=True)
class Query:
    text: str
    params: tuple[object, ...] = ()


@dataclass(frozen=True)
class CdrShape:
    """What the command needs to know of a cdr table: its time column, whether that column has a zone
    (PostgreSQL ``timestamptz``: compared with zoned times; else with naive times as Asterisk wrote
    them, local or UTC as ``usegmtime`` says), and which optional ``acb_*`` columns it has."""

    time_column: str
    zoned: bool
    acb_columns: frozenset[str] = field(default_factory=frozenset)

    def has(self, column: str) -> bool:
        return column in self.acb_columns


def columns_query(dialect: Dialect, table: str) -> Query:
    """The table's columns and their types: ``table`` is ``name`` or ``schema.name``."""
    schema, _, name = table.rpartition(".")
    return Query(_COLUMNS[dialect], (name, schema or None))


def shape_from_columns(types: Mapping[str, str]) -> CdrShape:
    """The shape of a table with these columns (name -> information_schema data_type); ValueError
    when it is no cdr table (no time column, or a standard column missing)."""
    lowered = {name.lower(): kind.lower() for name, kind in types.items()}
    time_column = next((name for name in TIME_COLUMNS if name in lowered), None)
    missing = [name for name in READ_COLUMNS if name not in lowered]
    if time_column is None or missing:
        lacks = ", ".join(missing if time_column else ["calldate or start", *missing])
        raise ValueError(f"it is not a cdr table (no {lacks})")
    return CdrShape(
        time_column=time_column,
        zoned=lowered[time_column] == "timestamp with time zone",
        acb_columns=frozenset(cdr_marks.COLUMNS) & lowered.keys(),
    )


@dataclass(frozen=True)
class CallsFilter:
    """Which rows: started in [since, until) (zoned times; None: no bound), and with ``linkedid`` the
    originating call's rows and every callback call requested on it (no time bound needed then)."""

    since: datetime | None = None
    until: datetime | None = None
    linkedid: str | None = None


class Sql:
    """Names quoted and placeholders in the dialect's style (``$1`` or ``%s``), values kept in order
    (the history's queries build theirs with it too)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.values: list[object] = []

    def add(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}" if self.dialect is Dialect.POSTGRESQL else "%s"

    def name(self, column: str) -> str:
        return quote(self.dialect, column)


def calls_query(
    dialect: Dialect,
    table: str,
    shape: CdrShape,
    mark: CdrMark,
    wanted: CallsFilter,
    *,
    usegmtime: bool = False,
    cel_table: str = "cel",
) -> Query:
    """The rows, oldest first (``sequence`` orders rows of one second); ValueError when nothing in the
    table tells a callback call (``cdr_mark_field = none`` and no ``acb_id`` column)."""
    sql = Sql(dialect)
    if wanted.linkedid is None:
        conditions = [_callback_rows(sql, shape, mark)]
    else:
        conditions = [_of_call(sql, shape, mark, wanted.linkedid, cel_table)]
    when = sql.name(shape.time_column)
    for bound, operator in ((wanted.since, ">="), (wanted.until, "<")):
        if bound is not None:
            value = bound if shape.zoned else event_time(bound, usegmtime)
            conditions.append(f"{when} {operator} {sql.add(value)}")
    return _rows(sql, table, shape, mark, conditions)


def callback_query(
    dialect: Dialect,
    table: str,
    shape: CdrShape,
    mark: CdrMark,
    callback_id: str,
    *,
    linkedids: Sequence[str],
) -> Query:
    """One callback's rows, oldest first: by its ``acb_id`` column when the table has it, else every
    row of its attempts' calls (``linkedids``: the channel ids the daemon gave the attempts' legs, one
    of which is each call's linkedid). ValueError when neither can tell (no column, no attempt)."""
    sql = Sql(dialect)
    if shape.has(cdr_marks.ID):
        condition = f"{sql.name(cdr_marks.ID)} = {sql.add(callback_id)}"
    elif linkedids:
        condition = f"{sql.name('linkedid')} IN ({', '.join(sql.add(linkedid) for linkedid in linkedids)})"
    else:
        raise ValueError(f"callback {callback_id} has placed no call and the cdr table has no acb_id column")
    return _rows(sql, table, shape, mark, [condition])


def _rows(sql: Sql, table: str, shape: CdrShape, mark: CdrMark, conditions: Sequence[str]) -> Query:
    """The rows ``cdr_calls.call_rows`` reads (``calltime``, the standard and acb_* columns, the mark)."""
    when = sql.name(shape.time_column)
    mark_column = [mark.field.value] if mark.field is not MarkField.NONE else []
    read = [*READ_COLUMNS, *sorted(shape.acb_columns), *mark_column]
    columns = ", ".join([f"{when} AS calltime", *(sql.name(column) for column in read)])
    text = (
        f"SELECT {columns} FROM {quote(sql.dialect, table)} WHERE {' AND '.join(conditions)} "
        f"ORDER BY {when}, {sql.name('sequence')}"
    )
    return Query(text, tuple(sql.values))


def _callback_rows(sql: Sql, shape: CdrShape, mark: CdrMark) -> str:
    if mark.field is not MarkField.NONE:
        return f"{sql.name(mark.field.value)} = {sql.add(mark.text)}"
    if shape.has(cdr_marks.ID):
        return f"{sql.name(cdr_marks.ID)} <> ''"
    raise ValueError("cdr_mark_field = none and the cdr table has no acb_id column: no row tells callbacks")


def _of_call(sql: Sql, shape: CdrShape, mark: CdrMark, linkedid: str, cel_table: str) -> str:
    """The originating call's rows, and the callback calls requested on it: found by their
    ``acb_origin_linkedid`` column, or without it by the CEL writer's rows on that linkedid, whose
    ``uniqueid`` is the linkedid of each attempt's calls (README "CEL: the callback's life").
    Placeholders are added in the order they appear (``%s`` is positional)."""
    origin = sql.add(linkedid)
    marked = _callback_rows(sql, shape, mark)
    if shape.has(cdr_marks.ORIGIN_LINKEDID):
        related = f"{sql.name(cdr_marks.ORIGIN_LINKEDID)} = {sql.add(linkedid)}"
    else:
        cel, kinds = quote(sql.dialect, cel_table), sql.add("CALLBACK%")
        events = f"SELECT uniqueid FROM {cel} WHERE eventtype LIKE {kinds} AND linkedid = {sql.add(linkedid)}"
        related = f"{sql.name('linkedid')} IN ({events})"
    return f"({sql.name('linkedid')} = {origin} OR ({marked} AND {related}))"
