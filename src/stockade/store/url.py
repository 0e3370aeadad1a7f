"""Which database a command talks to, and how to name it safely.

Precedence: ``--database-url``, then ``$STOCKADE_DATABASE_URL``, then the
SQLite file ``stockade.db`` in the data directory (``--data-dir``, then
``$STOCKADE_DATA_DIR``, then ``./.stockade``). PostgreSQL URLs may be written
``postgresql://`` or ``postgres://``; they are driven by psycopg 3.

SQLAlchemy is imported only to parse a URL (:func:`resolve_url`):
:func:`sqlite_file` names the SQLite file of the common cases without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from stockade.errors import StoreURLError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["DB_FILE", "data_dir", "resolve_url", "safe_url", "sqlite_file"]

#: The SQLite file inside a data directory.
DB_FILE = "stockade.db"

_PG_NAMES = ("postgresql", "postgres", "postgresql+psycopg")


def data_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """``given``, else ``$STOCKADE_DATA_DIR``, else ``./.stockade`` (absolute)."""
    return Path(given or os.environ.get("STOCKADE_DATA_DIR") or ".stockade").absolute()


def resolve_url(
    database_url: str | None = None, data_directory: str | os.PathLike[str] | None = None
) -> URL:
    """The SQLAlchemy URL to use, normalized to a driver stockade ships with.

    Raises :class:`StoreURLError` for text that is not a URL or names a
    database kind stockade does not support.
    """
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    text = database_url or os.environ.get("STOCKADE_DATABASE_URL")
    if not text:
        return URL.create("sqlite", database=str(data_dir(data_directory) / DB_FILE))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise StoreURLError(
            f"database URL {_hide(text)!r} is not valid: use sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        ) from exc
    if url.drivername in _PG_NAMES:
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        return url.set(drivername="sqlite")
    raise StoreURLError(
        f"unsupported database {url.drivername!r} in {safe_url(url)!r}: "
        "use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    )


#: URL prefixes :func:`sqlite_file` reads without a parser.
_SQLITE_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")


def sqlite_file(
    database_url: str | None = None, data_directory: str | os.PathLike[str] | None = None
) -> Path | None:
    """The SQLite file :func:`resolve_url` names, in the cases plain to see
    without parsing a URL (none given, or ``sqlite:///PATH`` with no
    escapes or query); ``None`` for anything else, even another SQLite URL."""
    text = database_url or os.environ.get("STOCKADE_DATABASE_URL")
    if not text:
        return data_dir(data_directory) / DB_FILE
    for prefix in _SQLITE_PREFIXES:
        path = text.removeprefix(prefix)
        if path != text and path and not any(c in path for c in "%?#") and path != ":memory:":
            return Path(path)
    return None


def safe_url(url: URL) -> str:
    """The URL as text with any password hidden, for messages."""
    return url.render_as_string(hide_password=True).replace("+psycopg", "")


def _hide(text: str) -> str:
    """Best effort at hiding a password in text that did not parse as a URL."""
    head, sep, tail = text.rpartition("@")
    if not sep or "://" not in head:
        return text
    scheme, _, userinfo = head.partition("://")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}" if ":" in userinfo else text
