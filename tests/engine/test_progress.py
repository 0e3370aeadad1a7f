"""A worker records a job's ``::progress`` in the store: the latest value while
it runs (written at most about once a second, in one row per attempt), and
the last one at the end, on SQLite and PostgreSQL."""

from __future__ import annotations

from stockade.engine.worker import Worker
from stockade.store import Store
from tests.engine.helpers import state, submit, until, with_worker

LINE = (
    'for i in $(seq 1 50); do echo "::progress value=$i::step $i"; done; sleep 1.5; '
    "echo '  ::PROGRESS VALUE=100::done'"
)


def _progress(store: Store, job: str) -> list[tuple[int | None, dict[str, object]]]:
    return [(e["attempt"], e["data"]) for e in store.queries.events(job) if e["kind"] == "progress"]


def test_progress_reaches_the_store_while_the_job_runs(store: Store, store_url: str) -> None:
    job = submit(store, LINE)

    async def body(worker: Worker) -> None:
        await until(lambda: bool(_progress(store, job)), what="progress while running")
        assert state(store, job) == "running"
        # 50 reports at once: the first is written, the latest about a second later
        # (the job then sleeps 4 s, so this bound only says "not at the end").
        await until(
            lambda: _progress(store, job) == [(1, {"value": 50.0, "message": "step 50"})],
            timeout=3.5, what="the latest progress while the job runs",
        )  # fmt: skip
        await until(lambda: state(store, job) == "succeeded")

    with_worker(store_url, body)
    # One row per attempt, updated in place: the last value.
    assert _progress(store, job) == [(1, {"value": 100.0, "message": "done"})]
