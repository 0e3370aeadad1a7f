"""What the faces show of pipeline runs, read from the store.

``stockade runs`` and the HTTP API's run endpoints both call these, so the
CLI's ``--json`` and the API's bodies are the same documents. A run's job
shows its pipeline status: ``skipped`` for a job recorded as cancelled with
reason ``skipped`` (the store has no state for a job that never ran).

Every read first ends runs whose ``stockade run`` died (the store's
``recover_abandoned``: silent for a minute), so no face shows such a run,
or its jobs, as running forever.
"""

from __future__ import annotations

from typing import Any

from stockade.errors import JobNotFound
from stockade.reasons import Reason
from stockade.store import JobRecord, Store
from stockade.store.runs import RunRecord

__all__ = [
    "cancel_run", "find_run", "job_by_name", "job_status", "run_jobs", "run_summary", "run_view",
    "runs_page", "summary",
]  # fmt: skip


def job_status(job: JobRecord) -> str:
    """The job's status as the pipeline saw it."""
    if job.state.value == "cancelled" and job.reason == Reason.SKIPPED:
        return "skipped"
    return job.state.value


def run_summary(run: RunRecord) -> dict[str, Any]:
    """A run without its jobs: state, times, per-step progress, test counts."""
    end = run.finished_at
    duration = None if run.started_at is None or end is None else round(end - run.started_at, 3)
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "state": run.state.value,
        "reason": run.reason,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration": duration,
        "options": run.options,
        "source_run": run.source_run,
        "cancel_requested": run.cancel_requested,
        "steps": run.steps,
        "tests": run.tests,
        "warnings": run.warnings,
    }


def _job(job: JobRecord, outputs: dict[str, Any] | None) -> dict[str, Any]:
    took = None
    if job.started_at is not None and job.finished_at is not None:
        took = round(job.finished_at - job.started_at, 3)
    return {
        "id": job.id,
        "job": job.step if job.item is None else f"{job.step}[{job.item}]",
        "step": job.step,
        "item": job.item,
        "status": job_status(job),
        "state": job.state.value,
        # The pipeline's words where it has them; no reason that only repeats the status.
        "reason": job.error or (None if job.reason == job_status(job) else job.reason),
        "exit_code": job.exit_code,
        "attempts": job.attempts,
        "duration": took,
        "outputs": outputs,
    }


def run_view(store: Store, ref: str) -> dict[str, Any]:
    """One run (id or unique prefix; ``latest`` for the newest) with its jobs,
    step by step, and its failed tests with their output."""
    run = find_run(store, ref)
    jobs = store.runs.jobs(run.id)
    order = {name: i for i, name in enumerate(run.steps)}
    jobs.sort(key=lambda j: (order.get(j.step or "", len(order)), j.created_at, j.id))
    outputs = store.runs.outputs(j.id for j in jobs)
    failed = store.runs.tests(run.id, status="failed")
    return run_summary(run) | {
        "jobs": [_job(j, outputs.get(j.id)) for j in jobs],
        "failed_tests": [t.to_dict() for t in failed],
    }


def find_run(store: Store, ref: str) -> RunRecord:
    """The run ``ref`` names: ``latest`` (the newest), an id, or a unique prefix of one."""
    store.runs.recover_abandoned()
    return store.runs.latest() if ref == "latest" else store.runs.run(ref)


def summary(store: Store, ref: str) -> dict[str, Any]:
    """One run without its jobs (:func:`run_summary`)."""
    store.runs.recover_abandoned()
    return run_summary(store.runs.run(ref))


def run_jobs(store: Store, ref: str) -> list[JobRecord]:
    """The run's jobs as job records, in the order they were first recorded."""
    store.runs.recover_abandoned()
    return store.runs.jobs(store.runs.run(ref).id)


def runs_page(
    store: Store, *, limit: int | None = 50, after: str | None = None, pipeline: str | None = None
) -> list[dict[str, Any]]:
    """Runs newest first, as summaries."""
    store.runs.recover_abandoned()
    return [run_summary(r) for r in store.runs.runs(limit=limit, after=after, pipeline=pipeline)]


def cancel_run(store: Store, ref: str) -> tuple[str, str]:
    """Ask a run to stop (its scheduler notices within a second); ``(id, what
    happened)``. ``ref`` is an id, a unique prefix, or ``latest``."""
    if ref == "latest":
        ref = find_run(store, ref).id
    return store.runs.request_cancel(ref)


def job_by_name(store: Store, name: str, run_ref: str = "latest") -> str:
    """The id of the job named ``name`` (``step`` or ``step[item]``) in the
    run ``run_ref`` names; :class:`JobNotFound` listing the run's jobs when
    it has none of that name."""
    run = find_run(store, run_ref)
    names: dict[str, str] = {}
    for job in store.runs.jobs(run.id):
        step = job.step or job.task
        names[step if job.item is None else f"{step}[{job.item}]"] = job.id
    if name in names:
        return names[name]
    shown = sorted(names)
    listed = ", ".join(shown[:10]) + (f", … ({len(shown)} in all)" if len(shown) > 10 else "")
    raise JobNotFound(name, f" nor in run {run.id} (its jobs: {listed or 'none'})")
