"""Bulk submission: 10,000 jobs queued in one call, against Celery's group.

stockade: :func:`stockade.engine.bulk.submit_inputs`, what ``stockade submit
TASK --inputs FILE`` does after reading its file: 10,000 JSON lines parsed,
checked and stored 1,000 per transaction, on SQLite and on PostgreSQL (a
fresh store each). Also ``stockade submit --inputs`` as a whole process
(interpreter start included), for the record.

Baseline in the same run: Celery 5's ``group(task.s(...) × 10,000).apply_async()``
on a local Redis broker (the same inputs; publishing only, no worker).
Target: >= 10x Celery's jobs/s on both stores. Rounds alternate (3, or 1
with ``--quick``); figures are medians and each ratio the median of the
rounds' own ratios.

And 2,000 jobs in one call on SQLite (issue 20: <= 20 ms), the same
``submit_inputs`` on one store, against the cheapest way to store the same
rows: their values made beforehand, written by bare ``sqlite3``
``executemany`` (jobs and their ``queued`` events) on the same file, a
transaction per 1,000 as stockade does. The two take turns, 15 calls each
(5 with ``--quick``); figures are medians.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import BIN, Row, ms, progress
from benchmarks.bench_store import REDIS, pg_schema
from stockade.engine.bulk import CHUNK
from stockade.store.jobinsert import INSERT_JOB, INSERT_QUEUED

TIMES = 10.0
#: Issue 20: jobs in one call, and the most milliseconds they may take.
SMALL, SMALL_MS = 2_000, 20.0
_CELERY_APP = """
from celery import Celery

app = Celery("stockade_bench_bulk", broker={redis!r}, backend={redis!r})
app.conf.task_default_queue = {queue!r}

@app.task
def echo(value):
    return value
