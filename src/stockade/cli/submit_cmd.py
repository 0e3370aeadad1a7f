"""``stockade submit``: put a job in the store's queue and print its id."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import click

from stockade.cli.store_opts import open_store_from, store_command
from stockade.cli.values import duration, parse_input
from stockade.engine.adhoc import INPUT_FORMAT, Adhoc, adhoc_job
from stockade.errors import UsageError
from stockade.printable import printable
from stockade.store.records import NewJob
from stockade.storeints import STORE_INT_MAX, STORE_INT_MIN

__all__ = ["submit_command"]


class _SubmitCommand(click.Command):
    """Remembers whether ``--`` was given: ``submit NAME`` queues a task,
    ``submit -- NAME`` a program."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["stockade.dashdash"] = "--" in args
        return super().parse_args(ctx, args)


@click.command(
    "submit", cls=_SubmitCommand, short_help="Queue a job (a TASK or -- COMMAND) and print its id."
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--config", "-c", "config_path", metavar="FILE", help="stockade.yaml to read tasks from."
)
@click.option("--shell", "shell_line", metavar="LINE", help="Queue LINE, run with /bin/sh -c.")
@click.option("--input", "-i", "input_text", metavar="JSON|@FILE", help="The job input.")
@click.option(
    "--inputs", "inputs_path", metavar="FILE.jsonl",
    help="One job per line of FILE (a JSON input each; - reads stdin), stored 1,000 at a time.",
)  # fmt: skip
@click.option(
    "--priority", "-p", type=click.IntRange(STORE_INT_MIN, STORE_INT_MAX),
    help="Higher runs first [the task's, else 0].",
)  # fmt: skip
@click.option(
    "--cwd", metavar="DIR",
    help="Where a -- COMMAND or --shell LINE runs [this directory]; recorded with the job.",
)  # fmt: skip
@click.option("--delay", metavar="DURATION", help="Do not start before this long from now.")
@click.option("--queue", metavar="QUEUE", help="The queue it waits in [the task's, else default].")
@click.option(
    "--require", "requires", metavar="NAME=VALUE", multiple=True,
    help="A label the claiming worker must offer (repeatable; adds to the task's).",
)  # fmt: skip
@click.option(
    "--max-attempts", type=click.IntRange(1, STORE_INT_MAX), help="Attempts in total [the task's]."
)
@click.option(
    "--count", "-n", type=click.IntRange(min=1), default=1, help="Queue N identical jobs."
)
@click.option(
    "--wait", "-w", is_flag=True, help="Wait for the job to finish; exit with its status."
)
@click.option(
    "--cancel-on-interrupt", is_flag=True,
    help="With --wait: Ctrl-C cancels the job [it stays queued or running].",
)  # fmt: skip
@click.option(
    "--after", "after", multiple=True, metavar="JOB[,JOB...]",
    help="Run once these jobs succeeded (one that fails or is cancelled fails this one).",
)  # fmt: skip
@click.option(
    "--after-any", "after_any", multiple=True, metavar="JOB[,JOB...]",
    help="Run once these jobs ended, whatever their outcome.",
)  # fmt: skip
@store_command
def submit_command(args: tuple[str, ...], **opts: Any) -> int:
    """Queue TASK from stockade.yaml, a --shell LINE, or -- COMMAND [ARG...].

    \b
      stockade submit build --input '{"target": "x86"}'
      stockade submit --priority 5 -- make -j4
      stockade submit --wait --shell 'echo hi'
      stockade submit deploy --after 0193ab12cd4
      stockade submit --queue gpu --require gpu=1 -- ./train.sh
      stockade submit build --inputs targets.jsonl
    """
    if opts["cancel_on_interrupt"] and not opts["wait"]:
        raise UsageError("--cancel-on-interrupt is for --wait: add --wait or leave it out")
    adhoc = _adhoc(args, opts)
    if adhoc is not None and adhoc.fits() and _fast(opts):  # no pydantic (engine.adhoc)
        queue, labels = _routing(opts["queue"], opts["requires"])
        delay = _delay(opts)
        value = _input(INPUT_FORMAT, opts)
        jobs = _made("exec", opts["count"], lambda: adhoc_job(
            adhoc, max_attempts=opts["max_attempts"], queue=queue, labels=labels,
            input=value, priority=opts["priority"], delay=delay,
        ))  # fmt: skip
    else:
        from stockade.engine.jobspec import new_job

        name, task, config = _task(args, opts, adhoc)
        if opts["max_attempts"]:
            task = task.model_copy(update={"max_attempts": opts["max_attempts"]})
        task = routed(task, *_routing(opts["queue"], opts["requires"]))
        delay = _delay(opts)
        if opts["inputs_path"] is not None:
            return _bulk(name, task, config, delay, opts)
        value = _input(task.input_format, opts)
        jobs = _made(name, opts["count"], lambda: new_job(
            name, task, config=config, input=value, priority=opts["priority"], delay=delay
        ))  # fmt: skip
    store = open_store_from(opts) if opts["wait"] else _writer(opts)
    try:
        after, after_any = _after(store, opts)
        for each in jobs:
            each.after, each.after_any = after, after_any
        placed = store.jobs.place(jobs)
        ids = [job_id for job_id, _ in placed]
        for job_id, created in placed:
            if not created:
                state = store.queries.job(job_id).state.value
                click.echo(f"already {state}: {job_id}", err=True)
            click.echo(job_id)
        if not opts["wait"]:
            return 0
        from stockade.cli.waitjobs import wait_jobs

        return wait_jobs(store, ids, cancel_on_interrupt=opts["cancel_on_interrupt"])
    finally:
        store.close()


