"""An agent's call history and a callback's CDR rows on real databases: PostgreSQL and MariaDB, each with
the classic cdr schema (``calldate``, acb_* columns) and the alembic one (``start``, none), read as the
least-rights user through a proxy the test can cut, with the callbacks in the lab's Redis.

The rows are shaped like those the lab's Asterisk 22.10 wrote for `pbx-lab call support` (a ringall
queue: one row per member rung, the caller's channel as ``channel``, clid ``"" <number>``, lastdata
``support,,,,300,,acb-queue-member``), `pbx-lab dial 1001 1002` (clid ``"Agent 1001" <1001>``,
lastdata ``PJSIP/1002,30``), `pbx-lab dial 1002 4930777` (dcontext callback-outbound-route, lastdata
``PJSIP/4930777@contacts,120``) and `pbx-lab call 1001`, read back from its cdr tables; the callback's
two rows as the README's "Which rows, with what" table gives them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from cdr_tables import create_tables
from cel_databases import Database

from asterisk_cb.core import lifecycle
from asterisk_cb.core.cdr_marks import CdrMark
from asterisk_cb.core.model import Attempt, Callback, Leg, LegRole, Phase
from asterisk_cb.core.settings import Settings
from asterisk_cb.records.history import CdrHistory, Direction, HistoryCall
from asterisk_cb.service_access import Actor, ErrorCode, Permission, ServiceError
from asterisk_cb.service_history import HistoryService
from asterisk_cb.store import Store
from asterisk_cb.telephony.availability import AgentSpec

AT = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
MARK = "scheduled-callback"
QUEUE_CALL, OUT_CALL, INTERNAL_CALL, DIRECT_CALL = (
    "1796654488.0",
    "1796654488.1",
    "1796654662.8",
    "1796654662.10",
)
CALLBACK_CALL, SHORT_DEVICE_CALL, OTHER_AGENT_CALL = "acb-k3-1-agent", "1796655000.20", "1796655000.30"
MOBILE_CALL, WILDCARD_CALL = "1796655000.40", "1796653000.1"
AGENTS = {
    "1001": AgentSpec("1001", devices=("PJSIP/1001",)),
    "1002": AgentSpec("1002", devices=("PJSIP/1002",)),
    "1002m": AgentSpec("1002m", devices=("PJSIP/1002-mobile",)),  # its channels start as 1002's do
    "1003": AgentSpec("1003", devices=("PJSIP/1003",)),
    "100": AgentSpec("100", devices=("PJSIP/100",)),  # a prefix of 1001's device
    "10_1": AgentSpec("10_1", devices=("PJSIP/10_1",)),  # LIKE's "_" would match PJSIP/1001
    "evil": AgentSpec("evil", devices=("PJSIP/x' OR '1'='1",)),
    "hotdesk": AgentSpec("hotdesk", member_name="Alice"),
}


def _row(minute: int, linkedid: str, channel: str, dstchannel: str, **columns: object) -> dict[str, object]:
    row: dict[str, object] = {"at": AT + timedelta(minutes=minute), "clid": "", "src": "", "dst": "",
                              "lastapp": "Dial", "lastdata": "", "disposition": "ANSWERED", "duration": 0,
                              "billsec": 0, "userfield": "", "uniqueid": linkedid,
                              "sequence": minute}  # fmt: skip
    return row | {"linkedid": linkedid, "channel": channel, "dstchannel": dstchannel, **columns}


QUEUE = {"clid": '"" <4930555123>', "src": "4930555123", "dst": "support", "lastapp": "Queue",
         "lastdata": "support,,,,300,,acb-queue-member"}  # fmt: skip
ROWS = [
    _row(-5, WILDCARD_CALL, "PJSIP/10_1-00000001", "PJSIP/contacts-00000002", src="10_1", dst="4930444"),
    _row(0, QUEUE_CALL, "PJSIP/lab-caller-00000000", "PJSIP/1003-00000003", **QUEUE, duration=3, billsec=3),
    _row(0, QUEUE_CALL, "PJSIP/lab-caller-00000000", "PJSIP/1001-00000004", **QUEUE, disposition="NO ANSWER"),
    _row(5, OUT_CALL, "PJSIP/1001-00000001", "PJSIP/contacts-00000002", clid='"Agent 1001" <1001>',
         src="1001", dst="4930777", lastdata="PJSIP/4930777@contacts,120", duration=12, billsec=10),
    _row(10, INTERNAL_CALL, "PJSIP/1001-00000006", "PJSIP/1002-00000007", clid='"Agent 1001" <1001>',
         src="1001", dst="1002", lastdata="PJSIP/1002,30", duration=2, billsec=2),
    _row(15, DIRECT_CALL, "PJSIP/lab-caller-00000008", "PJSIP/1001-00000009",
         clid='"Ada Lovelace" <+4930555>', src="+4930555", dst="1001", lastdata="PJSIP/1001,30", duration=7,
         billsec=6),
    _row(20, CALLBACK_CALL, "PJSIP/1001-0000001a", "Local/4930777@callback-outbound-00a1;1", dst="s",
         lastapp="Stasis", userfield=MARK, duration=25, billsec=20, acb_id="k3", acb_leg="agent"),
    _row(20, CALLBACK_CALL, "Local/4930777@callback-outbound-00a1;2", "PJSIP/contacts-0000001b",
         src="4930777", dst="4930777", userfield=MARK, billsec=12, uniqueid="acb-k3-1-agent;2", acb_id="k3",
         acb_leg="contact"),
    _row(25, SHORT_DEVICE_CALL, "PJSIP/100-0000000c", "PJSIP/contacts-0000000d", src="100", dst="4930111"),
    _row(30, OTHER_AGENT_CALL, "PJSIP/1002-0000000e", "PJSIP/contacts-0000000f", src="1002", dst="4930222"),
    _row(35, MOBILE_CALL, "PJSIP/1002-mobile-00000010", "PJSIP/contacts-00000011", src="1002", dst="4930333"),
]  # fmt: skip
NEWEST_FIRST_1001 = [CALLBACK_CALL, DIRECT_CALL, INTERNAL_CALL, OUT_CALL, QUEUE_CALL]
AGENT_1001 = Actor("1001", frozenset({Permission.SCHEDULE}))
SUPERVISOR = Actor("sup", frozenset({Permission.SCHEDULE, Permission.VIEW_ALL}))


@pytest.fixture(params=["cdr", "cdr_alembic"])
async def reader(request: pytest.FixtureRequest, database: Database) -> AsyncIterator[CdrHistory]:
    await create_tables(database, ROWS)
    site = dataclasses.replace(database.site, cdr_table=request.param)
    yield CdrHistory(site, CdrMark(), {agent: spec.devices for agent, spec in AGENTS.items()})


@pytest.fixture
def service(reader: CdrHistory, store: Store) -> HistoryService:
    return HistoryService(reader, store, AGENTS)


async def test_an_agents_calls_newest_first_one_per_call(reader: CdrHistory) -> None:
    calls = await reader.calls(["PJSIP/1001"])
    assert [call.linkedid for call in calls] == NEWEST_FIRST_1001
    by_id = {call.linkedid: call for call in calls}
    assert by_id[QUEUE_CALL] == HistoryCall(
        QUEUE_CALL, QUEUE_CALL, AT, Direction.INBOUND, "4930555123", None, 0, 0, "NO ANSWER", "support",
        is_callback=False,
    )  # fmt: skip
    assert by_id[OUT_CALL] == HistoryCall(
        OUT_CALL, OUT_CALL, AT + timedelta(minutes=5), Direction.OUTBOUND, "4930777", None, 12, 10,
        "ANSWERED", None, is_callback=False,
    )  # fmt: skip
    internal, direct, callback = by_id[INTERNAL_CALL], by_id[DIRECT_CALL], by_id[CALLBACK_CALL]
    assert (internal.direction, internal.contact_number) == (Direction.INTERNAL, "1002")
    assert (direct.direction, direct.contact_name, direct.contact_number) == (
        Direction.INBOUND, "Ada Lovelace", "+4930555",
    )  # fmt: skip
    assert (callback.direction, callback.contact_number, callback.is_callback) == (
        Direction.OUTBOUND,
        "4930777",
        True,
    )
    assert (callback.uniqueid, callback.duration_s, callback.talk_s) == (CALLBACK_CALL, 25, 20)
    assert all(call.started_at.utcoffset() is not None for call in calls)


async def test_pages_by_before_and_limit(reader: CdrHistory) -> None:
    seen: list[str] = []
    before: datetime | None = None
    for _ in range(4):
        page = await reader.calls(["PJSIP/1001"], limit=2, before=before)
        seen += [call.linkedid for call in page]
        if len(page) < 2:
            break
        before = page[-1].started_at
    assert seen == NEWEST_FIRST_1001
    assert await reader.calls(["PJSIP/1001"], before=AT) == []


async def test_other_agents_and_prefix_devices_are_not_mixed(reader: CdrHistory) -> None:
    assert [call.linkedid for call in await reader.calls(["PJSIP/100"])] == [SHORT_DEVICE_CALL]
    other = await reader.calls(["PJSIP/1002"])
    assert [call.linkedid for call in other] == [OTHER_AGENT_CALL, INTERNAL_CALL]
    assert (other[1].direction, other[1].contact_name, other[1].contact_number) == (
        Direction.INTERNAL, "Agent 1001", "1001",
    )  # fmt: skip
    # "_" is no wildcard: the newest call SQL finds for PJSIP/10_1 is its own, not one of PJSIP/1001's
    assert [call.linkedid for call in await reader.calls(["PJSIP/10_1"], limit=1)] == [WILDCARD_CALL]
    assert [call.linkedid for call in await reader.calls(["PJSIP/1002-mobile"])] == [MOBILE_CALL]


async def test_an_injection_in_a_device_name_is_a_harmless_value(
    reader: CdrHistory, database: Database
) -> None:
    assert await reader.calls(["PJSIP/x' OR '1'='1", "PJSIP/1001'; DROP TABLE cdr; --"]) == []
    assert len(await database.query("SELECT linkedid FROM cdr")) == len(ROWS)


async def test_the_service_links_the_callbacks_the_actor_may_see(
    service: HistoryService, store: Store
) -> None:
    own = await _callback(store, "h1001", "1001", DIRECT_CALL)
    others = await _callback(store, "h1002", "1002", DIRECT_CALL)
    mine = {entry.call.linkedid: entry.callback_ids for entry in await service.calls(AGENT_1001, "1001")}
    assert mine[DIRECT_CALL] == (own.id,) and mine[QUEUE_CALL] == ()
    everyone = await service.calls(SUPERVISOR, "1001", limit=2)
    assert [entry.callback_ids for entry in everyone] == [(), tuple(sorted((own.id, others.id)))]


async def test_the_service_refuses_what_the_actor_may_not_ask(service: HistoryService) -> None:
    refusals = [
        (service.calls(AGENT_1001, "1002"), ErrorCode.FORBIDDEN, None),
        (service.calls(AGENT_1001, "nobody"), ErrorCode.FORBIDDEN, None),  # not told whether it exists
        (service.calls(SUPERVISOR, "1001' OR '1'='1"), ErrorCode.INVALID, "agent"),
        (service.calls(SUPERVISOR, "nobody"), ErrorCode.INVALID, "agent"),
        (service.calls(SUPERVISOR, "hotdesk"), ErrorCode.INVALID, "agent"),
        (service.calls(AGENT_1001, "1001", limit=0), ErrorCode.INVALID, "limit"),
        (service.calls(AGENT_1001, "1001", limit=201), ErrorCode.INVALID, "limit"),
    ]
    for call, code, field in refusals:
        with pytest.raises(ServiceError) as refused:
            await call
        assert (refused.value.code, refused.value.field) == (code, field)
    assert len(await service.calls(SUPERVISOR, "1002", limit=200)) == 2


async def test_a_callbacks_cdr_rows(service: HistoryService, store: Store) -> None:
    callback = await _callback(store, "k3", "1001", QUEUE_CALL)
    placed = dataclasses.replace(callback, attempts=(_attempt("k3-1", CALLBACK_CALL),))
    rows = await service.callback_cdr(AGENT_1001, placed)
    assert [(row.linkedid, row.leg, row.billsec, row.agent) for row in rows] == [
        (CALLBACK_CALL, "agent", 20, "1001"),
        (CALLBACK_CALL, "contact", 12, "1001"),
    ]
    with pytest.raises(ServiceError) as refused:
        await service.callback_cdr(Actor("1002", frozenset()), placed)
    assert refused.value.code is ErrorCode.FORBIDDEN


async def test_a_database_down_or_none_is_unavailable(
    service: HistoryService, database: Database, store: Store
) -> None:
    await database.proxy.stop()
    with pytest.raises(ServiceError) as refused:
        await service.calls(AGENT_1001, "1001")
    assert refused.value.code is ErrorCode.UNAVAILABLE
    assert "p@ss" not in refused.value.message and "w:rd" not in refused.value.message
    with pytest.raises(ServiceError) as none:
        await HistoryService(None, store, AGENTS).calls(AGENT_1001, "1001")
    assert none.value.code is ErrorCode.UNAVAILABLE and "[records] dsn" in none.value.message


async def _callback(store: Store, callback_id: str, agent: str, origin: str) -> Callback:
    request = lifecycle.NewCallback(
        contact_number="+4930555",
        agent=agent,
        due_at=datetime.now(UTC) + timedelta(days=1),
        created_by=f"agent:{agent}",
        origin_uniqueid=origin,
        origin_linkedid=origin,
    )
    created = lifecycle.create(request, callback_id, datetime.now(UTC), Settings())
    return (await store.create(created.callback, created.events)).callback


def _attempt(attempt_id: str, agent_channel: str) -> Attempt:
    legs = (Leg(LegRole.AGENT, agent_channel, endpoint="PJSIP/1001"),)
    return Attempt(attempt_id, Phase.AGENT, AT + timedelta(minutes=20), legs)
