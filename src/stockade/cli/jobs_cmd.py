"""``stockade jobs``, ``show``, ``logs``, ``cancel``, ``retry``: jobs in the store."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import click

from stockade.cli.store_opts import open_reader_from, open_store_from, store_command
from stockade.errors import JobNotFound, UsageError
from stockade.printable import printable

__all__ = ["cancel_command", "jobs_command", "logs_command", "retry_command", "show_command"]

STATES = ("queued", "running", "succeeded", "failed", "cancelled")


@click.command("jobs", short_help="List jobs in the store.")
@click.option(
    "--state", "states", multiple=True, type=click.Choice(STATES), help="Only this state."
)
@click.option("--task", metavar="NAME", help="Only jobs of this task.")
@click.option("--run", "run_ref", metavar="RUN", help="Only jobs of this pipeline run (or latest).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Every job (no limit).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job, one per line.")
@store_command
def jobs_command(**opts: Any) -> int:
    """List jobs, newest first: id, task, state, attempts, outcome, age."""
    store = open_store_from(opts) if opts["run_ref"] else open_reader_from(opts)
    try:
        run_id = None
        if opts["run_ref"]:
            from stockade.engine.runview import find_run

            run_id = find_run(store, opts["run_ref"]).id
        jobs = store.queries.jobs(
            states=opts["states"],
            task=opts["task"],
            limit=None if opts["show_all"] else opts["limit"],
            run_id=run_id,
        )
        now = store.queries.now()
    finally:
        store.close()
    if opts["as_json"]:
        for job in jobs:
            data = job.to_dict()
            data.pop("spec", None)
            click.echo(json.dumps(data, sort_keys=True))
        return 0
    from stockade.cli.jobtext import task_label

    waits = any(job.waiting for job in jobs)
    rows = [("ID", "TASK", "QUEUE", "STATE", "ATTEMPTS", "OUTCOME", "AGE", *(("WAITING",) * waits))]
    rows += [
        (
            job.id,
            task_label(job.task, job.spec),
            job.queue,
            job.state.value + (" (waiting)" if job.waiting else ""),
            f"{job.attempts}/{job.max_attempts}",
            job.outcome or "-",
            _age(now - job.created_at),
            *((job.waiting or "",) * waits),
        )
        for job in jobs
    ]
    shown = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in shown) for i in range(len(shown[0]))]
    for row in shown:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


@click.command("show", short_help="Show one job: state, attempts, outputs.")
@click.argument("job_ref", metavar="JOB")
@click.option("--json", "as_json", is_flag=True, help="The whole record as JSON.")
@store_command
def show_command(job_ref: str, **opts: Any) -> int:
    """Show JOB (an id or a unique prefix of one)."""
    store = open_reader_from(opts)
    try:
        job = store.queries.job(job_ref)
        attempts = store.queries.attempts(job.id)
        outputs = store.queries.outputs(job.id)
        notes = store.queries.notifications(job.id)
    finally:
        store.close()
    if opts["as_json"]:
        data = job.to_dict() | {"attempt_records": [a.to_dict() for a in attempts]}
        data["notifications"] = notes
        click.echo(json.dumps(data | {"outputs": outputs}, indent=2, sort_keys=True))
        return 0
    lines = _about(job)
    if job.outcome:
        lines.append(f"outcome   {job.outcome}" + (f" ({job.reason})" if job.reason else ""))
    if job.error:
        lines.append(f"error     {job.error}")
    if job.cancel_requested and job.state.value == "running":
        lines.append("cancel    requested")
    for a in attempts:
        end = f"exit {a.exit_code}" if a.exit_code is not None else (a.reason or "")
        took = f" in {a.duration:.3f}s" if a.duration else ""
        lines.append(f"attempt {a.attempt}: {a.outcome or 'running'} {end}{took} on {a.worker_id}")
        if a.result and a.result.get("usage"):
            from stockade.sandbox.usage import summary

            lines.append(f"  used {summary(a.result['usage'])}")
        if a.result and a.result.get("dump"):
            dump = a.result["dump"]
            at = ", ".join(f"{k} byte {v}" for k, v in sorted(dump.get("offsets", {}).items()))
            lines.append(f"  dump {dump['signal']} on {dump['on']}: in the log after {at}")
    if outputs is not None:
        lines.append("outputs   " + json.dumps(outputs, sort_keys=True))
    lines += _artifact_lines(job.id, attempts)
    lines += _notification_lines(notes)
    click.echo("\n".join(printable(line) for line in lines))
    return 0


def _artifact_lines(job_id: str, attempts: list[Any]) -> list[str]:
    """``show``'s lines about the job's artifacts (none if it kept none)."""
    from stockade.engine.artifacts import listed

    kept_by, artifacts = listed(attempts)
    if not artifacts:
        return []
    head = f"artifacts (attempt {kept_by}; `stockade artifacts {job_id} -o DIR` saves them)"
    return [head, *(f"  {a['name']}  {a['size']} bytes  sha256 {a['sha256']}" for a in artifacts)]


def _notification_lines(notes: list[dict[str, Any]]) -> list[str]:
    """``notify`` lines of ``show``: each notification, then each of its tries."""
    lines = []
    for note in notes:
        to = note["to"] if isinstance(note["to"], str) else shlex.join(note["to"] or [])
        lines.append(f"notify    {note['kind']} {to}: {note['state']} after {note['tries']} tr"
                     + ("y" if note["tries"] == 1 else "ies"))  # fmt: skip
        for i, tried in enumerate(note["history"], 1):
            status = "no answer" if tried.get("status") is None else f"status {tried['status']}"
            error = f" ({tried['error']})" if tried.get("error") else ""
            lines.append(f"  try {i}: {status}{error}")
    return lines


def _about(job: Any) -> list[str]:
    """``show``'s first lines: what the job is, runs, where, and what it waits for."""
    from stockade.cli.jobtext import ADHOC_TASK, command_text, shorten, workdir_of

    lines = [
        f"job       {job.id}",
        f"task      {job.task}",
        f"state     {job.state.value}",
        f"priority  {job.priority}",
        f"attempts  {job.attempts}/{job.max_attempts}",
    ]
    if job.run_id:
        where = job.step if job.item is None else f"{job.step}[{job.item}]"
        lines.insert(2, f"run       {job.run_id} ({where})")
    runs, workdir = command_text(job.spec), workdir_of(job.spec)
    if job.task == ADHOC_TASK and runs is not None:
        lines.insert(2, f"runs      {shorten(runs, 200)}")
    if workdir is not None:
        lines.append(f"in        {workdir}")
    lines.append(f"queue     {job.queue}")
    if job.labels:
        lines.append("requires  " + " ".join(f"{k}={v}" for k, v in sorted(job.labels.items())))
    if job.sandbox:
        lines.append(f"sandbox   {job.sandbox}")
    lines.extend(_gate_lines(job))
    if job.waiting:
        lines.append(f"waiting   {job.waiting}")
    return lines


