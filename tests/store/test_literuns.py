"""Recording a run on the driver alone (``stockade.store.literuns``): the
same rows as the full store's :class:`~stockade.store.runs.RunStore`, the same
errors, and the full store whenever the lite path is not sure."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from stockade.errors import RunNotFound, StoreError
from stockade.store import JobState, Store, open_store
from stockade.store import schema as t
from stockade.store.literuns import (
    JSON_COLUMNS,
    NULL_JSON,
    LiteRecording,
    RunRecording,
    open_run_store,
)
from stockade.store.runrows import AttemptWrite, JobWrite, RunBatch
from stockade.store.states import RunState
from stockade.store.url import DB_FILE

#: Columns stamped by the database's clock: they differ between two stores.
CLOCK = {
    "runs": ("created_at", "updated_at", "started_at", "finished_at"),
    "jobs": ("updated_at",),
    "events": ("time",),
}
TABLES = ("runs", "jobs", "attempts", "outputs", "events", "log_chunks", "run_tests")


def _created(data_dir: Path) -> Path:
    open_store(None, data_dir).close()  # the schema, as the first command creates it
    return data_dir


def _dump(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    conn = sqlite3.connect(data_dir / DB_FILE)
    conn.row_factory = sqlite3.Row
    try:
        dump = {}
        for table in TABLES:
            rows = [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for row in rows:
                for name in CLOCK.get(table, ()):
                    row[name] = row[name] is not None
            dump[table] = rows
        return dump
    finally:
        conn.close()


def _job(state: JobState, stored: JobState | None, **more: Any) -> JobWrite:
    return JobWrite(
        id="j1", step="build", item=None, state=state, stored=stored, task="build",
        spec={"version": 1, "argv": ["true"]}, attempts=1, started_at=1000.0, **more,
    )  # fmt: skip


def _record(recording: RunRecording) -> list[Any]:
    """A run's life: created, a job started then ended with output, logs and
    tests, progress, heartbeats, the run's end; what each call returned."""
    runs = recording.runs
    runs.create("r1", "ci", options={"jobs": 2}, steps={"build": {}}, state=RunState.RUNNING)
    started = _job(JobState.RUNNING, None, attempt_rows=[AttemptWrite(1, 1000.0)])
    chunk = {"job_id": "j1", "attempt": 1, "stream": "stdout", "text": "hé\n", "time": 1000.5}
    returned: list[Any] = [runs.record(RunBatch("r1", jobs=[started], logs=[chunk]))]
    recording.journal.record_progress("j1", 1, {"value": 0.5, "message": "half"})
    recording.journal.record_progress("j1", 1, {"value": 1.0, "message": None})
    ended = AttemptWrite(
        1, 1000.0, new=False, finished_at=1002.0, outcome="succeeded", exit_code=0,
        result={"usage": {"cpu_user": 0.5, "cpu_system": 0.25, "max_rss": 1024}},
    )  # fmt: skip
    done = _job(
        JobState.SUCCEEDED, JobState.RUNNING, finished_at=1002.0, outcome="succeeded",
        exit_code=0, outputs={"version": "1.2"}, reason="r" * 80, attempt_rows=[ended],
    )  # fmt: skip
    test = {"job_id": "j1", "package": "p", "test": "T", "status": "pass", "elapsed": 0.1,
            "output": ""}  # fmt: skip
    batch = RunBatch(
        "r1", jobs=[done], tests=[test], state=RunState.SUCCEEDED, stored=RunState.RUNNING,
        steps={"build": {"status": "succeeded"}}, test_counts={"pass": 1}, warnings=["w"],
    )  # fmt: skip
    returned += [runs.record(batch), runs.heartbeat("r1"), runs.cancel_requested("r1")]
    return returned


def test_the_lite_path_writes_the_rows_the_full_store_writes(tmp_path: Path) -> None:
    full_dir, lite_dir = _created(tmp_path / "full"), _created(tmp_path / "lite")
    full, lite = open_store(None, full_dir), open_run_store(None, lite_dir)
    assert isinstance(lite, LiteRecording)
    try:
        assert _record(lite) == _record(full) == [False, False, False, False]
    finally:
        full.close()
        lite.close()
    written = _dump(lite_dir)
    assert all(written[table] for table in TABLES)
    assert written == _dump(full_dir)


@pytest.mark.parametrize("table", sorted(JSON_COLUMNS))
def test_its_json_columns_are_the_schemas(table: str) -> None:
    json = [c for c in getattr(t, table).c if isinstance(c.type, sa.JSON)]
    assert set(JSON_COLUMNS[table]) == {c.name for c in json}
    assert {c.name for c in json if c.type.none_as_null} <= set(NULL_JSON)


def _errors(recording: RunRecording) -> list[str]:
    runs = recording.runs
    calls: list[Callable[[], object]] = [
        lambda: runs.record(RunBatch("nope")),
        lambda: runs.create("r2", "p", options={}, steps={}, state=RunState.SUCCEEDED),
        lambda: runs.record(RunBatch("r2", jobs=[_job(JobState.SUCCEEDED, JobState.RUNNING)])),
        lambda: runs.record(RunBatch("r2", state=RunState.QUEUED, stored=RunState.RUNNING)),
        lambda: runs.create("r2", "p", options={}, steps={}),  # the id is taken
    ]
    runs.create("r2", "p", options={}, steps={}, state=RunState.RUNNING)
    found = []
    for call in calls:
        with pytest.raises(StoreError) as caught:
            call()
        found.append(f"{type(caught.value).__name__}: {caught.value.message}")
    return found


def test_the_lite_path_refuses_what_the_full_store_refuses(tmp_path: Path) -> None:
    full_dir, lite_dir = _created(tmp_path / "full"), _created(tmp_path / "lite")
    full, lite = open_store(None, full_dir), open_run_store(None, lite_dir)
    try:
        expected = [e.replace(str(full_dir), "DIR") for e in _errors(full)]
        assert [e.replace(str(lite_dir), "DIR") for e in _errors(lite)] == expected
    finally:
        full.close()
        lite.close()
    assert expected[0] == "RunNotFound: " + RunNotFound("nope").message
    assert "UNIQUE constraint failed" in expected[-1]


def test_the_full_store_records_when_the_lite_path_is_not_sure(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = open_run_store(None, tmp_path / "fresh")  # no store yet: the full one creates it
    assert isinstance(fresh, Store)
    fresh.close()
    lite = open_run_store(None, tmp_path / "fresh")
    assert isinstance(lite, LiteRecording)
    lite.close()
    postgres = open_run_store(pg_url)
    assert isinstance(postgres, Store)
    _record(postgres)
    assert postgres.runs.run("r1").state is RunState.SUCCEEDED
    postgres.close()
    monkeypatch.setenv("STOCKADE_LITE", "0")
    plain = open_run_store(None, tmp_path / "fresh")
    assert isinstance(plain, Store)
    plain.close()
