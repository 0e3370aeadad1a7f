"""The store's tables, as SQLAlchemy Core metadata shared by SQLite and PostgreSQL.

Migrations (``stockade/store/migrations``) create exactly this; a test checks
that they add up to it. Times are seconds since the epoch as doubles, taken
from the *database's* clock (:class:`epoch_now`) so that leases compare on
one clock however many machines run workers.

Tables:

``jobs``
    One row per job: what to run (``spec``, ``input``), its policy columns,
    where it is (``state``, ``run_after``, lease), and a summary of how it
    ended. ``attempts`` counts attempts spent against ``max_attempts``;
    ``runs`` numbers every start (the attempt number, and the fence that
    keeps a late completion from overwriting a newer attempt).
``job_deps``
    The jobs a job submitted with ``--after`` waits on (migration ``0011``).
``attempts``
    One row per run of a job: who ran it, when, and the result record.
``outputs`` / ``saved_state``
    The outputs of the succeeded attempt; the state saved for the next one.
``log_chunks``
    Masked output, batched, in order (``id``), readable while the job runs.
``events``
    Lifecycle events (queued, started, finished, retried, lost, cancelled…).
``workers``
    Live and stopped workers with their counters, for health and metrics,
    what tells whether one still runs (migration ``0007``), so a name held
    by a live worker is refused, and the sandbox backends it offers (``0005``),
    the queues it serves and labels it offers, and its version (``0013``).
``webhook_deliveries`` / ``webhook_tallies``
    The HTTP service's record of every verified webhook delivery and its
    outcome, and of a capped sample of unverified ones (migration ``0002``;
    servers before it created the table on first use); the count of every
    delivery by hook and outcome (migration ``0006``).
``notifications``
    The outbox of job-end notifications (migration ``0012``): one row per
    notification a job's end asked for, queued in the transaction that
    recorded the end, then claimed (``lease_expires``, ``token``) and sent
    by a worker; ``history`` lists every try.
``runs`` / ``run_tests``
    Pipeline runs (migration ``0003``): state, options, a per-step summary
    and test counts, the cancel flag another process may set, the run a
    rerun came from; and every test result of a run's ``test2json`` steps.
    A run's jobs are ordinary ``jobs`` rows with ``run_id``, ``step`` and
    ``item`` set (NULL for jobs submitted on their own).
``schedules`` / ``settings``
    Cron schedules as the config last defined them (migration ``0014``), the
    job each tick submits frozen in ``job``; ``next_at`` is the first tick not
    submitted yet, moved on in the transaction that submits (exactly once
    across any number of processes). ``settings``: store-wide values the
    config sets for every process, such as the retention policy.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from stockade.store.gatewait import HELD_SQL

__all__ = [
    "attempts",
    "epoch_now",
    "events",
    "job_deps",
    "jobs",
    "log_chunks",
    "metadata",
    "notifications",
    "outputs",
    "run_tests",
    "runs",
    "saved_state",
    "schedules",
    "settings",
    "webhook_deliveries",
    "webhook_tallies",
    "workers",
]


def _only(condition: str) -> dict[str, Any]:
    """The keywords of an index that holds only the rows matching
    ``condition``, on both stores (a partial index)."""
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


metadata = sa.MetaData()

#: The rows of the claim index: queued and not held (see ``ix_jobs_claim``).
CLAIMABLE = f"state = 'queued' AND run_after < {HELD_SQL}"

#: Auto-increment ids: BIGINT on PostgreSQL, the rowid alias on SQLite.
_Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.Float(precision=53)
#: A JSON object of labels: ``jsonb`` on PostgreSQL, for the claim's ``<@``.
_Labels = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("input", sa.JSON, nullable=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("transient", sa.Integer, nullable=False, server_default="0"),
    sa.Column("backoff_initial", _Time, nullable=False),
    sa.Column("backoff_multiplier", _Time, nullable=False),
    sa.Column("backoff_max", _Time, nullable=False),
    sa.Column("on_timeout", sa.String(8), nullable=False),
    sa.Column("run_after", _Time, nullable=False),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("updated_at", _Time, nullable=False),
    sa.Column("started_at", _Time, nullable=True),
    sa.Column("finished_at", _Time, nullable=True),
    sa.Column("worker_id", sa.String(200), nullable=True),
    sa.Column("lease_expires", _Time, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    # A second cancel, or a forced one: kill the job now (migration 0008).
    sa.Column("cancel_forced", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("signal", sa.Integer, nullable=True),
    sa.Column("reason", sa.String(64), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("run_id", sa.String(40), nullable=True),
    sa.Column("step", sa.String(200), nullable=True),
    sa.Column("item", sa.String(500), nullable=True),
    # The sandbox backend the job must run in, as a bit (stockade.store.routing).
    sa.Column("sandbox_need", sa.Integer, nullable=False, server_default="0"),
    # Keys and dependencies (migration 0011, stockade.store.gates): at most
    # ``concurrency_limit`` live jobs of a key hold a slot; a queued job with
    # ``unique_key`` is the one a later submit of that key gets; ``after_ids``
    # lists the jobs it waits on, comma-separated (``after_any``: whatever
    # their outcome),
    # ``deps_pending`` while some have not ended, ``followers`` once a job
    # waits on this one.
    sa.Column("concurrency_key", sa.String(200), nullable=True),
    sa.Column("concurrency_limit", sa.Integer, nullable=True),
    sa.Column("unique_key", sa.String(200), nullable=True),
    sa.Column("unique_while", sa.String(8), nullable=True),
    sa.Column("after_ids", sa.Text, nullable=True),
    sa.Column("after_any", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deps_pending", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("followers", sa.Boolean, nullable=False, server_default=sa.false()),
    # The queue it waits in and the worker labels it requires (migration 0013;
    # stockade.store.routing): NULL labels when it requires none.
    sa.Column("queue", sa.String(64), nullable=False, server_default="default"),
    sa.Column("labels", _Labels, nullable=True),
    # Only jobs that have a run, or a worker: every query through these
    # names a value, and a NULL entry cost an index write at each state change.
    sa.Index("ix_jobs_run", "run_id", **_only("run_id IS NOT NULL")),
    sa.Index("ix_jobs_lease", "lease_expires", **_only("state = 'running'")),
    sa.Index("ix_jobs_worker", "worker_id", **_only("worker_id IS NOT NULL")),
    sa.Index("ix_jobs_task_state", "task", "state"),
    sa.Index(
        "ix_jobs_concurrency",
        "concurrency_key",
        "created_at",
        **_only("concurrency_key IS NOT NULL"),
    ),
    sa.Index("ix_jobs_unique", "unique_key", **_only("unique_key IS NOT NULL")),
    # When jobs ended: the dashboard's chart of the last hour, retention's
    # candidates oldest first (migration 0012).
    sa.Index("ix_jobs_finished", "finished_at", **_only("finished_at IS NOT NULL")),
)

# Who waits on whom (migration 0011): one row per dependency of a job
# submitted with ``--after``, found by the job that ends.
job_deps = sa.Table(
    "job_deps",
    metadata,
    sa.Column(
        "job_id", sa.String(40), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("after_id", sa.String(40), primary_key=True),
    sa.Index("ix_job_deps_after", "after_id"),
)

# Claim order is "priority, then age": the index matches it exactly (priority
# descending, age ascending) and holds only queued rows, so a claim reads the
# first few entries however long the queue is. Jobs held by a key or by
# other jobs (run_after at HELD, stockade.store.gates) are left out of it
# (migration 0011), so however many wait they are never walked past.
sa.Index(
    "ix_jobs_claim",
    jobs.c.priority.desc(),
    jobs.c.created_at,
    **_only(CLAIMABLE),
)
# The same order within one queue (migration 0013): a worker that serves one
# queue reads that queue's first entries, not past the other queues' jobs.
sa.Index(
    "ix_jobs_claim_queue",
    jobs.c.queue,
    jobs.c.priority.desc(),
    jobs.c.created_at,
    **_only(CLAIMABLE),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column(
        "job_id", sa.String(40), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("worker_id", sa.String(200), nullable=True),
    sa.Column("started_at", _Time, nullable=False),
    sa.Column("finished_at", _Time, nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("reason", sa.String(64), nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("signal", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration", _Time, nullable=True),
    sa.Column("result", sa.JSON, nullable=True),
    # What it used, out of result.usage for the metrics (migration 0010).
    sa.Column("cpu_seconds", _Time, nullable=True),
    sa.Column("memory_bytes", sa.BigInteger, nullable=True),
)

outputs = sa.Table(
    "outputs",
    metadata,
    sa.Column(
        "job_id", sa.String(40), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

saved_state = sa.Table(
    "saved_state",
    metadata,
    sa.Column(
        "job_id", sa.String(40), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

log_chunks = sa.Table(
    "log_chunks",
    metadata,
    sa.Column("id", _Serial, primary_key=True, autoincrement=True),
    sa.Column(
        "job_id", sa.String(40), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("stream", sa.String(8), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("time", _Time, nullable=False),
    sa.Index("ix_log_chunks_job", "job_id", "id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", _Serial, primary_key=True, autoincrement=True),
    sa.Column(
        "job_id", sa.String(40), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=True),
    sa.Column("data", sa.JSON, nullable=True),
    sa.Column("time", _Time, nullable=False),
    sa.Index("ix_events_job", "job_id", "id"),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("hostname", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("slots", sa.Integer, nullable=False),
    sa.Column("started_at", _Time, nullable=False),
    sa.Column("last_seen", _Time, nullable=False),
    sa.Column("stopped_at", _Time, nullable=True),
    sa.Column("counters", sa.JSON, nullable=True),
    # The sandbox backends the worker runs jobs in (a list of names).
    sa.Column("sandboxes", sa.JSON, nullable=True),
    # What tells whether the worker still runs (migration 0007): on its own
    # host, the kernel's boot id and the process's start time (clock ticks
    # after boot, from /proc/PID/stat), so a reused pid is not taken for it;
    # from elsewhere, a heartbeat younger than its lease.
    sa.Column("boot_id", sa.String(64), nullable=True),
    sa.Column("pid_start", sa.BigInteger, nullable=True),
    sa.Column("lease", _Time, nullable=True),
    # What it serves besides sandboxes (migration 0013): its queues (NULL:
    # every queue), its labels, and the stockade version it runs.
    sa.Column("queues", sa.JSON, nullable=True),
    sa.Column("labels", sa.JSON, nullable=True),
    sa.Column("version", sa.String(64), nullable=True),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", _Serial, primary_key=True, autoincrement=True),
    sa.Column("hook", sa.String(200), nullable=False),
    sa.Column("delivery_id", sa.String(200), nullable=True),
    sa.Column("event", sa.String(200), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("job_id", sa.String(40), nullable=True),
    sa.Column("time", _Time, nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Index("ix_webhook_deliveries_hook", "hook", "delivery_id"),
    # The capped sample of unverified deliveries, newest first, for pruning it.
    sa.Index("ix_webhook_deliveries_unverified", "hook", "id", **_only("NOT verified")),
)

webhook_tallies = sa.Table(
    "webhook_tallies",
    metadata,
    sa.Column("hook", sa.String(200), primary_key=True),
    sa.Column("outcome", sa.String(16), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("updated_at", _Time, nullable=False),
    sa.Column("started_at", _Time, nullable=True),
    sa.Column("finished_at", _Time, nullable=True),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("tests", sa.JSON, nullable=False),
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("source_run", sa.String(40), nullable=True),
    sa.Column("warnings", sa.JSON, nullable=True),  # problems that did not fail it
    sa.Index("ix_runs_created", "created_at"),
)

run_tests = sa.Table(
    "run_tests",
    metadata,
    sa.Column("id", _Serial, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("job_id", sa.String(40), nullable=True),
    sa.Column("package", sa.String(500), nullable=False),
    sa.Column("test", sa.String(500), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("elapsed", _Time, nullable=False),
    sa.Column("output", sa.Text, nullable=False),
    sa.Index("ix_run_tests_run", "run_id", "status"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", _Serial, primary_key=True, autoincrement=True),
    sa.Column(
        "job_id", sa.String(40), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("attempt", sa.Integer, nullable=True),
    sa.Column("target", sa.Integer, nullable=False),  # its place in the job's notify list
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("due", _Time, nullable=False),
    sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_expires", _Time, nullable=True),
    sa.Column("token", sa.String(32), nullable=True),
    sa.Column("history", sa.JSON, nullable=True),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("updated_at", _Time, nullable=False),
    sa.Index("ix_notifications_job", "job_id", "id"),
    # What a sender claims: the pending and the in-flight (their lease may lapse).
    sa.Index("ix_notifications_due", "due", **_only("state IN ('pending', 'sending')")),
)


schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("cron", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("catch_up", sa.String(8), nullable=False),
    sa.Column("job", sa.JSON, nullable=False),  # the NewJob each tick submits
    sa.Column("definition", sa.String(64), nullable=False),  # a hash: did the config change it?
    sa.Column("next_at", _Time, nullable=False),
    sa.Column("last_at", _Time, nullable=True),  # the last tick submitted
    sa.Column("last_job", sa.String(40), nullable=True),
    sa.Column("skipped", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", _Time, nullable=False),
    sa.Index("ix_schedules_next", "next_at"),
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", _Time, nullable=False),
)


class epoch_now(FunctionElement[float]):
    """The database's clock in seconds since the epoch, as a double."""

    type = _Time
    inherit_cache = True


@compiles(epoch_now, "sqlite")
def _epoch_now_sqlite(element: epoch_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(epoch_now, "postgresql")
def _epoch_now_pg(element: epoch_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
