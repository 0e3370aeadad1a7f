"""``stockade runs RUN --timeline``: the run's jobs as bars over time."""

from __future__ import annotations

import json
import shutil
from typing import Any

import click

from stockade.errors import UsageError
from stockade.printable import printable

__all__ = ["show_timeline"]


def show_timeline(store: Any, run_ref: str | None, *, as_json: bool) -> int:
    """Print the timeline of ``run_ref`` (text sized to the terminal, or JSON)."""
    from stockade.engine.timeline import for_run, render_text

    if run_ref is None:
        raise UsageError("--timeline needs the RUN to show (an id, a prefix, or latest)")
    timeline = for_run(store, run_ref)
    if as_json:
        click.echo(json.dumps(timeline.to_dict(), indent=2, sort_keys=True))
        return 0
    width = shutil.get_terminal_size((100, 24)).columns
    click.echo(f"run {timeline.run_id}")
    for line in render_text(timeline, width).splitlines():
        click.echo(printable(line))
    return 0
