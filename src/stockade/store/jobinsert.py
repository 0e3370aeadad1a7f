"""New jobs written to SQLite straight on the driver: one ``executemany`` per table.

Through Core's compiled statement (:mod:`~stockade.store.direct`) each row's
parameters go through the JSON columns' bind processors one by one: for a
bulk submit of 2,000 jobs that was 2,000 dumps of the same task spec, the
larger part of the call. Here the rows of :func:`~stockade.store.rows.job_row`
(the one source of the columns, :data:`~stockade.store.rows.JOB_COLUMNS`) are
turned into the driver's values directly, each distinct spec dumped once
per call. Used by the full store's enqueue on SQLite and by the CLI's
SQLAlchemy-free submit (:mod:`~stockade.store.lite`); a test checks the text
and values against Core's compilation of the same INSERT.

No SQLAlchemy here: ``stockade submit`` imports this module.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any

from stockade.store.records import NewJob
from stockade.store.rows import JOB_COLUMNS, job_row

__all__ = ["INSERT_JOB", "INSERT_QUEUED", "dumps", "job_rows", "job_values", "write_jobs"]

#: The INSERT of one job row, as Core compiles ``jobs.insert()`` of :data:`JOB_COLUMNS`.
INSERT_JOB = (
    f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' * len(JOB_COLUMNS))})"
)
#: The ``queued`` event of a new job.
INSERT_QUEUED = "INSERT INTO events (job_id, kind, time) VALUES (?, ?, ?)"

_PICK = operator.itemgetter(*JOB_COLUMNS)


def _encoder() -> Callable[[Any], str]:
    """``json.dumps`` with its default settings, without building its C
    encoder again at each call (what ``dumps`` does: over half its cost on a
    small input). Inputs come from JSON, so they cannot be circular: the
    circular check is left out. ``json.dumps`` itself where the C encoder
    is missing."""
    made: Any = getattr(json.encoder, "c_make_encoder", None)
    if made is None:
        return json.dumps
    encode = made(
        None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None,
        ": ", ", ", False, False, True,
    )  # fmt: skip

    def dumps(value: Any) -> str:
        return "".join(encode(value, 0))

    return dumps


#: :func:`json.dumps` of a value, as Core's JSON type writes it on SQLite.
dumps = _encoder()
#: The JSON columns of a job row, where they sit in it. Core's JSON type
#: writes ``None`` as the JSON text ``null`` except in a ``none_as_null``
#: column (``labels``), where it is SQL ``NULL``.
_INPUT, _SPEC, _LABELS = (JOB_COLUMNS.index(name) for name in ("input", "spec", "labels"))


def job_rows(new: Sequence[tuple[NewJob, str]], now: float, last: float) -> list[dict[str, Any]]:
    """The rows of ``(job, id)`` pairs queued at ``now``, a microsecond apart
    in age from ``now`` or ``last`` (the age after the previous submit's
    last row) if later: SQLite's clock moves by whole milliseconds, so two
    submits in one tick would tie. Their ``run_after`` stays ``now``: a job
    due a microsecond later would wait for the clock's next tick."""
    first = max(now, last)
    return [job_row(job, jid, now, first + i * 1e-6) for i, (job, jid) in enumerate(new)]


def job_values(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """The driver's values of :func:`~stockade.store.rows.job_row` ``rows``,
    in :data:`JOB_COLUMNS` order, JSON columns as text (a spec shared by
    several rows is dumped once)."""
    specs: dict[int, tuple[Any, str]] = {}  # id -> (the spec, kept alive; its text)
    values: list[list[Any]] = []
    for row in rows:
        value = list(_PICK(row))
        spec = value[_SPEC]
        known = specs.get(id(spec))
        if known is None:
            known = specs[id(spec)] = (spec, dumps(spec))
        value[_SPEC] = known[1]
        value[_INPUT] = dumps(value[_INPUT])
        labels = value[_LABELS]
        value[_LABELS] = None if labels is None else dumps(labels)
        values.append(value)
    return values


def write_jobs(cursor: Any, rows: Sequence[dict[str, Any]], now: float) -> None:
    """Insert ``rows`` and their ``queued`` events inside ``cursor``'s open
    write transaction (a ``sqlite3`` cursor)."""
    cursor.executemany(INSERT_JOB, job_values(rows))
    cursor.executemany(INSERT_QUEUED, [(row["id"], "queued", now) for row in rows])
