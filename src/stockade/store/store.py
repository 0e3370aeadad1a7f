"""One database with its manager, queries and journal, opened in one call."""

from __future__ import annotations

import os
from dataclasses import dataclass

from stockade.errors import StoreError
from stockade.private import private_dir
from stockade.store import migrate
from stockade.store.database import Database
from stockade.store.jobs import JobManager
from stockade.store.journal import Journal
from stockade.store.outbox import Outbox
from stockade.store.queries import Queries
from stockade.store.retention import Retention
from stockade.store.runs import RunStore
from stockade.store.schedules import ScheduleStore
from stockade.store.url import data_dir as url_data_dir
from stockade.store.url import resolve_url

__all__ = ["Store", "open_store"]


@dataclass
class Store:
    """Everything the engine and the faces use of one database."""

    db: Database
    jobs: JobManager
    queries: Queries
    journal: Journal
    runs: RunStore
    outbox: Outbox
    schedules: ScheduleStore
    retention: Retention

    @classmethod
    def on(cls, db: Database) -> Store:
        jobs = JobManager(db)
        return cls(
            db, jobs, Queries(db), Journal(db), RunStore(db), Outbox(db),
            ScheduleStore(db, jobs), Retention(db),
        )  # fmt: skip

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()


def open_store(
    database_url: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    schema: str = "ensure",
) -> Store:
    """Open the store named by the options or the environment (see :mod:`~stockade.store.url`).

    ``schema``: ``"ensure"`` creates the schema in an empty database and
    refuses an old one; ``"check"`` only refuses; ``"none"`` does neither
    (for `stockade db upgrade`).
    """
    if not (database_url or os.environ.get("STOCKADE_DATABASE_URL")):
        directory = url_data_dir(data_dir)  # the default store lives in the data directory
        try:
            private_dir(directory)
        except OSError as error:
            raise StoreError(f"cannot use the data directory {directory}: {error}") from error
    db = Database(resolve_url(database_url, data_dir))
    try:
        if schema == "ensure":
            migrate.ensure(db)
        elif schema == "check":
            migrate.check(db)
    except BaseException:
        db.dispose()
        raise
    return Store.on(db)
