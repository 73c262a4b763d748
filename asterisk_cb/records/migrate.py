"""``asterisk-cb db migrate``: the one-time creation of the marker table the writer needs.

The daemon creates nothing in a database by itself; the admin runs this once (idempotent: ``CREATE
TABLE IF NOT EXISTS``), as the DSN's user or with ``--dsn`` naming a user allowed to create tables, or
prints the SQL with ``--dry-run`` to run it by hand. The cel table is Asterisk's own and never touched.
"""

from __future__ import annotations

from collections.abc import Sequence

from asterisk_cb.records import sql
from asterisk_cb.records.connect import open_database
from asterisk_cb.records.settings import RecordsSite


def statements(site: RecordsSite) -> Sequence[str]:
    """The SQL ``migrate`` runs (what ``--dry-run`` prints)."""
    return sql.migration(site)


async def migrate(site: RecordsSite) -> None:
    """Run ``statements`` on ``site.dsn``; raises ``DatabaseDown`` with the reason (no password)."""
    database = open_database(site)
    try:
        await database.execute(statements(site))
    finally:
        await database.close()
