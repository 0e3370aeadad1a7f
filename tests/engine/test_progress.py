"""A worker records a job's ``::progress`` in the store: the latest value while
it runs (at most about once a second), and the last one at the end, on
SQLite and PostgreSQL."""

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
        await until(lambda: state(store, job) == "succeeded")

    with_worker(store_url, body)
    recorded = _progress(store, job)
    assert recorded[-1] == (1, {"value": 100.0, "message": "done"})
    assert len(recorded) <= 4, recorded  # 51 reports, written at most about once a second
    assert {"value": 50.0, "message": "step 50"} in [data for _, data in recorded]
