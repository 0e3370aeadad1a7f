"""The schema revision this stockade's code needs, and where a store records its own.

Kept apart from :mod:`~stockade.store.migrate` so that a reader can compare
the two without importing SQLAlchemy or Alembic.
"""

from __future__ import annotations

__all__ = ["HEAD", "VERSION_TABLE"]

#: The revision this stockade's code needs (a test checks it is Alembic's head).
HEAD = "0014"
#: The table holding a store's revision (one row, Alembic's ``version_num``).
VERSION_TABLE = "stockade_schema_version"
