"""The database adapter for a ``[records]`` DSN's dialect."""

from __future__ import annotations

from asterisk_cb.records.database import CelDatabase
from asterisk_cb.records.mariadb import MariaDbCel
from asterisk_cb.records.postgres import PostgresCel
from asterisk_cb.records.settings import Dialect, RecordsSite


def open_database(site: RecordsSite) -> CelDatabase:
    """The adapter for ``site.dsn`` (which must be set); it connects on first use, and again after a
    failure, so a database that is down at start costs nothing but waiting rows."""
    assert site.dsn is not None
    if site.dsn.dialect is Dialect.POSTGRESQL:
        return PostgresCel(site)
    return MariaDbCel(site)
