"""The store: jobs, attempts, outputs, saved state, logs, events, workers.

SQLite (embedded default) and PostgreSQL (the fleet) behind one SQLAlchemy
Core schema. The pieces, each with one job:

* :class:`~stockade.store.database.Database` — the connector: transactions,
  notifications, error mapping; knows nothing about jobs.
* :class:`~stockade.store.jobs.JobManager` — every job state transition.
* :class:`~stockade.store.queries.Queries` — every read.
* :class:`~stockade.store.journal.Journal` — log chunks and worker rows.
* :mod:`~stockade.store.migrate` — schema versions and Alembic upgrades.

:class:`Store` bundles them for one database. Importing this package
imports nothing heavy: each name below loads its module on first use, so
the records and states cost no SQLAlchemy, and a read command on SQLite can
go through :mod:`~stockade.store.lite` without it. ``stockade exec`` and the
runner import none of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stockade.store.base import LOGS_CHANNEL
    from stockade.store.database import Database
    from stockade.store.jobs import CANCEL_CHANNEL, JOBS_CHANNEL, JobManager
    from stockade.store.journal import Journal
    from stockade.store.queries import Queries
    from stockade.store.records import (
        AttemptRecord,
        Claim,
        JobRecord,
        LogChunk,
        NewJob,
        WorkerRecord,
    )
    from stockade.store.states import TERMINAL, JobState
    from stockade.store.store import Store, open_store

#: Each exported name -> the module that defines it.
_WHERE = {
    "LOGS_CHANNEL": "base",
    "Database": "database",
    "CANCEL_CHANNEL": "jobs",
    "JOBS_CHANNEL": "jobs",
    "JobManager": "jobs",
    "Journal": "journal",
    "Queries": "queries",
    "AttemptRecord": "records",
    "Claim": "records",
    "JobRecord": "records",
    "LogChunk": "records",
    "NewJob": "newjob",
    "WorkerRecord": "records",
    "TERMINAL": "states",
    "JobState": "states",
    "Store": "store",
    "open_store": "store",
}

__all__ = [
    "CANCEL_CHANNEL",
    "JOBS_CHANNEL",
    "LOGS_CHANNEL",
    "TERMINAL",
    "AttemptRecord",
    "Claim",
    "Database",
    "JobManager",
    "JobRecord",
    "JobState",
    "Journal",
    "LogChunk",
    "NewJob",
    "Queries",
    "Store",
    "WorkerRecord",
    "open_store",
]


def __getattr__(name: str) -> Any:
    """Load an exported name's module on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
