"""Options and error handling shared by the commands that use the job store.

Every store command takes ``--database-url`` (else ``$STOCKADE_DATABASE_URL``)
and ``--data-dir`` (else ``$STOCKADE_DATA_DIR``, else ``./.stockade``), and
reports any stockade error as one line — ``stockade: error: …`` — with exit
status 2 for usage and configuration errors and 1 for everything else
(an unreachable database, a wrong URL, an unknown job).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from stockade.errors import ConfigError, StockadeError, UsageError
from stockade.printable import printable

__all__ = ["fail", "open_reader_from", "open_store_from", "store_command"]

F = TypeVar("F", bound=Callable[..., Any])


def store_command(func: F) -> F:
    """Add the store options and turn stockade errors into one-line messages."""

    @click.option(
        "--database-url",
        metavar="URL",
        help="sqlite:///PATH or postgresql://… [$STOCKADE_DATABASE_URL, else the data dir].",
    )
    @click.option("--data-dir", metavar="DIR", help="[$STOCKADE_DATA_DIR or ./.stockade]")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (UsageError, ConfigError) as exc:
            return fail(exc, 2)
        except StockadeError as exc:
            return fail(exc, 1)
        except KeyboardInterrupt:
            click.echo("stockade: interrupted", err=True)
            return 130

    return wrapper  # type: ignore[return-value]


def fail(exc: StockadeError, status: int) -> int:
    """Print the error (each of its lines, escaped) and return ``status``."""
    for line in str(exc).splitlines() or [exc.message]:
        click.echo(f"stockade: error: {printable(line)}", err=True)
    return status


def open_store_from(opts: dict[str, Any], *, schema: str = "ensure") -> Any:
    """The store the options name (imports SQLAlchemy only now)."""
    from stockade.store import open_store

    return open_store(opts.get("database_url"), opts.get("data_dir"), schema=schema)


def open_reader_from(opts: dict[str, Any]) -> Any:
    """A reader of the store the options name, for commands that only read:
    on SQLite without SQLAlchemy when it can (:mod:`stockade.store.lite`)."""
    from stockade.store.lite import open_reader

    return open_reader(opts.get("database_url"), opts.get("data_dir"))