"""


def _lines(n: int) -> list[str]:
    return [json.dumps({"n": i, "target": f"build-{i}"}) + "\n" for i in range(n)]


def _stockade(url: str, n: int) -> float:
    from stockade.engine.bulk import submit_inputs
    from stockade.engine.jobspec import adhoc_task, new_job
    from stockade.store import open_store

    store = open_store(url)
    try:
        template = new_job("exec", adhoc_task(argv=["/bin/true"]))
        lines = _lines(n)
        started = time.perf_counter()
        ids = submit_inputs(store, template, lines)
        elapsed = time.perf_counter() - started
        assert len(ids) == n
    finally:
        store.close()
    return n / elapsed


def _stockade_cli(work: Path, n: int) -> float:
    path = work / "inputs.jsonl"
    path.write_text("".join(_lines(n)))
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "python"), "-m", "stockade.cli.main", "submit", "--inputs", str(path),
         "--data-dir", str(work / f"cli-{uuid.uuid4().hex[:6]}"), "--", "/bin/true"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return n / (time.perf_counter() - started)


def _celery(work: Path, n: int) -> float:
    tag = uuid.uuid4().hex[:8]
    queue, module = f"stockade-bench-bulk-{tag}", f"stockade_bench_bulk_{tag}"
    (work / f"{module}.py").write_text(
        textwrap.dedent(_CELERY_APP.format(redis=REDIS, queue=queue))
    )
    if str(work) not in sys.path:
        sys.path.insert(0, str(work))
    bench = importlib.import_module(module)
    from celery import group

    values = [json.loads(line) for line in _lines(n)]
    try:
        bench.echo.apply_async(({"warm": True},))  # connected before the clock starts
        started = time.perf_counter()
        group(bench.echo.s(v) for v in values).apply_async()
        elapsed = time.perf_counter() - started
    finally:
        with contextlib.suppress(Exception), bench.app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
        bench.app.close()
    return n / elapsed


def _bare(conn: sqlite3.Connection, values: list[list[Any]], now: float) -> float:
    """Seconds to write prepared job ``values`` as ``submit_inputs`` chunks them."""
    started = time.perf_counter()
    for at in range(0, len(values), CHUNK):
        chunk = values[at : at + CHUNK]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_JOB, chunk)
        conn.executemany(INSERT_QUEUED, [(v[0], "queued", now) for v in chunk])
        conn.execute("COMMIT")
    return time.perf_counter() - started


def _small(work: Path, quick: bool, n: int = SMALL) -> tuple[float, float]:
    """Median seconds of ``submit_inputs`` of ``n`` lines on SQLite, and of
    the bare ``executemany`` of the same rows, taking turns on one store."""
    from stockade.engine.bulk import submit_inputs
    from stockade.engine.jobspec import adhoc_task, new_job
    from stockade.store import open_store
    from stockade.store.ids import new_job_id
    from stockade.store.jobinsert import job_rows, job_values

    path = work / "small.db"
    store = open_store(f"sqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")  # as the store's own connections
    try:
        template = new_job("exec", adhoc_task(argv=["/bin/true"]))
        lines = _lines(n)
        submit_inputs(store, template, lines)  # warm: statements compiled, pages cached
        ours, bare = [], []
        for _ in range(5 if quick else 15):
            started = time.perf_counter()
            submit_inputs(store, template, lines)
            ours.append(time.perf_counter() - started)
            made = [(dataclasses.replace(template, input=json.loads(line)), new_job_id())
                    for line in lines]  # fmt: skip
            values = job_values(job_rows(made, time.time(), 0.0))
            bare.append(_bare(conn, values, time.time()))
    finally:
        conn.close()
        store.close()
    return statistics.median(ours), statistics.median(bare)


def _round(work: Path, n: int, index: int) -> dict[str, float]:
    rates: dict[str, float] = {}
    progress(f"round {index}: stockade on SQLite, {n} jobs in one call")
    rates["sqlite"] = _stockade(f"sqlite:///{work}/bulk-{index}.db", n)
    progress(f"round {index}: stockade on PostgreSQL")
    try:
        with pg_schema() as url:
            rates["postgresql"] = _stockade(url, n)
    except Exception as exc:
        progress(f"PostgreSQL failed: {exc}")
    progress(f"round {index}: stockade submit --inputs (a whole process, SQLite)")
    rates["cli"] = _stockade_cli(work, n)
    progress(f"round {index}: Celery group(...).apply_async() on Redis")
    try:
        rates["celery"] = _celery(work, n)
    except Exception as exc:
        progress(f"Celery failed: {exc}")
    return rates


def run(quick: bool) -> list[Row]:
    n = 10_000
    with tempfile.TemporaryDirectory(prefix="stockade-bench-bulk-") as tmp:
        rounds = [_round(Path(tmp), n, i + 1) for i in range(1 if quick else 3)]
        progress(f"{SMALL:,} jobs in one call on SQLite, and bare executemany of the same rows")
        small, bare = _small(Path(tmp), quick)
    rows: list[Row] = [
        Row(f"bulk submit {SMALL:,} in one call (SQLite)", ms(small),
            f"{ms(bare)} (bare sqlite3 executemany)", small / bare, f"<= {SMALL_MS:g} ms",
            small <= SMALL_MS / 1000, note="submit_inputs in process; JSON lines parsed")
    ]  # fmt: skip
    celery = [r["celery"] for r in rounds if "celery" in r]
    base = f"{statistics.median(celery):.0f} jobs/s (Celery group)" if celery else "-"
    for kind, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL"), ("cli", "CLI")):
        figures = [r[kind] for r in rounds if kind in r]
        if not figures:
            rows.append(Row(f"bulk submit {n:,} ({label})", "-", error="not measured"))
            continue
        ratios = [r[kind] / r["celery"] for r in rounds if kind in r and "celery" in r]
        ratio = statistics.median(ratios) if ratios else None
        target = f">= {TIMES:g}x" if kind != "cli" else "-"
        ok = None if kind == "cli" or ratio is None else ratio >= TIMES
        rows.append(
            Row(f"bulk submit {n:,} ({label})", f"{statistics.median(figures):.0f} jobs/s",
                base, ratio, target, ok,
                note="interpreter start and file read included" if kind == "cli" else "")
        )  # fmt: skip
    return rows