def _delay(opts: dict[str, Any]) -> float:
    return duration(opts["delay"], "--delay") if opts["delay"] is not None else 0.0


def _input(input_format: str, opts: dict[str, Any]) -> Any:
    """``--input``, refused (one line) if a job of ``input_format`` cannot take it."""
    from stockade.runner.inputs import check_input

    value = parse_input(opts["input_text"])
    check_input(input_format, value)
    return value


def _made(name: str, count: int, make: Callable[[], NewJob]) -> list[NewJob]:
    """``count`` jobs of ``make()``, in a submit span: inside a traced job
    (``TRACEPARENT``) the jobs it submits join its trace."""
    from stockade import tracing

    parent = {"traceparent": os.environ["TRACEPARENT"]} if "TRACEPARENT" in os.environ else None
    with tracing.span("stockade.submit", parent, {"stockade.task": name}):
        return [make() for _ in range(count)]


def _writer(opts: dict[str, Any]) -> Any:
    """The store to submit to: on SQLite without SQLAlchemy when it can
    (:func:`stockade.store.lite.open_writer`)."""
    from stockade.store.lite import open_writer

    return open_writer(opts.get("database_url"), opts.get("data_dir"))


def _after(store: Any, opts: dict[str, Any]) -> tuple[list[str], bool]:
    """The full ids of the jobs ``--after`` (or ``--after-any``) names, by id
    or unique prefix; ``(ids, whether any end will do)``."""
    from stockade.errors import DependencyError, StoreError

    if opts["after"] and opts["after_any"]:
        raise UsageError("give --after or --after-any, not both")
    refs = [ref.strip() for given in opts["after"] or opts["after_any"]
            for ref in given.split(",") if ref.strip()]  # fmt: skip
    ids: list[str] = []
    for ref in refs:
        try:
            ids.append(store.queries.job(ref).id)
        except StoreError as exc:
            flag = "--after" if opts["after"] else "--after-any"
            raise DependencyError(f"{flag} {ref}: {exc.message}") from None
    return list(dict.fromkeys(ids)), bool(opts["after_any"])


