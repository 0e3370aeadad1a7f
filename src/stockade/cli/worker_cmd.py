"""``stockade worker``: claim jobs from the store and run them until stopped."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from stockade.cli.store_opts import open_store_from, store_command
from stockade.cli.values import duration
from stockade.errors import UsageError

__all__ = ["worker_command"]


@click.command("worker", short_help="Run jobs from the store in N slots until stopped.")
@click.option("--slots", "-s", type=click.IntRange(min=1), help="Jobs at once [CPU count].")
@click.option(
    "--lease",
    metavar="DURATION",
    default="30s",
    show_default=True,
    help="How long a job stays ours without a heartbeat.",
)
@click.option(
    "--drain-timeout",
    metavar="DURATION",
    default="30s",
    show_default=True,
    help="On SIGTERM/SIGINT, how long running jobs may finish.",
)
@click.option(
    "--poll",
    metavar="DURATION",
    default="0.5s",
    show_default=True,
    help="How often an idle worker looks for work (PostgreSQL also wakes it).",
)
@click.option(
    "--name",
    "worker_id",
    metavar="ID",
    help="A stable worker id: on restart, jobs it held are recovered at once.",
)
@click.option("--burst", is_flag=True, help="Exit once no job is queued or running.")
@click.option("--verbose", "-v", count=True, help="Log every job (-v) or debug (-vv).")
@click.option("--quiet", "-q", is_flag=True, help="Log only warnings and errors.")
@store_command
def worker_command(**opts: Any) -> int:
    """Claim jobs in priority-then-age order and run them, one per slot.

    SIGTERM or SIGINT stops claiming and lets running jobs finish for up to
    --drain-timeout, then stops them and returns them to the queue without
    spending an attempt; a second signal skips the drain.
    """
    from stockade.engine.client import run_worker
    from stockade.engine.worker import WorkerOptions

    options = WorkerOptions(
        slots=opts["slots"] or len(os.sched_getaffinity(0)),
        lease=_positive(opts["lease"], "--lease"),
        drain_timeout=duration(opts["drain_timeout"], "--drain-timeout"),
        poll=_positive(opts["poll"], "--poll"),
        worker_id=opts["worker_id"],
        data_dir=opts["data_dir"],
        burst=opts["burst"],
    )
    _logging(opts["verbose"], opts["quiet"])
    store = open_store_from(opts)
    return run_worker(store, options)


def _positive(text: str, option: str) -> float:
    value = duration(text, option)
    if value <= 0:
        raise UsageError(f"{option} must be more than 0")
    return value


def _logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO
    if verbose:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("stockade worker: %(message)s"))
    logger = logging.getLogger("stockade")
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
