"""``stockade db``: the store's schema (``upgrade``, ``status``)."""

from __future__ import annotations

from typing import Any

import click

from stockade.cli.store_opts import open_store_from, store_command

__all__ = ["db_group"]


@click.group("db", short_help="Create or upgrade the job store's schema.")
def db_group() -> None:
    """The job store's schema."""


@db_group.command("upgrade")
@store_command
def upgrade_command(**opts: Any) -> int:
    """Apply every pending migration (creates the schema in a new database)."""
    from stockade.store import migrate

    store = open_store_from(opts, schema="none")
    try:
        before, after = migrate.upgrade(store.db)
    finally:
        store.close()
    if before == after:
        click.echo(f"{store.db.name}: schema {after}, up to date")
    else:
        click.echo(f"{store.db.name}: schema {before or 'none'} -> {after}")
    return 0


@db_group.command("status")
@store_command
def status_command(**opts: Any) -> int:
    """Print the schema revision and the number of jobs in each state."""
    from stockade.store import migrate

    store = open_store_from(opts, schema="none")
    try:
        revision = migrate.current(store.db)
        counts = store.queries.count_by_state() if revision == migrate.HEAD else {}
    finally:
        store.close()
    state = "up to date" if revision == migrate.HEAD else f"needs upgrade to {migrate.HEAD}"
    click.echo(f"{store.db.name}: schema {revision or 'none'} ({state})")
    for name, count in sorted(counts.items()):
        click.echo(f"  {name:10} {count}")
    return 0 if revision == migrate.HEAD else 1
