"""``stockade schedules`` and ``stockade prune``: time and retention in the store."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from stockade.cli.store_opts import open_store_from, store_command
from stockade.cli.values import duration
from stockade.printable import printable

__all__ = ["prune_command", "schedules_command"]

FINAL = ("succeeded", "failed", "cancelled")


def _when(epoch: float | None) -> str:
    """A time as UTC, to the second."""
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


@click.command("schedules", short_help="List schedules with their next and last run.")
@click.option(
    "--config", "-c", "config_path", metavar="FILE",
    help="Store this stockade.yaml's schedules first (as a worker given it does).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object per schedule, one per line.")
@store_command
def schedules_command(**opts: Any) -> int:
    """List the store's schedules: name, task, cron, time zone, next and last tick.

    Workers and servers store the schedules of the stockade.yaml they were
    given, and fire them; times are UTC.
    """
    store = open_store_from(opts)
    try:
        if opts["config_path"]:
            from stockade.config import load
            from stockade.engine.housekeeping import define

            define(store, load(opts["config_path"]))
        schedules = store.schedules.list()
    finally:
        store.close()
    if opts["as_json"]:
        for one in schedules:
            click.echo(json.dumps(one.to_dict(), sort_keys=True))
        return 0
    rows = [("NAME", "TASK", "CRON", "TIMEZONE", "CATCH_UP", "NEXT", "LAST", "LAST_JOB")]
    rows += [
        (s.name, s.task, s.cron, s.timezone, s.catch_up, _when(s.next_at), _when(s.last_at),
         s.last_job or "-")
        for s in schedules
    ]  # fmt: skip
    shown = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in shown) for i in range(len(shown[0]))]
    for row in shown:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


@click.command("prune", short_help="Delete finished jobs and runs older than a duration.")
@click.option(
    "--older-than", "older_than", metavar="DURATION", required=True,
    help="Delete what finished longer ago than this (30d, 12h, 90m).",
)  # fmt: skip
@click.option(
    "--state", "states", multiple=True, type=click.Choice(FINAL),
    help="Only jobs (and runs) that ended in this state [every final state].",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option(
    "--batch", type=click.IntRange(1, 10_000), default=500, show_default=True,
    help="Jobs deleted per transaction.",
)  # fmt: skip
@store_command
def prune_command(**opts: Any) -> int:
    """Delete finished jobs with their attempts, logs, events and outputs, and
    finished pipeline runs whole, in small transactions (queued and running
    jobs are never touched; a run's jobs go only with their run).

    \b
      stockade prune --older-than 30d
      stockade prune --older-than 7d --state succeeded --dry-run
    """
    from stockade.engine.housekeeping import remove_files
    from stockade.store.retention import Pruned

    age = duration(opts["older_than"], "--older-than")
    ages = dict.fromkeys(opts["states"] or FINAL, age)
    store = open_store_from(opts)
    try:
        if opts["dry_run"]:
            jobs, runs = store.retention.count(ages)
            click.echo(f"would delete {jobs} job(s) and {runs} run(s) with their jobs")
            return 0
        total, files = Pruned(), 0
        now = store.queries.now()  # one cutoff for every batch
        while True:
            batch = store.retention.prune(ages, limit=opts["batch"], now=now)
            total += batch
            files += remove_files(opts["data_dir"], batch.jobs)
            if not batch.jobs and not batch.runs:
                break
    finally:
        store.close()
    click.echo(f"deleted {len(total.jobs)} job(s) and {len(total.runs)} run(s), {files} file(s)")
    return 0
