"""Opening an existing SQLite store on the driver alone, without SQLAlchemy.

The CLI's fast reads and submits (:mod:`~stockade.store.lite`) and a
pipeline run's recorder (:mod:`~stockade.store.literuns`) both start here:
:func:`connect_existing` says whether the options name a SQLite store the
driver may serve, and connects to it. Kept apart from those modules so
that ``stockade run`` imports none of the job records the CLI's reads need.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from stockade.store.revision import HEAD, VERSION_TABLE
from stockade.store.url import sqlite_file

__all__ = ["connect_existing"]


def _connect(path: Path, *, any_thread: bool = False) -> sqlite3.Connection | None:
    """A connection to the existing store at ``path`` if its schema is this
    stockade's; ``None`` otherwise (nothing is created). ``any_thread``: it
    may be used from threads other than this one (one at a time)."""
    if not path.is_file():
        return None
    uri = f"file:{quote(str(path.absolute()))}?mode=rw"
    try:
        conn = sqlite3.connect(
            uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=not any_thread
        )
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    except sqlite3.Error:
        row = None
    if row is None or row[0] != HEAD:
        conn.close()
        return None
    # As the full store's connections (a submit writes on this one).
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _private(path: Path, database_url: str | None) -> bool:
    """Tighten the store's files, and its data directory when it is the default
    store's, as opening the full store does (see :mod:`stockade.private`);
    ``False`` when that cannot be done here (the full store says why)."""
    from stockade.private import private_dir, private_file

    try:
        if not (database_url or os.environ.get("STOCKADE_DATABASE_URL")):
            private_dir(path.parent)
        for name in (path, f"{path}-wal", f"{path}-shm"):
            private_file(name, create=False)
    except OSError:
        return False
    return True


def connect_existing(
    database_url: str | None, data_dir: str | os.PathLike[str] | None, *, any_thread: bool = False
) -> tuple[Path, sqlite3.Connection] | None:
    """The SQLite file the options name and a connection to it, when the
    driver alone may serve it: an existing store of this stockade's schema,
    made private, and ``$STOCKADE_LITE`` is not ``0``; ``None`` otherwise
    (the full store must). ``any_thread`` as :func:`_connect` takes it."""
    path = sqlite_file(database_url, data_dir)
    if (
        path is None
        or os.environ.get("STOCKADE_LITE", "1") == "0"
        or not _private(path, database_url)
    ):
        return None
    conn = _connect(path, any_thread=any_thread)
    return None if conn is None else (path, conn)
