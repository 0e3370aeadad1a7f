"""``stockade tui [RUN]``: a run (finished, or live wherever it was started)
full screen, from the store. Textual is imported only when this runs."""

from __future__ import annotations

import sys
from typing import Any

import click

from stockade.cli.store_opts import open_store_from, store_command
from stockade.errors import RunNotFound, UsageError

__all__ = ["tui_command", "watch"]


@click.command("tui", short_help="Watch a pipeline run full screen.")
@click.argument("run_ref", metavar="[RUN]", default="latest")
@click.option("--config", "-c", "config_file", metavar="FILE", help="The stockade.yaml reruns use.")
@store_command
def tui_command(run_ref: str, **opts: Any) -> int:
    """Show RUN (an id, a unique prefix, or latest: the default) with its
    steps, jobs, tests, logs and timeline; it follows a live run."""
    store = open_store_from(opts)
    try:
        return watch(store, run_ref, opts)
    finally:
        store.close()


def watch(store: Any, run_ref: str, opts: dict[str, Any]) -> int:
    """Run the app on ``run_ref`` until the user quits it."""
    from stockade.engine.runview import find_run

    try:
        run_id = find_run(store, run_ref).id
    except RunNotFound as exc:
        if exc.run_id == "latest":
            raise UsageError("no run in the store to show: `stockade run` first") from None
        raise
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            f"stockade tui needs a terminal: `stockade runs {run_id}` shows it as text"
        )
    from stockade.tui.actions import Rerun
    from stockade.tui.app import RunApp

    rerun = Rerun(store, opts.get("config_file"), opts.get("data_dir"), opts.get("database_url"))
    RunApp(store, run_id, rerun).run()
    return 0
