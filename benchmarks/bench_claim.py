"""Claim latency with the queue long and spread over queues, against short.

A worker that serves one queue (``--queue q3``), one that serves three, and
one that serves every queue claim one job at a time from a store holding
100,000 queued jobs spread over 10 queues, and from one holding 100: the
claim reads the head of a claim index (``ix_jobs_claim_queue`` for one
queue, ``ix_jobs_claim`` otherwise), so the long queue should cost no more.
Both stores, taking turns claim by claim (a change in the disk's flush time
then hits both alike).

The jobs are made in the database by one ``INSERT … SELECT`` from a
generated series copying one submitted job (a few seconds for 100,000 on
either store, where submitting them one by one took a minute on
PostgreSQL), so the queues hold real rows of the real schema.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import Row, progress
from benchmarks.bench_store import pg_schema

QUEUES = 10
#: What each measured worker serves, by name.
OFFERS: dict[str, tuple[str, ...] | None] = {
    "one queue": ("q3",),
    "three queues": ("q3", "q5", "q7"),
    "every queue": None,
}


def _fill(url: str, spread: int, extra: int) -> None:
    """``spread`` queued jobs over ``QUEUES`` queues, then ``extra`` more in
    ``q3`` (what the claims take, so ``spread`` are left at the end)."""
    import sqlalchemy as sa

    from stockade.engine.jobspec import adhoc_task, new_job
    from stockade.store import open_store
    from stockade.store import schema as t

    store = open_store(url)
    try:
        (template,) = store.jobs.submit([new_job("true", adhoc_task(argv=["/bin/true"]))])
        copied = [c.name for c in t.jobs.columns if c.name not in ("id", "queue", "created_at")]
        total = spread + extra
        if store.db.dialect == "postgresql":
            series = f"generate_series(1, {total}) AS s(i)"
        else:
            series = (
                f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
                f"WHERE i < {total}) SELECT i FROM s) AS s"
            )
        queue = f"CASE WHEN i > {spread} THEN 'q3' ELSE 'q' || (i % {QUEUES}) END"
        names = ", ".join(copied)
        sql = (
            f"INSERT INTO jobs (id, queue, created_at, {names}) "
            f"SELECT 'b' || i, {queue}, created_at + i * 1e-6, {names} "
            f"FROM jobs, {series} WHERE jobs.id = :template"
        )
        with store.db.transaction() as conn:
            conn.execute(sa.text(sql), {"template": template})
            conn.execute(sa.delete(t.jobs).where(t.jobs.c.id == template))
            conn.execute(sa.text("ANALYZE jobs"))
    finally:
        store.close()


def _latency(urls: dict[int, str], offer: tuple[str, ...] | None, samples: int) -> dict[int, float]:
    """Median seconds of one claim for ``offer``, for each ``{queued: url}``."""
    from stockade.store import open_store
    from stockade.store.routing import Offer

    stores = {queued: open_store(url) for queued, url in urls.items()}
    route = Offer(queues=offer)
    try:
        times: dict[int, list[float]] = {queued: [] for queued in stores}
        for _ in range(samples):
            for queued, store in stores.items():
                began = time.perf_counter()
                claimed = store.jobs.claim("bench", 1, 30, route)
                times[queued].append(time.perf_counter() - began)
                assert claimed, "the queue ran dry"
    finally:
        for store in stores.values():
            store.close()
    return {queued: statistics.median(values) for queued, values in times.items()}


def _rows(kind: str, urls: dict[int, str], big: int, samples: int) -> list[Row]:
    rows: list[Row] = []
    for name, offer in OFFERS.items():
        times = _latency(urls, offer, samples)
        ratio = times[big] / times[100]
        rows.append(
            Row(
                f"claim, {big} queued in {QUEUES} queues, {name} ({kind})",
                f"{times[big] * 1e3:.2f} ms", f"{times[100] * 1e3:.2f} ms (100 queued)",
                ratio, "<= 1.5", ratio <= 1.5,
            )
        )  # fmt: skip
    return rows


def run(quick: bool) -> list[Row]:
    big = 20_000 if quick else 100_000
    samples = 60 if quick else 200
    extra = samples * len(OFFERS)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="stockade-bench-claim-") as tmp:
        for kind in ("sqlite", "postgresql"):
            progress(f"claim by queue on {kind}: 100 vs {big} queued in {QUEUES} queues")
            try:
                if kind == "sqlite":
                    urls = {q: f"sqlite:///{Path(tmp)}/claim-{q}.db" for q in (100, big)}
                    began = time.perf_counter()
                    for queued, url in urls.items():
                        _fill(url, queued, extra)
                    progress(f"  set up in {time.perf_counter() - began:.1f} s")
                    rows += _rows(kind, urls, big, samples)
                else:
                    with pg_schema() as small, pg_schema() as large:
                        urls = {100: small, big: large}
                        began = time.perf_counter()
                        for queued, url in urls.items():
                            _fill(url, queued, extra)
                        progress(f"  set up in {time.perf_counter() - began:.1f} s")
                        rows += _rows(kind, urls, big, samples)
            except Exception as exc:
                rows.append(
                    Row(f"claim by queue ({kind})", "-", error=f"{type(exc).__name__}: {exc}")
                )
    return rows
