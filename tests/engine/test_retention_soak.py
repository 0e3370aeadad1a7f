"""A soak: 5,000 tiny jobs through a worker's store transactions, with the
housekeeping pass a worker runs, and a retention of 3 s: the tables (and the
SQLite file) stay bounded instead of growing with every job (both stores).

The jobs are claimed and recorded through the store calls a worker makes,
not run as processes: the property is the store's, and 5,000 processes on
two stores would take minutes (benchmarks/bench_retention.py runs 100,000
real jobs through `stockade worker`). Ages are measured on a clock the test
moves a second per round, so the bound does not depend on this machine's
speed.
"""

from __future__ import annotations

import sqlalchemy as sa

from stockade.engine.housekeeping import Chores
from stockade.runner.result import Outcome
from stockade.store import Store
from stockade.store import schema as t
from tests.store.helpers import new, result

ROUNDS, PER_ROUND, AGE = 25, 200, 3.0


def count(store: Store, table: sa.Table) -> int:
    with store.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def size(store: Store) -> int:
    """Pages the SQLite file holds (PostgreSQL: not measured, 0)."""
    if store.db.dialect != "sqlite":
        return 0
    with store.db.read() as conn:
        return int(conn.execute(sa.text("PRAGMA page_count")).scalar_one())


def test_retention_keeps_the_store_bounded_under_a_stream_of_jobs(store: Store) -> None:
    store.retention.set_policy({"succeeded": AGE})
    start = store.queries.now()
    rounds = [0]
    chores = Chores(store, prune_every=0.0, epoch=lambda: start + rounds[0])
    peak, sizes = 0, []
    for index in range(ROUNDS):
        rounds[0] = index
        store.jobs.submit([new(max_attempts=1) for _ in range(PER_ROUND)])
        claims = store.jobs.claim("soak", PER_ROUND, 30.0)
        store.journal.append_logs(
            [{"job_id": c.job_id, "attempt": c.run, "stream": "stdout", "text": "ok\n",
              "time": 1.0} for c in claims]
        )  # fmt: skip
        store.jobs.finish_many([(c, result(c, Outcome.SUCCEEDED)) for c in claims])
        chores.run(now=float(index))
        peak = max(peak, count(store, t.jobs))
        sizes.append(size(store))
    # Jobs live about AGE rounds: far fewer rows than the 5,000 jobs that ran.
    assert peak <= (AGE + 2) * PER_ROUND, peak
    assert sizes[-1] <= sizes[ROUNDS // 4] * 1.25 + 8, sizes  # free pages are reused
    rounds[0] = ROUNDS + int(AGE) + 1
    while chores.run(now=1e9)[1].jobs:
        pass
    for table in (t.jobs, t.attempts, t.events, t.log_chunks, t.outputs):
        assert count(store, table) == 0, table.name
