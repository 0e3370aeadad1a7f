"""``stockade run``: execute a pipeline from ``stockade.yaml`` and show it.

The run happens in this process (see :mod:`stockade.pipeline.scheduler`)
and is recorded in the job store as it goes (:mod:`stockade.engine.runs`):
the run, every job with its attempts, log, outputs and tests, so
``stockade runs``, ``jobs --run``, ``show`` and ``logs -f`` see it, and
``stockade rerun`` can repeat it. Exit status: 0 when the pipeline succeeded, 1
when a required step failed, 2 for a bad config or command line, 130 when
cancelled.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stockade.errors import ConfigError, StockadeError, UsageError
from stockade.printable import printable

if TYPE_CHECKING:
    from stockade.engine.runs import PipelineRun
    from stockade.pipeline.model import Observer
    from stockade.runplan.model import PlainPipeline, RunPlan
    from stockade.spec import Config
    from stockade.spec.pipeline import PipelineSpec
    from stockade.store.literuns import RunRecording

__all__ = ["RunCommandOptions", "execute_pipeline", "run_command"]


@click.command("run")
@click.argument("pipeline", required=False)
@click.option("--config", "-c", "config_file", metavar="FILE", help="The stockade.yaml to use.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Jobs at once (default: auto).")
@click.option("--json", "as_json", is_flag=True, help="Print the event stream as JSON lines.")
@click.option("--junit", metavar="FILE", help="Write test results as JUnit XML.")
@click.option("--keep-going", "-k", is_flag=True, help="Run what does not depend on a failure.")
@click.option("--only", multiple=True, metavar="STEP", help="Run only STEP (and what it needs).")
@click.option(
    "--set", "sets", multiple=True, metavar="NAME=VALUE", help="A pipeline param (repeatable)."
)
@click.option("--plain", is_flag=True, help="Line-by-line output even on a terminal.")
@click.option("--quiet", "-q", is_flag=True, help="Only failures and the summary.")
@click.option("--tui", is_flag=True, help="Watch the run full screen (`stockade tui`).")
@click.option("--data-dir", metavar="DIR", help="Logs and run records (default: ./.stockade).")
@click.option(
    "--database-url", metavar="URL", help="The store [$STOCKADE_DATABASE_URL, else the data dir]."
)
@click.option(
    "--fleet", is_flag=True, help="Queue each job for workers (`stockade worker`) instead."
)
def run_command(
    pipeline: str | None,
    config_file: str | None,
    jobs: int | None,
    as_json: bool,
    junit: str | None,
    keep_going: bool,
    only: tuple[str, ...],
    sets: tuple[str, ...],
    plain: bool,
    quiet: bool,
    tui: bool,
    data_dir: str | None,
    database_url: str | None,
    fleet: bool,
) -> int:
    """Run PIPELINE (default: the only one defined) and show it live."""
    from stockade.cli.startup import asyncio_without_tls

    asyncio_without_tls()  # before anything imports it: a run needs no TLS
    if tui:
        from stockade.tui.launch import run_command_in_tui

        return run_command_in_tui(locals())
    from stockade.cli.tasks import config_path, print_problems

    data = Path(data_dir or os.environ.get("STOCKADE_DATA_DIR") or ".stockade")
    try:
        config, name, spec = _load(config_path(config_file), pipeline, data, fleet)
        unknown = [step for step in only if step not in spec.steps]
        if unknown:
            raise UsageError(f"--only: unknown step {unknown[0]!r} in pipeline {name!r}")
        params = _given_params(spec, sets, name)
    except (ConfigError, UsageError) as exc:
        # Imported only now: the package loads yaml and pydantic, which a
        # run from a cached plan does without (and only loading raises it).
        from stockade.config import ConfigValidationError

        if isinstance(exc, ConfigValidationError):
            print_problems(exc)
        else:
            click.echo(f"stockade: error: {printable(exc.message)}", err=True)
        return 2
    options = RunCommandOptions(
        jobs, as_json, junit, keep_going, only, plain, quiet, data, database_url, params, fleet
    )
    return execute_pipeline(config, name, spec, options)


def _load(
    path: Path, pipeline: str | None, data: Path, fleet: bool
) -> tuple[RunPlan | Config, str, PlainPipeline | PipelineSpec]:
    """The config to run and its pipeline: the compiled plan, from the plan
    cache under ``data`` when it has it (:mod:`stockade.runplan`); a
    ``--fleet`` run queues its jobs through the models, so it loads them."""
    if fleet:
        from stockade.config import load

        config = load(path)
        return (config, *config.pipeline(pipeline))
    from stockade.runplan.load import load_plan

    plan, _ = load_plan(path, data)
    return (plan, *plan.pipeline(pipeline))


def _given_params(
    spec: PlainPipeline | PipelineSpec, sets: tuple[str, ...], name: str
) -> dict[str, Any]:
    """The ``--set`` values, checked against the pipeline's ``params:``."""
    from stockade.runplan.logic import resolve_params

    try:
        values = resolve_params(spec.params, sets, name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    given = {entry.partition("=")[0] for entry in sets}
    return {key: value for key, value in values.items() if key in given}


def execute_pipeline(
    config: RunPlan | Config,
    name: str,
    spec: PlainPipeline | PipelineSpec,
    options: RunCommandOptions,
    **rerun: Any,
) -> int:
    """Run the pipeline recorded in the store; the command's exit status.

    ``rerun`` passes :class:`~stockade.engine.runs.PipelineRun`'s rerun
    arguments (``reuse``, ``source_run``, ``rerun``) for ``stockade rerun``."""
    from stockade.sandbox import fence

    problem = _destination_problem(options)
    if problem:
        click.echo(f"stockade: error: {problem}", err=True)
        return 2
    fence.start()  # the run's jobs die with this process, however it dies
    import asyncio

    try:
        store = _run_store(options)
        return asyncio.run(_execute(store, config, name, spec, options, rerun))
    except StockadeError as exc:
        click.echo(f"stockade: error: {printable(exc.message)}", err=True)
        return 1


def _run_store(options: RunCommandOptions) -> RunRecording:
    """Where the run is recorded: a --fleet run queues its jobs in the store,
    which takes the full one; otherwise :func:`~stockade.store.literuns.open_run_store`."""
    if options.fleet:
        from stockade.store import open_store

        return open_store(options.database_url, options.data_dir)
    from stockade.store.literuns import open_run_store

    return open_run_store(options.database_url, options.data_dir)


def _destination_problem(options: RunCommandOptions) -> str:
    """What is wrong with where the run would write (its data directory,
    the JUnit file), found before any job starts; ``""`` if nothing."""
    from stockade.paths import writable_dir, writable_file

    try:
        writable_dir(str(options.data_dir), "--data-dir")
        if options.junit:
            writable_file(options.junit, "--junit")
    except ValueError as exc:
        return str(exc)
    return ""


class RunCommandOptions:
    """The options of one ``stockade run``, as the scheduler and the view need
    them (a plain class: a dataclass's generated methods cost every run's
    start-up)."""

    __slots__ = (
        "as_json", "data_dir", "database_url", "fleet", "jobs", "junit", "keep_going", "only",
        "params", "plain", "quiet",
    )  # fmt: skip

    def __init__(
        self,
        jobs: int | None,
        as_json: bool,
        junit: str | None,
        keep_going: bool,
        only: tuple[str, ...],
        plain: bool,
        quiet: bool,
        data_dir: Path,
        database_url: str | None = None,
        params: dict[str, Any] | None = None,
        fleet: bool = False,
    ) -> None:
        self.jobs = jobs
        self.as_json = as_json
        self.junit = junit
        self.keep_going = keep_going
        self.only = only
        self.plain = plain
        self.quiet = quiet
        self.data_dir = data_dir
        self.database_url = database_url
        self.params: dict[str, Any] = {} if params is None else params
        #: Queue the jobs for workers (:mod:`stockade.engine.fleetrun`).
        self.fleet = fleet


def _observer(options: RunCommandOptions) -> Observer:
    """The view, ended quietly if stdout is closed (``| head``): the run goes on."""
    from stockade.ui.observers import JsonObserver, LiveObserver, PlainObserver
    from stockade.ui.pipeguard import ClosedPipeGuard
    from stockade.ui.plaintext import PlainConsole, stdout_is_terminal

    view: Observer
    if options.as_json:
        view = JsonObserver(sys.stdout)
    elif options.plain or options.quiet or not stdout_is_terminal():
        view = PlainObserver(PlainConsole(), quiet=options.quiet)
    else:
        from stockade.ui.pipeconsole import PipeConsole

        view = LiveObserver(PipeConsole(highlight=False))
    return ClosedPipeGuard(view)


async def _execute(
    store: RunRecording,
    config: RunPlan | Config,
    name: str,
    spec: PlainPipeline | PipelineSpec,
    options: RunCommandOptions,
    rerun: dict[str, Any],
) -> int:
    from stockade.engine.runs import PipelineRun, RunOptions
    from stockade.pipeline.model import Status

    pipeline_run = PipelineRun(
        store, config, name, spec,
        options=RunOptions(
            options.jobs, options.keep_going, options.only, options.params, options.fleet
        ),
        observers=[_observer(options)], data_dir=str(options.data_dir.absolute()), **rerun,
    )  # fmt: skip
    pipeline_run.create()
    _install_interrupts(pipeline_run)
    run = await pipeline_run.execute()
    if options.junit:
        from stockade.pipeline.joberrors import job_errors
        from stockade.pipeline.test2json import junit_xml

        cases = [case for job in run.jobs() for case in job.tests] + job_errors(run)
        Path(options.junit).write_bytes(junit_xml(cases, name=name))
    if run.status is Status.CANCELLED:
        return 130
    return 1 if run.status is Status.FAILED else 0


def _install_interrupts(scheduler: PipelineRun) -> None:
    """First Ctrl-C (or SIGTERM): stop every job cleanly; second: force (and
    stop waiting for a store that is down to record the end)."""
    import asyncio

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
