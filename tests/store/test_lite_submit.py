"""Submits on a SQLite store without SQLAlchemy (``stockade.store.lite``,
``stockade.store.jobinsert``): Core's INSERT, the full store's rows at rest,
and the full store's gates for keyed and dependent jobs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from stockade.engine.bulk import submit_inputs
from stockade.errors import SchemaError
from stockade.store import NewJob, open_store
from stockade.store import schema as t
from stockade.store.direct import insert_batch
from stockade.store.gatewait import HELD
from stockade.store.jobinsert import INSERT_JOB, dumps, job_rows, job_values
from stockade.store.lite import LiteStore, open_writer
from stockade.store.rows import JOB_COLUMNS
from tests.store.helpers import new

#: Jobs that take each branch of a row: no input, JSON input, labels,
#: a sandbox, a delay, keys, dependencies.
SHAPES = [
    new(),
    new(input={"x": [1, "é", None]}, priority=-3, labels={"b": "2", "a": "1"}),
    new(input="text", sandbox="bwrap", delay=5.0, queue="gpu", max_attempts=1),
    new(input=[], concurrency_key="k", concurrency_limit=2, unique_key="u"),
    NewJob("u", {"other": 1}, after=["a", "b"], after_any=True),
]


def _core_values(rows: list[dict[str, Any]]) -> list[list[Any]]:
    compiled = insert_batch(t.jobs, *JOB_COLUMNS).one.on("sqlite")
    return [list(compiled.params(tuple(row[c] for c in JOB_COLUMNS))) for row in rows]


def test_the_insert_is_cores_insert_of_the_job_columns() -> None:
    compiled = insert_batch(t.jobs, *JOB_COLUMNS).one.on("sqlite")
    assert " ".join(compiled.sql.split()) == INSERT_JOB
    rows = job_rows([(job, f"id{i}") for i, job in enumerate(SHAPES)], 100.0, 0.0)
    assert job_values(rows) == _core_values(rows)


def _stored(path: str, ids: list[str]) -> list[dict[str, Any]]:
    """The rows of ``ids`` as the file holds them (JSON as its text), without
    the columns that differ between two submits: the id and the clock's."""
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        rows = []
        for job_id in ids:
            row = dict(conn.execute("SELECT * FROM jobs WHERE id = ?", [job_id]).fetchone())
            (events,) = conn.execute("SELECT count(*) FROM events WHERE job_id = ?", [job_id])
            for name in ("id", "created_at", "updated_at", "run_after"):
                row.pop(name)
            rows.append({**row, "events": events[0]})
    conn.close()
    return rows


def _ungated() -> list[NewJob]:
    return [job for job in SHAPES if not job.gated and job.unique_key is None]


def test_a_lite_submit_stores_what_the_full_store_stores(sqlite_url: str) -> None:
    full = open_store(sqlite_url)
    writer = open_writer(sqlite_url)
    try:
        assert isinstance(writer, LiteStore)
        by_full = full.jobs.submit(_ungated())
        by_lite = writer.jobs.submit(_ungated())
        path = sqlite_url.removeprefix("sqlite:///")
        assert _stored(path, by_lite) == _stored(path, by_full)
        assert writer.queries.job(by_lite[2]).run_after > writer.queries.job(by_lite[0]).run_after
    finally:
        writer.close()
        full.close()


def test_keyed_and_dependent_jobs_go_through_the_full_stores_gates(sqlite_url: str) -> None:
    open_store(sqlite_url).close()
    writer = open_writer(sqlite_url)
    try:
        assert isinstance(writer, LiteStore)
        (first, made), (again, made_again) = writer.jobs.place([new(unique_key="u")] * 2)
        assert (again, made, made_again) == (first, True, False)
        holder, held = writer.jobs.submit([new(concurrency_key="k")] * 2)
        waiting = writer.jobs.submit([new(after=[holder])])[0]
        jobs = {job_id: writer.queries.job(job_id) for job_id in (holder, held, waiting)}
        assert jobs[holder].run_after < HELD <= jobs[held].run_after
        assert jobs[waiting].run_after >= HELD
    finally:
        writer.close()


def test_chunks_of_a_bulk_submit_keep_input_order(sqlite_url: str) -> None:
    open_store(sqlite_url).close()
    writer = open_writer(sqlite_url)
    try:
        assert isinstance(writer, LiteStore)
        lines = [json.dumps({"n": n}) for n in range(9)]
        ids = submit_inputs(writer, new(), lines, chunk=2)
        listed = writer.queries.jobs(oldest_first=True, limit=None)
        assert [job.id for job in listed] == ids
        assert [job.input for job in listed] == [{"n": n} for n in range(9)]
    finally:
        writer.close()


def test_other_stores_and_old_schemas_submit_through_the_full_store(
    store_url: str, tmp_path: Path
) -> None:
    open_store(store_url).close()
    writer = open_writer(store_url)
    try:
        assert isinstance(writer, LiteStore) == store_url.startswith("sqlite")
        (job_id,) = writer.jobs.submit([new(input={"a": 1})])
        assert writer.queries.job(job_id).input == {"a": 1}
    finally:
        writer.close()
    old = tmp_path / "old.db"
    open_store(f"sqlite:///{old}").close()
    with sqlite3.connect(old) as conn:
        conn.execute("UPDATE stockade_schema_version SET version_num = '0001'")
    conn.close()
    with pytest.raises(SchemaError, match="stockade db upgrade") as refused:
        open_writer(f"sqlite:///{old}")
    with pytest.raises(SchemaError) as expected:  # the full store's own words
        open_store(f"sqlite:///{old}")
    assert str(refused.value) == str(expected.value)


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -7, 10**30, 1.5, float("nan"), float("-inf"), 1e-300, "", "é\u2028\"\\",
     [], {}, {"b": [1, {"a": None}], "a": "x"}, [[[]]], "\udcff"],
)  # fmt: skip
def test_its_dumps_is_json_dumps(value: Any) -> None:
    assert dumps(value) == json.dumps(value)
