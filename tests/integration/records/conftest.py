"""The CEL writer's database fixtures. They live in ``cel_databases``, which the tests import too: a
module named ``conftest`` is not importable by name once pytest collects more than one folder."""

from cel_databases import database, mariadb_db, postgres_db

__all__ = ["database", "mariadb_db", "postgres_db"]
