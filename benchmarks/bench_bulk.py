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
"""

from __future__ import annotations

import contextlib
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from benchmarks import BIN, Row, progress
from benchmarks.bench_store import REDIS, pg_schema

TIMES = 10.0
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
    rows: list[Row] = []
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
