"""Finding jobs by what a person remembers of them: a prefix of the id, a
part of the task's name or of the command (``GET /api/v1/jobs?q=…``, the
dashboard's search box).

Bounded on any store size. An id prefix is a range of the primary key, and
ids sort by submission time, so it reaches every job. The text search is a
substring match (case-insensitive) over the newest :data:`SEARCH_WINDOW`
jobs only: those are a range of the primary key too (found by walking the
key's index from its end), so a search reads at most that many rows
however many jobs the store holds, and no index on the command is needed
(nor kept up at every submit).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockade.store import schema as t

__all__ = ["MAX_QUERY", "SEARCH_WINDOW", "matching", "window_start"]

#: The newest jobs a text search looks through.
SEARCH_WINDOW = 10_000
#: The longest search text taken.
MAX_QUERY = 200
_ID_CHARS = frozenset("0123456789abcdef")


def window_start(conn: Connection, window: int = SEARCH_WINDOW) -> str:
    """The id of the ``window``-th newest job, or ``''`` (every id is at or
    after it) when there are fewer: a walk of the primary key's index from
    its end. Read before the search, so that the search's plan sees a value
    (as a subquery it was a parameter PostgreSQL could not estimate, and it
    scanned the whole table)."""
    jobs = t.jobs
    nth = sa.select(jobs.c.id).order_by(jobs.c.id.desc()).offset(window - 1).limit(1)
    return str(conn.execute(nth).scalar() or "")


def matching(text: str, start: str) -> sa.ColumnElement[bool]:
    """The condition on ``jobs`` for search ``text``: its id starts with it
    (hexadecimal text only), or its id is at or after ``start``
    (:func:`window_start`) and its task or command holds it. Each is a range
    of the primary key."""
    jobs = t.jobs
    needle = text.strip()
    pattern = "%" + _escaped(needle) + "%"
    command = jobs.c.spec[("task", "command")].as_string()  # the argv as JSON text
    run = jobs.c.spec[("task", "run")].as_string()
    words = sa.or_(
        jobs.c.task.ilike(pattern, escape="\\"),
        run.ilike(pattern, escape="\\"),
        command.ilike(pattern, escape="\\"),
    )
    by_text = sa.and_(jobs.c.id >= start, words)
    prefix = needle.lower()
    if prefix and all(c in _ID_CHARS for c in prefix):  # ids are hexadecimal
        # A range rather than LIKE: an index range in every collation ("g"
        # sorts after every hexadecimal digit).
        return sa.or_(sa.and_(jobs.c.id >= prefix, jobs.c.id < prefix + "g"), by_text)
    return by_text


def _escaped(text: str) -> str:
    """``text`` with LIKE's wildcards taken literally (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
