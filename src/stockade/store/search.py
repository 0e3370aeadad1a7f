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

from typing import Any

import sqlalchemy as sa

from stockade.store import schema as t

__all__ = ["MAX_QUERY", "SEARCH_WINDOW", "matching"]

#: The newest jobs a text search looks through.
SEARCH_WINDOW = 10_000
#: The longest search text taken.
MAX_QUERY = 200


def matching(text: str, window: int = SEARCH_WINDOW) -> sa.ColumnElement[bool]:
    """The condition on ``jobs`` for search ``text``: its id starts with it,
    or (among the newest ``window`` jobs) its task or command holds it."""
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
    recent = jobs.c.id >= _oldest_of_newest(window)
    by_text = sa.and_(recent, words)
    if needle.isalnum() and needle.isascii():
        return sa.or_(jobs.c.id.startswith(needle.lower(), autoescape=True), by_text)
    return by_text


def _oldest_of_newest(window: int) -> Any:
    """The id of the ``window``-th newest job, or ``''`` (every id is after it)
    when there are fewer: a walk of the primary key's index from its end."""
    newest = t.jobs.alias("newest")  # not the outer query's row: an uncorrelated subquery
    nth = (
        sa.select(newest.c.id).order_by(newest.c.id.desc()).offset(window - 1).limit(1)
    ).scalar_subquery()
    return sa.func.coalesce(nth, "")


def _escaped(text: str) -> str:
    """``text`` with LIKE's wildcards taken literally (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
