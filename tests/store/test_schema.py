"""Migrations add up to the schema; old and missing schemas are refused clearly."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from stockade.errors import SchemaError
from stockade.store import Database, migrate, open_store
from stockade.store.schema import metadata
from stockade.store.url import resolve_url


def test_head_is_alembic_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == migrate.HEAD


def test_migrations_match_the_metadata(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = Database(resolve_url(store_url))
    try:
        assert migrate.upgrade(db) == (None, migrate.HEAD)
        with db.read() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": migrate.VERSION_TABLE}
            )
            diff = compare_metadata(context, metadata)
        assert diff == []
        assert migrate.upgrade(db) == (migrate.HEAD, migrate.HEAD)
    finally:
        db.dispose()


def test_open_creates_a_new_store_and_refuses_an_old_one(store_url: str) -> None:
    store = open_store(store_url)
    assert migrate.current(store.db) == migrate.HEAD
    with store.db.transaction() as conn:
        conn.execute(sa.text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '0000'"))
    store.close()
    with pytest.raises(SchemaError, match=f"has schema 0000, this stockade needs {migrate.HEAD}"):
        open_store(store_url)
    with pytest.raises(SchemaError, match="run `stockade db upgrade`"):
        open_store(store_url, schema="check")


def test_check_refuses_an_empty_database(store_url: str) -> None:
    with pytest.raises(SchemaError, match="has no stockade schema"):
        open_store(store_url, schema="check")


def test_upgrade_adopts_a_webhook_table_made_before_0002(store_url: str) -> None:
    """Servers before 0002 made ``webhook_deliveries`` themselves; 0002 keeps it."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from stockade.store.schema import webhook_deliveries

    db = Database(resolve_url(store_url))
    try:
        with db.transaction() as conn:
            command.upgrade(migrate.alembic_config(conn), "0001")
            # What old servers did, with the table's columns of then.
            columns = [
                sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                for c in webhook_deliveries.c
                if c.name != "verified"
            ]
            old = sa.Table(webhook_deliveries.name, sa.MetaData(), *columns)
            old.create(conn, checkfirst=True)
            conn.execute(old.insert().values(hook="push", outcome="accepted", status=202, time=1.0))
        assert migrate.upgrade(db) == ("0001", migrate.HEAD)
        with db.read() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": migrate.VERSION_TABLE}
            )
            assert compare_metadata(context, metadata) == []
            assert conn.execute(sa.select(webhook_deliveries.c.hook)).scalars().all() == ["push"]
    finally:
        db.dispose()


def test_upgrade_from_0002_keeps_jobs_and_adds_the_run_columns(store_url: str) -> None:
    """A store made before runs were recorded upgrades in place; its jobs stay standalone."""
    from alembic import command

    from stockade.store import NewJob

    db = Database(resolve_url(store_url))
    try:
        with db.transaction() as conn:
            command.upgrade(migrate.alembic_config(conn), "0002")
        with pytest.raises(
            SchemaError, match=f"has schema 0002, this stockade needs {migrate.HEAD}"
        ):
            open_store(store_url)
        assert migrate.upgrade(db) == ("0002", migrate.HEAD)
    finally:
        db.dispose()
    store = open_store(store_url)
    try:
        (job_id,) = store.jobs.submit([NewJob(task="t", spec={"version": 1})])
        job = store.queries.job(job_id)
        assert (job.run_id, job.step, job.item) == (None, None, None)
    finally:
        store.close()


