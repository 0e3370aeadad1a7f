"""The driver-level transaction of the worker's path (``Database.direct``),
on SQLite and on PostgreSQL: all or nothing, and errors mapped like Core's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from stockade.errors import SchemaError, StoreUnavailable
from stockade.runner.result import Outcome
from stockade.store import JobManager, JobState, Store, open_store
from stockade.store.database import Database
from stockade.store.jobs import _CLAIM, _INSERT_EVENT
from tests.store.helpers import new, result

Q = JobState.QUEUED


def test_an_error_in_the_block_rolls_everything_back(store: Store) -> None:
    (job_id,) = store.jobs.submit([new()])
    with pytest.raises(RuntimeError), store.db.direct() as tx:
        tx.many(_INSERT_EVENT, [(job_id, "noted", None, {"n": 1}, 0.0)])
        raise RuntimeError("the caller failed half way")
    assert [e["kind"] for e in store.queries.events(job_id)] == ["queued"]
    with store.db.direct() as tx:  # the connection went back to the pool usable
        tx.many(_INSERT_EVENT, [(job_id, "noted", None, {"n": 2}, 0.0)])
    assert [e["data"] for e in store.queries.events(job_id)][-1] == {"n": 2}


def test_missing_schema_is_a_schema_error_every_time(store_url: str) -> None:
    bare = open_store(store_url, schema="none")
    try:
        for _ in range(2):  # the failed transaction was rolled back, not left aborted
            with pytest.raises(SchemaError, match="stockade db upgrade"):
                bare.jobs.claim("w", 1, 30)
    finally:
        bare.close()


def test_saved_state_is_replaced_by_a_later_attempt(store: Store) -> None:
    (job_id,) = store.jobs.submit([new(max_attempts=3, backoff_initial=0.0, backoff_max=0.0)])
    for page in (1, 2):
        (claim,) = store.jobs.claim("w", 1, 30)
        store.jobs.finish(claim, result(claim, Outcome.RETRYABLE, state={"page": page}))
    (third,) = store.jobs.claim("w", 1, 30)
    assert (third.run, third.state) == (3, {"page": 2})
    assert store.queries.saved_state(job_id) == {"page": 2}


def test_a_lost_postgres_connection_is_unavailable_then_replaced(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        store.jobs.submit([new(), new()])
        fairy = store.db.engine.raw_connection()
        pid = fairy.driver_connection.info.backend_pid  # type: ignore[union-attr]
        fairy.close()  # back to the pool: the next transaction uses it
        with psycopg.connect(pg_url.split("?", maxsplit=1)[0], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreUnavailable):
            store.jobs.claim("w", 1, 30)
        assert len(store.jobs.claim("w", 2, 30)) == 2  # a new connection, nothing half-done
    finally:
        store.close()


def test_a_batch_longer_than_one_statement_records_every_end(store: Store) -> None:
    count = 99  # a third retries, the rest final ends: each kind of write many rows at once
    store.jobs.submit([new(max_attempts=2, backoff_initial=0.0, backoff_max=0.0)
                       for _ in range(count)])  # fmt: skip
    claims = store.jobs.claim("w", count, 30)
    assert len(claims) == count
    ends = [
        (c, result(c, Outcome.RETRYABLE if i % 3 == 0 else Outcome.SUCCEEDED, outputs={"i": i}))
        for i, c in enumerate(claims)
    ]
    states = store.jobs.finish_many(ends)
    assert states == [Q if i % 3 == 0 else JobState.SUCCEEDED for i in range(count)]
    for i, claim in enumerate(claims):
        (attempt,) = store.queries.attempts(claim.job_id)
        assert attempt.outcome == ("retryable" if i % 3 == 0 else "succeeded")
        assert attempt.finished_at is not None
        if i % 3:
            assert store.queries.outputs(claim.job_id) == {"i": i}
    assert sorted(c.job_id for c in store.jobs.claim("w", count, 30)) == sorted(
        claims[i].job_id for i in range(0, count, 3)
    )


def test_a_claim_writes_its_attempts_and_started_events(store: Store) -> None:
    ids = store.jobs.submit([new(), new(), new()])
    claims = store.jobs.claim("w7", 2, 30)
    assert len(claims) == 2
    for claim in claims:
        (attempt,) = store.queries.attempts(claim.job_id)
        assert (attempt.attempt, attempt.worker_id, attempt.started_at) == (
            1, "w7", claim.started_at,
        )  # fmt: skip
        queued, started = store.queries.events(claim.job_id)
        assert (queued["kind"], started["kind"], started["attempt"]) == ("queued", "started", 1)
        assert (started["data"], started["time"]) == ({"worker": "w7"}, claim.started_at)
    (left,) = set(ids) - {c.job_id for c in claims}
    assert store.queries.attempts(left) == []
    assert [e["kind"] for e in store.queries.events(left)] == ["queued"]


def test_cancel_requests_are_read_without_the_write_lock(store: Store) -> None:
    mine, other = store.jobs.submit([new(priority=1), new()])
    store.jobs.claim("w", 1, 30)
    store.jobs.claim("v", 1, 30)
    store.jobs.cancel([mine, other])
    with store.db.direct():  # a writer holds the write lock (SQLite) meanwhile
        assert store.jobs.cancel_requests("w") == [(mine, 1, False)]
        assert store.jobs.cancel_requests("nobody") == []


def test_an_unreachable_postgres_is_unavailable_in_one_line() -> None:
    db = Database(make_url("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/test"))
    try:
        for call in (
            lambda: JobManager(db).claim("w", 1, 30),
            lambda: JobManager(db).cancel_requests("w"),
        ):
            with pytest.raises(StoreUnavailable) as info:
                call()
            text = str(info.value)
            assert text.startswith("cannot use the database postgresql://postgres:***@")
            assert "hunter2" not in text and "\n" not in text
    finally:
        db.dispose()


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


#: PostgreSQL sends the plan of every statement of the transaction to the client.
_EXPLAIN_TO_CLIENT = (
    "LOAD 'auto_explain'",
    "SET LOCAL auto_explain.log_min_duration = 0",
    "SET LOCAL auto_explain.log_analyze = on",
    "SET LOCAL auto_explain.log_format = json",
    "SET LOCAL client_min_messages = log",
)


def test_a_sqlite_claim_walks_the_claim_index(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        store.jobs.submit([new() for _ in range(100)])
        with store.db.direct(read=True) as tx:
            compiled = _CLAIM["any"].on("sqlite")
            plan = tx.cursor.execute(
                "EXPLAIN QUERY PLAN " + compiled.sql, compiled.params((20, "w", 30.0, 0, {}))
            ).fetchall()
    finally:
        store.close()
    assert any("USING INDEX ix_jobs_claim" in row[-1] for row in plan), plan


@pytest.mark.parametrize("prepared", [False, True])
def test_a_postgres_claim_reads_the_head_of_the_queue_not_all_of_it(
    pg_url: str, prepared: bool
) -> None:
    """The claim walks ix_jobs_claim in order and stops at its limit, also on
    a table whose statistics were never taken (the planner then thinks a
    handful of jobs are queued: it sorted all of them, or drove the claim's
    join from a scan of all of them), planned for its parameters (a worker's
    first few claims) or, once prepared, for any."""
    store = open_store(pg_url)
    messages: list[str] = []

    def heard(notice: psycopg.errors.Diagnostic) -> None:
        messages.append(notice.message_primary or "")

    try:
        store.jobs.submit([new() for _ in range(20_000)])
        with store.db.direct() as tx:
            connection = tx.cursor.connection
            connection.add_notice_handler(heard)
            threshold = connection.prepare_threshold
            connection.prepare_threshold = 0 if prepared else None
            for setting in _EXPLAIN_TO_CLIENT:
                tx.cursor.execute(setting)
            assert len(store.jobs._claim(tx, "w", 20, 30.0, None, [])) == 20
            connection.remove_notice_handler(heard)
            connection.prepare_threshold = threshold
    finally:
        store.close()
    plans = [json.loads(m.split("plan:", 1)[1]) for m in messages if "candidates" in m]
    assert len(plans) == 1, messages
    read = [
        node["Actual Rows"] * node["Actual Loops"]
        for node in _plan_nodes(plans[0]["Plan"])
        if node.get("Relation Name") == "jobs" and "Scan" in node["Node Type"]
    ]
    assert read and max(read) <= 20, read


def test_every_direct_statement_compiles_for_each_of_its_stores() -> None:
    """They compile on first use; this compiles them all, so one that does not
    compile fails here rather than at a worker's first claim."""
    import stockade.store.jobs
    import stockade.store.journal  # noqa: F401 - their statements are made at import
    from stockade.store.direct import compile_all

    assert compile_all() >= 20
