"""Databases of the CEL writer's tests (fixtures re-exported by this folder's conftest): a PostgreSQL
and a MariaDB database of this test run's own on the host's servers (created here with the standard
cel table, dropped afterwards, never anything else touched), each with a least-rights user as the
README describes, reached through a TCP proxy a test can stop; plus callbacks and their events in the
lab Redis (the ``store`` fixture's namespace).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import aiomysql
import asyncpg
import pymysql
import pytest
from tcp_proxy import TcpProxy

from asterisk_cb.core import inputs, lifecycle
from asterisk_cb.core.settings import Settings
from asterisk_cb.records import migrate
from asterisk_cb.records.settings import RecordsSite, parse_dsn
from asterisk_cb.store import Store

REPO = Path(__file__).resolve().parents[3]
PG_ADMIN = os.environ.get("ACB_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
MARIADB_ROOT = os.environ.get("ACB_TEST_MARIADB_ROOT", "mysql://root@127.0.0.1:3306/")
PASSWORD = "p@ss/w:rd"  # the writer's password: needs percent-encoding in the DSN
FAST = {"connect_timeout": timedelta(seconds=1), "write_timeout": timedelta(seconds=2)}

MARIADB_CEL = """CREATE TABLE cel (
  id int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, eventtype varchar(30) NOT NULL,
  eventtime datetime(6) NOT NULL, cid_name varchar(80) NOT NULL, cid_num varchar(80) NOT NULL,
  cid_ani varchar(80) NOT NULL, cid_rdnis varchar(80) NOT NULL, cid_dnid varchar(80) NOT NULL,
  exten varchar(80) NOT NULL, context varchar(80) NOT NULL, channame varchar(80) NOT NULL,
  appname varchar(80) NOT NULL, appdata varchar(512) NOT NULL, amaflags int(11) NOT NULL,
  accountcode varchar(80) NOT NULL, peeraccount varchar(80) NOT NULL, uniqueid varchar(150) NOT NULL,
  linkedid varchar(150) NOT NULL, userfield varchar(255) NOT NULL, peer varchar(80) NOT NULL,
  extra varchar(512) NOT NULL, KEY linkedid (linkedid)
) ENGINE=InnoDB"""  # FreePBX-like: NOT NULL without defaults, so every column must be written


@dataclasses.dataclass
class Database:
    """One test database: the writer's site (least-rights user, through ``proxy``) and the admin's."""

    site: RecordsSite
    admin: RecordsSite
    proxy: TcpProxy

    async def count(self, where: str = "1 = 1") -> int:
        return int((await self.query(f"SELECT count(*) FROM cel WHERE {where}"))[0][0])

    async def query(self, text: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run ``text`` as the admin (``$1`` or ``%s`` placeholders, as the dialect wants)."""
        assert self.admin.dsn is not None
        if self.admin.dsn.dialect == "postgresql":
            connection = await asyncpg.connect(self.admin.dsn.url)
            try:
                return [tuple(row) for row in await connection.fetch(text, *params)]
            finally:
                await connection.close()
        connection = await _mysql(self.admin.dsn.url)
        try:
            async with connection.cursor() as cursor:
                await cursor.execute(text, tuple(params) or None)
                return list(await cursor.fetchall())
        finally:
            connection.close()


async def _mysql(url: str) -> aiomysql.Connection:
    dsn = parse_dsn(url.rstrip("/") + ("" if urlsplit(url).path.strip("/") else "/mysql"))
    assert dsn is not None
    return await aiomysql.connect(
        host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password, db=dsn.database, autocommit=True
    )


def _site(url: str, **changes: object) -> RecordsSite:
    return dataclasses.replace(RecordsSite(parse_dsn(url)), **FAST, **changes)  # type: ignore[arg-type]


def _with(url: str, user: str, port: int, database: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{user}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/{database}"


@pytest.fixture
async def postgres_db() -> AsyncIterator[Database]:
    name = f"acb_cel_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        await admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
        admin_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        setup = await asyncpg.connect(admin_url)
        try:
            await setup.execute((REPO / "scripts/lab/sql/cdr_cel.sql").read_text())
        finally:
            await setup.close()
        admin_site = _site(admin_url)
        await migrate.migrate(admin_site)
        setup = await asyncpg.connect(admin_url)
        try:
            grants = f"GRANT INSERT ON cel TO {name}; GRANT USAGE ON SEQUENCE cel_id_seq TO {name}; "
            await setup.execute(grants + f"GRANT INSERT, SELECT ON acb_cel_written TO {name}")
        finally:
            await setup.close()
        async with TcpProxy("127.0.0.1", urlsplit(PG_ADMIN).port or 5432) as proxy:
            yield Database(_site(_with(PG_ADMIN, name, proxy.port, name)), admin_site, proxy)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"DROP ROLE IF EXISTS {name}")
        await admin.close()


@pytest.fixture
async def mariadb_db() -> AsyncIterator[Database]:
    try:
        root = await _mysql(MARIADB_ROOT)
    except (OSError, pymysql.err.MySQLError) as error:
        pytest.skip(f"no MariaDB reachable at {MARIADB_ROOT} (set ACB_TEST_MARIADB_ROOT): {error}")
    name = f"acb_cel_{uuid.uuid4().hex[:10]}"
    user = f"'{name}'@'127.0.0.1'"
    try:
        async with root.cursor() as cursor:
            await cursor.execute(f"CREATE DATABASE {name}")
            await cursor.execute(f"CREATE TABLE {name}.{MARIADB_CEL.removeprefix('CREATE TABLE ')}")
            await cursor.execute(f"CREATE USER {user} IDENTIFIED BY %s", (PASSWORD,))
        admin_site = _site(MARIADB_ROOT.rstrip("/") + f"/{name}")
        await migrate.migrate(admin_site)
        async with root.cursor() as cursor:
            await cursor.execute(f"GRANT INSERT ON {name}.cel TO {user}")
            await cursor.execute(f"GRANT INSERT, SELECT, UPDATE ON {name}.acb_cel_written TO {user}")
        root_port = urlsplit(MARIADB_ROOT).port or 3306
        async with TcpProxy("127.0.0.1", root_port) as proxy:
            yield Database(_site(_with(MARIADB_ROOT, name, proxy.port, name)), admin_site, proxy)
    finally:
        async with root.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            await cursor.execute(f"DROP USER IF EXISTS {user}")
        root.close()


@pytest.fixture(params=["postgresql", "mariadb"])
def database(request: pytest.FixtureRequest) -> Database:
    """Each test of the writer runs on both: PostgreSQL (asyncpg) and MariaDB (aiomysql)."""
    return request.getfixturevalue(f"{request.param.replace('postgresql', 'postgres')}_db")


async def schedule_and_cancel(
    store: Store, count: int, origin: str = "1765000000.42", prefix: str = "c"
) -> list[str]:
    """``count`` callbacks from the call ``origin``, each created then cancelled: two events each."""
    now = datetime.now(UTC)
    ids = []
    for number in range(count):
        request = lifecycle.NewCallback(
            contact_number=f"+4930{number:06d}",
            agent="1001",
            due_at=now + timedelta(days=1),
            created_by="agent:1001",
            contact_name=f"Contact {number}",
            origin_uniqueid=f"{origin}1",
            origin_linkedid=origin,
        )
        created = lifecycle.create(request, f"{prefix}{number:05d}", now, Settings())
        callback = (await store.create(created.callback, created.events)).callback
        cancelled = lifecycle.step(callback, inputs.Cancel(by="cli:root"), now, Settings())
        await store.edit(callback, cancelled.callback, cancelled.events)
        ids.append(callback.id)
    return ids