def test_upgrade_from_0003_keeps_jobs_and_indexes_only_jobs_with_a_worker(
    store_url: str,
) -> None:
    """0004 rebuilds ix_jobs_worker and ix_jobs_run without their NULL entries;
    a job claimed before the upgrade is still found by its worker after it."""
    from alembic import command

    from stockade.store import NewJob

    db = Database(resolve_url(store_url))
    try:
        with db.transaction() as conn:
            command.upgrade(migrate.alembic_config(conn), "0003")
        old = Database(resolve_url(store_url))
        with old.transaction() as conn:  # a claimed job, written as 0003 had it
            conn.execute(
                sa.text(
                    "INSERT INTO jobs (id, task, state, priority, spec, max_attempts, attempts,"
                    " runs, transient, backoff_initial, backoff_multiplier, backoff_max,"
                    " on_timeout, run_after, created_at, updated_at, cancel_requested, worker_id)"
                    " VALUES ('j1', 't', 'running', 0, '{}', 1, 1, 1, 0, 1, 2, 60, 'retry',"
                    " 0, 0, 0, false, 'w1')"
                )
            )
        old.dispose()
        assert migrate.upgrade(db) == ("0003", migrate.HEAD)
        with db.transaction() as conn:
            if db.dialect == "sqlite":
                rows = conn.execute(
                    sa.text("SELECT name, sql FROM sqlite_master WHERE name IN (:a, :b)"),
                    {"a": "ix_jobs_worker", "b": "ix_jobs_run"},
                ).all()
            else:
                rows = conn.execute(
                    sa.text(
                        "SELECT indexname, indexdef FROM pg_indexes"
                        " WHERE indexname IN ('ix_jobs_worker', 'ix_jobs_run')"
                        " AND schemaname = current_schema()"
                    )
                ).all()
        assert {name: "IS NOT NULL" in sql for name, sql in rows} == {
            "ix_jobs_worker": True,
            "ix_jobs_run": True,
        }
    finally:
        db.dispose()
    store = open_store(store_url)
    try:
        assert store.jobs.renew("w1", 30.0) == {"j1": (1, False)}
        (job_id,) = store.jobs.submit([NewJob(task="t", spec={"version": 1})])
        assert store.queries.job(job_id).state.value == "queued"
    finally:
        store.close()


def test_upgrade_from_0004_keeps_queued_jobs_claimable_by_any_worker(store_url: str) -> None:
    """0005 adds each job's sandbox need: a job queued before it declares none,
    so a worker offering only ``local`` still claims it."""
    from alembic import command

    db = Database(resolve_url(store_url))
    try:
        with db.transaction() as conn:
            command.upgrade(migrate.alembic_config(conn), "0004")
            conn.execute(
                sa.text(
                    "INSERT INTO jobs (id, task, state, priority, spec, max_attempts, attempts,"
                    " runs, transient, backoff_initial, backoff_multiplier, backoff_max,"
                    " on_timeout, run_after, created_at, updated_at, cancel_requested)"
                    " VALUES ('j1', 't', 'queued', 0, '{\"version\": 1}', 1, 0, 0, 0, 1, 2,"
                    " 60, 'retry', 0, 0, 0, false)"
                )
            )
        assert migrate.upgrade(db) == ("0004", migrate.HEAD)
    finally:
        db.dispose()
    store = open_store(store_url)
    try:
        assert store.queries.job("j1").sandbox is None
        assert [c.job_id for c in store.jobs.claim("w", 5, 30, ("local",))] == ["j1"]
    finally:
        store.close()


def test_upgrade_from_0005_counts_recorded_deliveries_and_marks_unverified_ones(
    store_url: str,
) -> None:
    """0006 starts each hook's tallies from its recorded deliveries, and marks
    those refused before verification (401, 503) as the unverified sample."""
    from alembic import command

    from stockade.store.serverq import ServerQueries

    db = Database(resolve_url(store_url))
    try:
        with db.transaction() as conn:
            command.upgrade(migrate.alembic_config(conn), "0005")
            for outcome, status in [("accepted", 202), ("rejected", 401), ("rejected", 401)]:
                conn.execute(
                    sa.text(
                        "INSERT INTO webhook_deliveries (hook, outcome, status, time)"
                        " VALUES ('push', :outcome, :status, 1)"
                    ),
                    {"outcome": outcome, "status": status},
                )
        assert migrate.upgrade(db) == ("0005", migrate.HEAD)
    finally:
        db.dispose()
    store = open_store(store_url)
    try:
        sq = ServerQueries(store)
        assert sq.delivery_counts() == {("push", "accepted"): 1, ("push", "rejected"): 2}
        rows = sq.deliveries("push")
        assert sorted((r["status"], r["verified"]) for r in rows) == [
            (202, True), (401, False), (401, False)
        ]  # fmt: skip
    finally:
        store.close()