def _routing(queue: str | None, requires: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """``--queue`` (``None``: the task's) and the labels ``--require`` gives."""
    from stockade.routenames import parse_label, parse_queues

    try:
        if queue is not None:
            names = parse_queues(queue, "--queue")
            if len(names) != 1:
                raise ValueError("--queue names one queue: the job waits in one")
            queue = names[0]
        return queue, dict(parse_label(text, "--require") for text in requires)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def routed(task: Any, queue: str | None, labels: dict[str, str]) -> Any:
    """``task`` in ``queue`` (unless ``None``) requiring ``labels`` besides
    its own (a label given replaces the task's value of that label)."""
    update: dict[str, Any] = {}
    if queue is not None:
        update["queue"] = queue
    if labels:
        from stockade.spec.routing import Requires

        update["requires"] = Requires(labels={**task.requires.labels, **labels})
    return task.model_copy(update=update) if update else task


def _bulk(name: str, task: Any, config: Any, delay: float, opts: dict[str, Any]) -> int:
    """``--inputs``: a job per line; each chunk's ids printed once it is stored."""
    from stockade.engine.bulk import submit_inputs
    from stockade.engine.jobspec import new_job

    for given, option in ((opts["input_text"], "--input"), (opts["wait"], "--wait")):
        if given:
            raise UsageError(f"--inputs gives every job its input: leave out {option}")
    if opts["count"] != 1:
        raise UsageError("--inputs makes one job per line: leave out --count")
    template = new_job(name, task, config=config, priority=opts["priority"], delay=delay)
    path = opts["inputs_path"]
    try:
        source = click.open_file(path, encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise UsageError(f"cannot read --inputs file {path!r}: {exc.strerror}") from exc
    store = _writer(opts)
    try:
        with source:  # undecodable bytes become lone surrogates: refused by line
            submit_inputs(store, template, source, stored=lambda ids: click.echo("\n".join(ids)))
    finally:
        store.close()
    return 0


def _adhoc(args: tuple[str, ...], opts: dict[str, Any]) -> Adhoc | None:
    """The ad-hoc job the arguments give (``None``: they name a task)."""
    ctx = click.get_current_context()
    dashdash = bool(ctx.meta.get("stockade.dashdash"))
    if opts["shell_line"] is not None:
        if args:
            raise UsageError("--shell takes the whole line; do not also give a command")
        return Adhoc(None, opts["shell_line"], _cwd(opts["cwd"]))
    if len(args) == 1 and not dashdash:
        return None
    if not args:
        raise UsageError("nothing to queue: give a TASK, --shell LINE, or -- COMMAND [ARG...]")
    return Adhoc(list(args), None, _cwd(opts["cwd"]))


def _fast(opts: dict[str, Any]) -> bool:
    """Whether an ad-hoc job is made without the task model
    (:mod:`stockade.engine.adhoc`): when it goes to a SQLite store through
    :mod:`stockade.store.lite` with no option that needs the full store."""
    if opts["wait"] or opts["after"] or opts["after_any"] or opts["inputs_path"] is not None:
        return False
    from stockade.store.url import sqlite_file

    lite = os.environ.get("STOCKADE_LITE", "1") != "0"
    return lite and sqlite_file(opts.get("database_url"), opts.get("data_dir")) is not None


def _task(args: tuple[str, ...], opts: dict[str, Any], adhoc: Adhoc | None) -> tuple[str, Any, Any]:
    """``(name, TaskSpec, Config or None)`` of ``adhoc``, or of the task ``args`` names."""
    if adhoc is not None:
        from stockade.engine.jobspec import adhoc_task

        argv = None if adhoc.argv is None else list(adhoc.argv)
        task = adhoc_task(argv=argv, shell=adhoc.shell, workdir=adhoc.workdir)
        return "exec", task, None
    from stockade.cli.tasks import config_path
    from stockade.config import load

    if opts["cwd"] is not None:
        raise UsageError("--cwd is for -- COMMAND and --shell LINE; a task names its workdir")
    config = load(config_path(opts["config_path"]))
    return args[0], config.task(args[0]), config


def _cwd(given: str | None) -> str:
    """Where an ad-hoc job runs: ``--cwd`` or this directory, made absolute
    here (a worker's own directory means nothing to the submitter)."""
    import os

    path = os.path.abspath(given if given is not None else os.getcwd())
    if not os.path.isdir(path):
        raise UsageError(f"--cwd {printable(path)!r} is not a directory here")
    return path
