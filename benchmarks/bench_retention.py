"""Retention soak: 100,000 ``/bin/true`` jobs through ``stockade worker`` with a
retention of 3 seconds; the store stays bounded and claims stay fast.

The store's policy is ``succeeded: 3s``; a ``stockade worker --slots 2`` runs
the jobs and applies retention as its housekeeping (small batches). The
benchmark keeps about 2,000 jobs queued (topping up as they drain) until
100,000 (10,000 with ``--quick``) have been submitted and run, and samples
every second: the SQLite file's pages in use (page count less free pages)
and a probe claim's latency (the probe claims one job and records it, as a
worker of one slot would) while the queue is still being topped up.

Figures: the pages in use at the end against those after the first tenth
(target <= 1.5: bounded, not growing with the jobs run), and the median
probe claim latency over the last tenth against the first tenth (target
<= 1.5: flat).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from benchmarks import BIN, Row, progress
from benchmarks.bench_store import _unfinished

AGE = 3.0
QUEUED = 2000


def _pages(store: object) -> int:
    with store.db.read() as conn:  # type: ignore[attr-defined]
        count = conn.execute(sa.text("PRAGMA page_count")).scalar_one()
        free = conn.execute(sa.text("PRAGMA freelist_count")).scalar_one()
    return int(count) - int(free)


def _probe(store: object) -> float | None:
    """One claim of one job, recorded at once; its latency in ms (None: none queued)."""
    from stockade.runner.result import Outcome, Result

    started = time.perf_counter()
    claims = store.jobs.claim("probe", 1, 30.0)  # type: ignore[attr-defined]
    elapsed = (time.perf_counter() - started) * 1000
    if not claims:
        return None
    claim = claims[0]
    done = Result(claim.job_id, claim.task, claim.run, Outcome.SUCCEEDED)
    store.jobs.finish_many([(claim, done)])  # type: ignore[attr-defined]
    return elapsed


def _soak(work: Path, total: int) -> tuple[list[int], list[float], float]:
    from stockade.engine.jobspec import adhoc_task, new_job
    from stockade.store import open_store

    url = f"sqlite:///{work}/soak.db"
    store = open_store(url)
    store.retention.set_policy({"succeeded": AGE})
    template = new_job("true", adhoc_task(argv=["/bin/true"]))
    env = dict(os.environ, STOCKADE_DATABASE_URL=url, STOCKADE_DATA_DIR=str(work))
    worker = subprocess.Popen(
        [str(BIN / "stockade"), "worker", "--slots", "2", "-q"],
        env=env, cwd=work, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pages: list[int] = []
    claims: list[float] = []
    submitted, started = 0, time.perf_counter()
    try:
        while submitted < total or _unfinished(store) > 0:
            left = _unfinished(store)
            if submitted < total and left < QUEUED:
                more = min(QUEUED, total - submitted)
                store.jobs.submit([template] * more)
                submitted += more
            # Claims while the queue is kept topped up: the drain at the end
            # (an emptying queue) is not the steady state being compared.
            if (latency := _probe(store)) is not None and submitted < total:
                claims.append(latency)
            pages.append(_pages(store))
            if len(pages) % 10 == 0:
                progress(f"{submitted} submitted, {left} unfinished, {pages[-1]} pages")
            time.sleep(1.0)
        elapsed = time.perf_counter() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        store.close()
    return pages, claims, total / elapsed


def run(quick: bool) -> list[Row]:
    total = 10_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="stockade-bench-retention-") as tmp:
        pages, claims, rate = _soak(Path(tmp), total)
    tenth = max(1, len(pages) // 10)
    early, late = max(pages[:tenth]), pages[-1]
    first = statistics.median(claims[: max(1, len(claims) // 10)])
    last = statistics.median(claims[-max(1, len(claims) // 10) :])
    note = f"{total:,} jobs at {rate:.0f} jobs/s, retention {AGE:g}s; peak {max(pages)} pages"
    return [
        Row(f"retention soak {total:,}: store pages", f"{late} pages", f"{early} pages",
            late / early, "<= 1.5", late / early <= 1.5, note),
        Row(f"retention soak {total:,}: claim", f"{last:.2f} ms", f"{first:.2f} ms",
            last / first, "<= 1.5", last / first <= 1.5),
    ]  # fmt: skip
