"""``stockade run``: execute a pipeline from ``stockade.yaml`` and show it.

The run happens in this process (see :mod:`stockade.pipeline.scheduler`);
its record (every job's status, reason, outputs, tests) is written as JSON
under ``DATA_DIR/runs/``. Exit status: 0 when the pipeline succeeded, 1
when a required step failed, 2 for a bad config or command line, 130 when
cancelled.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stockade.errors import ConfigError, StockadeError, UsageError

if TYPE_CHECKING:
    from stockade.pipeline.model import Observer
    from stockade.pipeline.scheduler import Scheduler
    from stockade.spec import Config
    from stockade.spec.pipeline import PipelineSpec

__all__ = ["run_command"]


@click.command("run")
@click.argument("pipeline", required=False)
@click.option("--config", "-c", "config_file", metavar="FILE", help="The stockade.yaml to use.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Jobs at once (default: auto).")
@click.option("--json", "as_json", is_flag=True, help="Print the event stream as JSON lines.")
@click.option("--junit", metavar="FILE", help="Write test results as JUnit XML.")
@click.option("--keep-going", "-k", is_flag=True, help="Run what does not depend on a failure.")
@click.option("--only", multiple=True, metavar="STEP", help="Run only STEP (and what it needs).")
@click.option("--plain", is_flag=True, help="Line-by-line output even on a terminal.")
@click.option("--quiet", "-q", is_flag=True, help="Only failures and the summary.")
@click.option("--data-dir", metavar="DIR", help="Logs and run records (default: ./.stockade).")
def run_command(
    pipeline: str | None,
    config_file: str | None,
    jobs: int | None,
    as_json: bool,
    junit: str | None,
    keep_going: bool,
    only: tuple[str, ...],
    plain: bool,
    quiet: bool,
    data_dir: str | None,
) -> int:
    """Run PIPELINE (default: the only one defined) and show it live."""
    from stockade.cli.tasks import config_path, print_problems
    from stockade.config import ConfigValidationError, load

    try:
        config = load(config_path(config_file))
        name, spec = config.pipeline(pipeline)
        unknown = [step for step in only if step not in spec.steps]
        if unknown:
            raise UsageError(f"--only: unknown step {unknown[0]!r} in pipeline {name!r}")
    except ConfigValidationError as exc:
        print_problems(exc)
        return 2
    except (ConfigError, UsageError) as exc:
        click.echo(f"stockade: error: {exc.message}", err=True)
        return 2
    data = Path(data_dir or os.environ.get("STOCKADE_DATA_DIR") or ".stockade")
    options = _Options(jobs, as_json, junit, keep_going, only, plain, quiet, data)
    try:
        return asyncio.run(_execute(config, name, spec, options))
    except StockadeError as exc:
        click.echo(f"stockade: error: {exc.message}", err=True)
        return 1


@dataclass(frozen=True)
class _Options:
    """The options of one ``stockade run``, as the scheduler and the view need them."""

    jobs: int | None
    as_json: bool
    junit: str | None
    keep_going: bool
    only: tuple[str, ...]
    plain: bool
    quiet: bool
    data_dir: Path


def _observer(options: _Options) -> Observer:
    from rich.console import Console

    from stockade.ui.observers import JsonObserver, LiveObserver, PlainObserver

    if options.as_json:
        return JsonObserver(sys.stdout)
    console = Console(highlight=False)
    if options.plain or options.quiet or not console.is_terminal:
        return PlainObserver(Console(highlight=False, force_terminal=False), quiet=options.quiet)
    return LiveObserver(console)


async def _execute(config: Config, name: str, spec: PipelineSpec, options: _Options) -> int:
    from stockade.pipeline.model import Status
    from stockade.pipeline.scheduler import Scheduler
    from stockade.runner.attempt import new_job_id

    observer = _observer(options)
    scheduler = Scheduler(
        config,
        name,
        spec,
        run_id=new_job_id(),
        jobs=options.jobs,
        keep_going=options.keep_going,
        only=options.only,
        observers=[observer],
        data_dir=str(options.data_dir.absolute()),
    )
    _install_interrupts(scheduler)
    run = await scheduler.execute()
    _record(run.to_dict(), options)
    if options.junit:
        from stockade.pipeline.test2json import junit_xml

        cases = [case for job in run.jobs() for case in job.tests]
        Path(options.junit).write_bytes(junit_xml(cases, name=name))
    if run.status is Status.CANCELLED:
        return 130
    return 1 if run.status is Status.FAILED else 0


def _install_interrupts(scheduler: Scheduler) -> None:
    """First Ctrl-C (or SIGTERM): stop every job cleanly; second: force."""
    loop = asyncio.get_running_loop()
    presses = [0]

    def interrupted() -> None:
        presses[0] += 1
        if presses[0] == 1:
            click.echo("stockade: cancelling (stopping every job; Ctrl-C again forces)", err=True)
            scheduler.cancel()
        else:
            scheduler.force()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupted)


def _record(data: dict[str, object], options: _Options) -> None:
    """Write the run's record to ``DATA_DIR/runs/RUN_ID.json``."""
    runs = options.data_dir / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True)
        path = runs / f"{data['run_id']}.json"
        path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        click.echo(f"stockade: warning: cannot write the run record: {exc}", err=True)
