"""Schema versions: check them cheaply, apply migrations with Alembic.

The migration scripts ship inside the package (``migrations/versions``).
Checking the version reads one row and needs no Alembic import, so every
command can afford it; :func:`upgrade` imports Alembic only when asked.
The version table is ``stockade_schema_version`` rather than Alembic's
default, so stockade can share a PostgreSQL database with an application
that has its own migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockade.errors import SchemaError, StoreError
from stockade.store.database import Database

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "VERSION_TABLE", "alembic_config", "check", "current", "ensure", "upgrade"]

#: The revision this stockade's code needs (a test checks it is Alembic's head).
HEAD = "0009"
VERSION_TABLE = "stockade_schema_version"
MIGRATIONS = Path(__file__).parent / "migrations"
#: Key of the PostgreSQL advisory lock that serializes concurrent upgrades.
_LOCK_KEY = 0x570CADE


def _revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    row = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    return str(row[0]) if row else None


def current(db: Database) -> str | None:
    """The schema revision of ``db``; ``None`` for a database without stockade's schema."""
    with db.read() as conn:
        return _revision(conn)


def check(db: Database) -> None:
    """Raise :class:`SchemaError` unless ``db`` is at :data:`HEAD`."""
    revision = current(db)
    if revision == HEAD:
        return
    if revision is None:
        raise SchemaError(f"{db.name} has no stockade schema: run `stockade db upgrade`")
    raise SchemaError(
        f"{db.name} has schema {revision}, this stockade needs {HEAD}: "
        "run `stockade db upgrade` (stop the workers first)"
    )


def ensure(db: Database) -> None:
    """Create the schema in a database that has none; refuse an old one.

    A brand-new store (an empty data directory, a fresh PostgreSQL database)
    needs no decision from anyone, so it is created on first use; an
    existing schema is only ever changed by `stockade db upgrade`.
    """
    revision = current(db)
    if revision is None:
        upgrade(db, only_if_empty=True)
        return
    check(db)


def alembic_config(conn: Connection) -> Config:
    """Alembic's configuration for running stockade's migrations on ``conn``
    (inside the caller's transaction)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def upgrade(db: Database, *, only_if_empty: bool = False) -> tuple[str | None, str]:
    """Apply every pending migration; ``(revision before, revision after)``.

    Concurrent callers are serialized (an advisory lock on PostgreSQL, the
    write lock on SQLite), so workers starting together create the schema once.
    """
    from alembic import command

    try:
        with db.transaction() as conn:
            if db.dialect == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))
            before = _revision(conn)
            if only_if_empty and before is not None:
                return before, before
            command.upgrade(alembic_config(conn), "head")
            after = _revision(conn)
    except StoreError:
        raise
    except Exception as exc:  # Alembic's own errors: a broken install, not the user's fault
        raise StoreError(f"cannot upgrade the schema of {db.name}: {exc}") from exc
    return before, after or HEAD
