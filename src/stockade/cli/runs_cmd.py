"""``stockade runs`` and ``stockade rerun``: pipeline runs in the store.

``runs`` lists runs (or shows one, with per-step progress and failed
tests; ``--cancel`` asks a running one to stop, from any process that
reaches the store; ``--resume`` goes on with a ``--fleet`` run whose
process died). ``rerun [RUN] [--failed | STEP[/ITEM]]`` starts a new
run of RUN's pipeline (RUN: the newest run by default): all of it, only
what did not succeed, or one step or job, reusing the recorded results of
the rest (:func:`stockade.engine.runs.rerun_plan`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stockade.cli.store_opts import open_store_from, store_command
from stockade.errors import ConfigError, RunNotFound, UsageError
from stockade.printable import printable

if TYPE_CHECKING:
    from stockade.pipeline.model import Reuse

__all__ = ["rerun_command", "runs_command"]


@click.command("runs", short_help="List pipeline runs, or show one.")
@click.argument("run_ref", metavar="[RUN]", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON (one object per run when listing).")
@click.option("--cancel", is_flag=True, help="Ask RUN's scheduler to stop it.")
@click.option("--timeline", is_flag=True, help="RUN's jobs as bars over time (text, or --json).")
@click.option(
    "--resume", is_flag=True, help="Go on with a --fleet RUN whose `stockade run` process died."
)
@click.option("--config", "-c", "config_file", metavar="FILE", help="With --resume: stockade.yaml.")
@store_command
def runs_command(run_ref: str | None, **opts: Any) -> int:
    """List runs newest first, or show RUN (an id, a unique prefix, or ``latest``)."""
    from stockade.engine.runview import cancel_run, run_view, runs_page

    if opts["resume"]:
        if run_ref is None:
            raise UsageError("--resume needs the RUN to resume")
        return _resume(run_ref, opts)
    store = open_store_from(opts)
    try:
        if opts["cancel"]:
            if run_ref is None:
                raise UsageError("--cancel needs the RUN to cancel")
            run_id, what = cancel_run(store, run_ref)
            click.echo(f"{run_id} {what}")
            return 0
        if opts["timeline"]:
            from stockade.cli.timeline_out import show_timeline

            return show_timeline(store, run_ref, as_json=opts["as_json"])
        if run_ref is None:
            runs = runs_page(store, limit=opts["limit"])
        else:
            view = run_view(store, run_ref)
    finally:
        store.close()
    if run_ref is not None:
        click.echo(json.dumps(view, indent=2, sort_keys=True) if opts["as_json"] else _show(view))
        return 0
    if opts["as_json"]:
        for run in runs:
            click.echo(json.dumps(run, sort_keys=True))
        return 0
    rows: list[tuple[str, ...]] = [("RUN", "PIPELINE", "STATE", "JOBS", "TESTS", "TOOK", "REASON")]
    rows += [
        (r["id"], r["pipeline"], r["state"], _jobs_cell(r["steps"]), _tests_cell(r["tests"]),
         "-" if r["duration"] is None else f"{r['duration']:.1f}s", _reason_cell(r))
        for r in runs
    ]  # fmt: skip
    _table(rows)
    return 0


def _reason_cell(run: dict[str, Any]) -> str:
    warned = len(run.get("warnings") or [])
    note = f"{warned} warning{'s' * (warned > 1)}" if warned else ""
    return "; ".join(part for part in (run["reason"] or "", note) if part)


def _jobs_cell(steps: dict[str, Any]) -> str:
    total = sum(int(s.get("jobs", 0)) for s in steps.values())
    done = sum(int(s.get("counts", {}).get("succeeded", 0)) for s in steps.values())
    return f"{done}/{total}"


def _tests_cell(tests: dict[str, int]) -> str:
    if not tests:
        return "-"
    return " ".join(f"{n} {status}" for status, n in sorted(tests.items()))


def _table(rows: list[tuple[str, ...]]) -> None:
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _show(view: dict[str, Any]) -> str:
    lines = [
        f"run       {view['id']}",
        f"pipeline  {view['pipeline']}",
        f"state     {view['state']}" + (f" ({view['reason']})" if view["reason"] else ""),
    ]
    if view["source_run"]:
        lines.append(f"rerun of  {view['source_run']}")
    if view["cancel_requested"] and view["state"] in ("queued", "running"):
        lines.append("cancel    requested")
    if view["tests"]:
        lines.append(f"tests     {_tests_cell(view['tests'])}")
    lines += [f"warning   {warning}" for warning in view.get("warnings") or []]
    lines.append("")
    rows = [("STEP", "STATUS", "JOBS", "PROGRESS")]
    for name, step in view["steps"].items():
        counts = ", ".join(f"{n} {s}" for s, n in sorted(step.get("counts", {}).items()))
        rows.append(
            (name, step["status"], str(step.get("jobs", 0)), counts or step.get("reason") or "")
        )
    shown = [tuple(printable(cell) for cell in row) for row in rows]  # widths as shown
    widths = [max(len(r[i]) for r in shown) for i in range(4)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in shown]
    lines.append("")
    for job in view["jobs"]:
        why = f" ({job['reason']})" if job["reason"] else ""
        lines.append(f"{job['id']}  {job['status']:<9}  {job['job']}{why}")
    for test in view["failed_tests"]:
        lines += ["", f"FAIL {test['package']} {test['test']}".rstrip()]
        lines += ["    " + line for line in test["output"].splitlines()]
    return "\n".join(printable(line) for line in lines)


def _resume(run_ref: str, opts: dict[str, Any]) -> int:
    """A new run of RUN's pipeline that adopts every job RUN queued (see
    :mod:`stockade.engine.fleetrun`); the exit status ``stockade run`` gives."""
    from stockade.cli.run_cmd import RunCommandOptions, execute_pipeline
    from stockade.cli.tasks import config_path
    from stockade.config import load
    from stockade.engine.runs import resume_plan
    from stockade.engine.runview import find_run

    config = load(config_path(opts["config_file"]))
    store = open_store_from(opts)
    try:
        source = find_run(store, run_ref)
        options, key = resume_plan(store, source)
        try:
            name, spec = config.pipeline(source.pipeline)
        except ConfigError as exc:
            raise UsageError(f"run {source.id}: {exc.message}") from exc
    finally:
        store.close()
    data = Path(opts["data_dir"] or os.environ.get("STOCKADE_DATA_DIR") or ".stockade")
    view = RunCommandOptions(
        options.jobs, opts["as_json"], None, options.keep_going, options.only, True, False, data,
        opts["database_url"], options.params, fleet=True,
    )  # fmt: skip
    click.echo(f"stockade: resuming run {source.id}", err=True)
    return execute_pipeline(
        config, name, spec, view, source_run=source.id, rerun={"resume": key}, resumes=key
    )


@click.command("rerun", short_help="Run a recorded run again: all, --failed, or one step/job.")
@click.argument("args", metavar="[RUN] [STEP[/ITEM][::TEST]]", nargs=-1)
@click.option("--failed", is_flag=True, help="Only the jobs that did not succeed (and dependents).")
@click.option(
    "--failed-tests", is_flag=True, help="Only the failed tests, with the binaries already built."
)
@click.option("--config", "-c", "config_file", metavar="FILE", help="The stockade.yaml to use.")
@click.option("--json", "as_json", is_flag=True, help="Print the event stream as JSON lines.")
@click.option("--plain", is_flag=True, help="Line-by-line output even on a terminal.")
@click.option("--quiet", "-q", is_flag=True, help="Only failures and the summary.")
@store_command
def rerun_command(args: tuple[str, ...], **opts: Any) -> int:
    """Start a new run of RUN's pipeline (RUN: the newest run by default).

    With --failed, jobs that succeeded in RUN are not run again: their
    recorded outputs are used. With STEP or STEP/ITEM, only that step's jobs
    (or that one job) run; everything they need comes from RUN. With
    --failed-tests, only the failed tests run again (in the jobs of the steps
    with test events), or only TEST with STEP/ITEM::TEST; everything else
    comes from RUN.
    """
    from stockade.cli.run_cmd import RunCommandOptions, execute_pipeline
    from stockade.cli.tasks import config_path
    from stockade.config import load
    from stockade.engine.runs import rerun_plan
    from stockade.engine.testrerun import parse_test_target, test_rerun_plan

    if len(args) > 2:
        raise UsageError("rerun takes at most a RUN and a STEP[/ITEM]")
    config = load(config_path(opts["config_file"]))
    store = open_store_from(opts)
    try:
        source, target, guessed = _source_and_target(store, list(args))
        if [opts["failed"], opts["failed_tests"], target is not None].count(True) > 1:
            raise UsageError("give only one of --failed, --failed-tests and STEP[/ITEM][::TEST]")
        try:
            name, spec = config.pipeline(source.pipeline)
        except ConfigError as exc:
            raise UsageError(f"run {source.id}: {exc.message}") from exc
        step_named = (target or "").partition("::")[0].partition("/")[0]
        if guessed and target is not None and step_named not in spec.steps:
            # named neither a run nor a step: an unknown run (exit 1), saying both
            raise RunNotFound(
                target,
                f", nor is it a step of the newest run {source.id} "
                f"(pipeline {name!r}: {', '.join(spec.steps)})",
            )
        tests: dict[str, list[str]] = {}
        reuse: Reuse | None
        if opts["failed_tests"] or (target is not None and parse_test_target(target)):
            plan = test_rerun_plan(store, source, spec, target)
            reuse, options, rerun, tests = plan.reuse, plan.options, plan.record, plan.tests
        else:
            reuse, options, rerun = rerun_plan(store, source, spec, target, opts["failed"])
    finally:
        store.close()
    data = Path(opts["data_dir"] or os.environ.get("STOCKADE_DATA_DIR") or ".stockade")
    view = RunCommandOptions(
        options.jobs, opts["as_json"], None, options.keep_going, options.only,
        opts["plain"], opts["quiet"], data, opts["database_url"], options.params,
        options.fleet,
    )  # fmt: skip
    return execute_pipeline(
        config, name, spec, view, reuse=reuse, source_run=source.id, rerun=rerun,
        rerun_tests=tests,
    )  # fmt: skip


def _source_and_target(store: Any, args: list[str]) -> tuple[Any, str | None, bool]:
    """The run to repeat, the STEP[/ITEM] asked for, and whether a single
    argument was taken for a step: it is a run if it names one (``latest``,
    an id, a unique prefix), else a step of the newest run."""
    from stockade.engine.runview import find_run

    try:
        if not args:
            return find_run(store, "latest"), None, False
        try:
            return find_run(store, args[0]), (args[1] if len(args) == 2 else None), False
        except RunNotFound as exc:
            if len(args) == 2 or exc.run_id == "latest":
                raise
            return find_run(store, "latest"), args[0], True
    except RunNotFound as exc:
        if exc.run_id == "latest":
            raise UsageError("no run in the store to rerun: `stockade run` first") from None
        raise
