"""``stockade sandboxes``: which backends this host can run, and how to fix the others."""

from __future__ import annotations

import json
import os

import click

__all__ = ["sandboxes_command"]


@click.command("sandboxes")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.option(
    "--leftovers",
    "leftover_pid",
    type=int,
    metavar="PID",
    help="Instead, list what stockade process PID left behind (mounts, cgroups, containers).",
)
def sandboxes_command(as_json: bool, leftover_pid: int | None) -> int:
    """List the sandbox backends, whether each is usable here, why not and how to fix it.

    Exits 0 when every backend but mock is usable, 1 otherwise.
    """
    if leftover_pid is not None:
        from stockade.sandbox.leftovers import leftovers

        found = leftovers(leftover_pid)
        for item in found:
            click.echo(item)
        if not as_json and not found:
            click.echo(f"nothing of stockade process {leftover_pid} is left")
        return 1 if found else 0

    from stockade.sandbox.registry import describe

    rows = describe()
    if as_json:
        data = [
            {
                "backend": name,
                "usable": usable.usable,
                "reason": usable.reason,
                "fix": usable.fix,
                "summary": info.summary,
                "isolates": info.isolates,
            }
            for name, info, usable in rows
        ]
        click.echo(json.dumps(data, indent=2))
    else:
        width = max(len(name) for name, _, _ in rows)
        who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
        click.echo(f"sandbox backends on this host (stockade running as {who}):")
        for name, info, usable in rows:
            mark = "usable" if usable.usable else "NOT USABLE"
            click.echo(f"  {name.ljust(width)}  {mark:<10}  {info.summary}")
            if usable.usable:
                click.echo(f"  {'':{width}}  {'':<10}  isolates: {info.isolates}")
            else:
                click.echo(f"  {'':{width}}  {'':<10}  why: {usable.reason}")
                click.echo(f"  {'':{width}}  {'':<10}  fix: {usable.fix}")
    missing = [name for name, _, usable in rows if name != "mock" and not usable.usable]
    return 1 if missing else 0