@click.command("logs", short_help="Print a job's output (-f follows it live).")
@click.argument("job_ref", metavar="JOB")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job finishes.")
@click.option("--attempt", type=click.IntRange(min=1), help="Only this attempt.")
@click.option("--run", "run_ref", metavar="RUN", help="Find JOB by name in RUN (default: latest).")
@store_command
def logs_command(job_ref: str, **opts: Any) -> int:
    """Print JOB's stdout and stderr from the store, from any machine that reaches it.

    JOB is a job id, or a pipeline job's name (``build[libpng]``) in the
    latest run, or in RUN with --run."""
    from stockade.engine.client import follow_logs
    from stockade.errors import JobNotFound, RunNotFound

    def write(chunk: Any) -> None:
        stream = sys.stdout if chunk.stream == "stdout" else sys.stderr
        stream.write(chunk.text)
        stream.flush()

    def by_name(run_ref: str) -> str:
        from stockade.engine.runview import job_by_name

        full = open_store_from(opts)  # runs are read by the full store only
        try:
            return job_by_name(full, job_ref, run_ref)
        finally:
            full.close()

    store = open_reader_from(opts)
    try:
        if opts["run_ref"] is not None:
            job_ref = by_name(opts["run_ref"])
        else:
            try:
                store.queries.job(job_ref)
            except JobNotFound:
                try:
                    job_ref = by_name("latest")
                except RunNotFound:  # no run at all: the id was simply unknown
                    raise JobNotFound(job_ref) from None
        follow_logs(store, job_ref, write, follow=opts["follow"], attempt=opts["attempt"])
    finally:
        store.close()
    return 0


