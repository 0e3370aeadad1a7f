"""``stockade workers``: the live workers, what they serve and how busy they are."""

from __future__ import annotations

import json
from typing import Any

import click

from stockade.cli.store_opts import open_store_from, store_command
from stockade.printable import printable

__all__ = ["workers_command"]


@click.command("workers", short_help="List live workers: queues, labels, slots, heartbeat.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per worker, one per line.")
@store_command
def workers_command(**opts: Any) -> int:
    """List the workers heard from in the last minute: name, host, the queues
    they serve (* for every queue), labels, sandboxes, slots busy/total, the
    jobs they run, seconds since their last heartbeat, stockade version."""
    from stockade.engine.workersview import live_workers

    store = open_store_from(opts)
    try:
        workers = live_workers(store)
    finally:
        store.close()
    if opts["as_json"]:
        for worker in workers:
            click.echo(json.dumps(worker, sort_keys=True))
        return 0
    if not workers:
        click.echo("no live worker")
        return 0
    rows: list[tuple[str, ...]] = [
        ("NAME", "HOST", "QUEUES", "LABELS", "SANDBOXES", "SLOTS", "RUNNING", "SEEN", "VERSION")
    ]
    rows += [_row(worker) for worker in workers]
    shown: list[tuple[str, ...]] = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in shown) for i in range(len(shown[0]))]
    for row in shown:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


_HEADER = ("NAME", "HOST", "QUEUES", "LABELS", "SANDBOXES", "SLOTS", "RUNNING", "SEEN", "VERSION")


def _row(worker: dict[str, Any]) -> tuple[str, ...]:
    queues, sandboxes = worker["queues"], worker["sandboxes"]
    running = worker["running"]
    return (
        worker["name"],
        worker["host"],
        "*" if queues is None else ",".join(queues),
        ",".join(f"{k}={v}" for k, v in sorted(worker["labels"].items())) or "-",
        "*" if sandboxes is None else ",".join(sandboxes) or "-",
        f"{worker['slots']['busy']}/{worker['slots']['total']}",
        ",".join(running[:3]) + (f" +{len(running) - 3}" if len(running) > 3 else "") or "-",
        f"{worker['heartbeat_age']:.0f}s ago",
        worker["version"] or "?",
    )