def _claimed_job_as_before(store_url: str) -> None:
    """Job ``j1``, running on worker ``w1``, with the columns of 0003 to 0007."""
    old = Database(resolve_url(store_url))
    try:
        with old.transaction() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO jobs (id, task, state, priority, spec, max_attempts, attempts,"
                    " runs, transient, backoff_initial, backoff_multiplier, backoff_max,"
                    " on_timeout, run_after, created_at, updated_at, cancel_requested, worker_id)"
                    " VALUES ('j1', 't', 'running', 0, '{}', 1, 1, 1, 0, 1, 2, 60, 'retry',"
                    " 0, 0, 0, false, 'w1')"
                )
            )
    finally:
        old.dispose()


def test_upgrade_from_0006_keeps_workers_and_judges_them_by_their_heartbeat(
    store_url: str,
) -> None:
    """0007 adds what tells a worker's liveness; a row written before it has
    none, so its name is held while its heartbeat is fresh, and free after."""
    from alembic import command

    from stockade.errors import NameInUse

    db = Database(resolve_url(store_url))
    try:
        with db.transaction() as conn:
            command.upgrade(migrate.alembic_config(conn), "0006")
        old = Database(resolve_url(store_url))
        with old.transaction() as conn:  # two workers, written as 0006 had them
            for name, seen in (("fresh", "9e12"), ("gone", "0")):
                conn.execute(
                    sa.text(
                        "INSERT INTO workers (id, hostname, pid, slots, started_at, last_seen)"
                        f" VALUES ('{name}', 'elsewhere', 1, 1, 0, {seen})"
                    )
                )
        old.dispose()
        assert migrate.upgrade(db) == ("0006", migrate.HEAD)
    finally:
        db.dispose()
    store = open_store(store_url)
    try:
        with pytest.raises(NameInUse):
            store.journal.register_worker("fresh", 2, 30.0)
        store.journal.register_worker("gone", 2, 30.0)
        workers = {w.id: w for w in store.queries.workers()}
        assert workers["fresh"].pid_start is None and workers["gone"].pid_start is not None
    finally:
        store.close()


def test_upgrade_from_0007_keeps_running_jobs_and_lets_them_be_force_cancelled(
    store_url: str,
) -> None:
    """0008 adds ``cancel_forced`` (false for the jobs already there); a job
    running across the upgrade can then be cancelled, and forced."""
    from alembic import command

    db = Database(resolve_url(store_url))
    try:
        with db.transaction() as conn:
            command.upgrade(migrate.alembic_config(conn), "0007")
        _claimed_job_as_before(store_url)  # as 0007 wrote it
        assert migrate.upgrade(db) == ("0007", migrate.HEAD)
    finally:
        db.dispose()
    store = open_store(store_url)
    try:
        assert store.jobs.cancel_requests("w1") == []
        assert store.jobs.cancel(["j1"]) == {"j1": "cancelling"}
        assert store.jobs.cancel_requests("w1") == [("j1", 1, False)]
        assert store.jobs.cancel(["j1"]) == {"j1": "killing"}
        assert store.jobs.cancel_requests("w1") == [("j1", 1, True)]
    finally:
        store.close()


def test_upgrade_from_0009_keeps_attempts_and_the_metrics_skip_their_usage(
    store_url: str,
) -> None:
    """0010 adds ``cpu_seconds`` and ``memory_bytes`` (NULL for attempts already
    recorded): the per-task usage histograms leave those out."""
    from alembic import command

    from stockade.store.serverq import ServerQueries

    db = Database(resolve_url(store_url))
    try:
        with db.transaction() as conn:
            command.upgrade(migrate.alembic_config(conn), "0009")
        _claimed_job_as_before(store_url)
        old = Database(resolve_url(store_url))
        with old.transaction() as conn:  # an attempt of it ended, as 0009 recorded it
            conn.execute(
                sa.text(
                    "INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at,"
                    " outcome, duration) VALUES ('j1', 1, 'w1', 0, 1, 'failed', 1)"
                )
            )
        old.dispose()
        assert migrate.upgrade(db) == ("0009", migrate.HEAD)
    finally:
        db.dispose()
    store = open_store(store_url)
    try:
        (attempt,) = store.queries.attempts("j1")
        assert attempt.duration == 1
        assert ServerQueries(store).usage_histograms() == {}
    finally:
        store.close()