@click.command("cancel", short_help="Cancel jobs: queued ones never start, running ones stop.")
@click.argument("job_refs", metavar="[JOB]...", nargs=-1)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(("queued", "running")),
    help="With --task or alone: cancel every job in this state.",
)
@click.option("--task", metavar="NAME", help="Cancel every queued or running job of this task.")
@click.option(
    "--force",
    is_flag=True,
    help="Kill running jobs at once (SIGKILL, no grace), as a second cancel does.",
)
@store_command
def cancel_command(job_refs: tuple[str, ...], **opts: Any) -> int:
    """Cancel jobs by id, or every queued/running job matching --task/--state.

    A running job gets its stop signal, then its kill grace, then SIGKILL;
    cancelling it again while it stops, or --force, kills it at once."""
    if not job_refs and not opts["states"] and not opts["task"]:
        raise UsageError("give job ids, or --task/--state to cancel every matching job")
    store = open_store_from(opts)
    try:
        ids = _ids(store, job_refs)
        if opts["states"] or opts["task"]:
            states = opts["states"] or ("queued", "running")
            ids += [j.id for j in store.queries.jobs(states=states, task=opts["task"], limit=None)]
        done = store.jobs.cancel(ids, force=opts["force"])
    finally:
        store.close()
    return _report(done)


@click.command("retry", short_help="Queue failed or cancelled jobs again.")
@click.argument("job_refs", metavar="JOB...", nargs=-1, required=True)
@store_command
def retry_command(job_refs: tuple[str, ...], **opts: Any) -> int:
    """Queue JOB again with a fresh set of attempts (failed or cancelled jobs only)."""
    store = open_store_from(opts)
    try:
        done = store.jobs.retry(_ids(store, job_refs))
    finally:
        store.close()
    return _report(done)


def _ids(store: Any, refs: tuple[str, ...]) -> list[str]:
    """Resolve prefixes; an unknown one stays as given (reported as not found)."""
    ids = []
    for ref in refs:
        try:
            ids.append(store.queries.resolve(ref))
        except JobNotFound:
            ids.append(ref)
    return ids


def _report(done: dict[str, str]) -> int:
    status = 0
    for job_id, what in done.items():
        if what == "not found":
            click.echo(f"stockade: error: no job {job_id!r} in the store", err=True)
            status = 1
        elif what.startswith("refused: "):
            click.echo(f"stockade: error: job {job_id} {what.removeprefix('refused: ')}", err=True)
            status = 1
        else:
            click.echo(f"{job_id} {what}")
    return status


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _gate_lines(job: Any) -> list[str]:
    """``show``'s lines for a job's concurrency key, unique key and dependencies."""
    lines = []
    if job.concurrency_key is not None:
        lines.append(f"key       {job.concurrency_key} (at most {job.concurrency_limit} at once)")
    if job.unique_key is not None:
        lines.append(f"unique    {job.unique_key} (while {job.unique_while})")
    if job.after:
        lines.append(f"after     {', '.join(job.after)}" + (" (any end)" if job.after_any else ""))
    return lines
