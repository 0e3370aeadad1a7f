"""A worker records a job's ``::progress`` in the store: the latest value while
it runs (written at most about once a second, in one row per attempt), and
the last one at the end, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from stockade.config import loads
from stockade.engine.runs import PipelineRun, RunOptions
from stockade.engine.worker import Worker
from stockade.store import Store
from tests.engine.helpers import gate, state, submit, until, with_worker

#: 50 reports at once, then the job waits for the test's gate (``{gate}``)
#: before its last report.
LINE = (
    'for i in $(seq 1 50); do echo "::progress value=$i::step $i"; done; {gate}; '
    "echo '  ::PROGRESS VALUE=100::done'"
)


def _progress(store: Store, job: str) -> list[tuple[int | None, dict[str, object]]]:
    return [(e["attempt"], e["data"]) for e in store.queries.events(job) if e["kind"] == "progress"]


def test_progress_reaches_the_store_while_the_job_runs(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    job = submit(store, LINE.format(gate=gate(tmp_path / "go")))

    async def body(worker: Worker) -> None:
        await until(lambda: bool(_progress(store, job)), what="progress while running")
        assert state(store, job) == "running"
        # 50 reports at once: the first is written, the latest about a second later
        # (the job waits for the gate meanwhile, so this is "not at the end").
        await until(
            lambda: _progress(store, job) == [(1, {"value": 50.0, "message": "step 50"})],
            timeout=3.5, what="the latest progress while the job runs",
        )  # fmt: skip
        assert state(store, job) == "running"
        (tmp_path / "go").touch()
        await until(lambda: state(store, job) == "succeeded")

    with_worker(store_url, body)
    # One row per attempt, updated in place: the last value.
    assert _progress(store, job) == [(1, {"value": 100.0, "message": "done"})]


def test_a_pipeline_jobs_progress_reaches_the_store(store: Store, tmp_path: Path) -> None:
    # Recorded as `stockade run` records it, so the dashboard shows it as for a worker's job.
    config = loads(
        "pipelines:\n  p:\n    steps:\n      up:\n        run: >-\n"
        "          echo '::progress value=40::half'; sleep 0.3; echo '::progress value=90::most'\n",
        env={},
    )
    name, spec = config.pipeline(None)
    run = PipelineRun(
        store, config, name, spec, options=RunOptions(), own_store=False, data_dir=str(tmp_path)
    )
    run.create()
    state = asyncio.run(run.execute())
    job_id = state.steps["up"].jobs[0].job_id
    assert job_id is not None
    assert _progress(store, job_id) == [(1, {"value": 90.0, "message": "most"})]
