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
imports SQLAlchemy: ``stockade exec`` and the runner never do.
"""

from __future__ import annotations

from stockade.store.base import LOGS_CHANNEL
from stockade.store.database import Database
from stockade.store.jobs import CANCEL_CHANNEL, JOBS_CHANNEL, JobManager
from stockade.store.journal import Journal
from stockade.store.queries import Queries
from stockade.store.records import AttemptRecord, Claim, JobRecord, LogChunk, NewJob, WorkerRecord
from stockade.store.states import TERMINAL, JobState
from stockade.store.store import Store, open_store

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
