"""``stockade cache``: the pipelines' result cache (``clear``)."""

from __future__ import annotations

import os

import click

__all__ = ["cache_group"]


@click.group("cache", short_help="Manage the pipelines' result cache.")
def cache_group() -> None:
    """The result cache of pipeline steps with ``cache: key: [...]``."""


@cache_group.command("clear")
@click.option("--data-dir", metavar="DIR", help="Runs' data directory (default: ./.stockade).")
def clear_command(data_dir: str | None) -> int:
    """Forget every stored result: the next run runs every job again."""
    from stockade.pipeline.cache import ResultCache

    cache = ResultCache(data_dir or os.environ.get("STOCKADE_DATA_DIR") or ".stockade")
    removed = cache.clear()
    plural = "" if removed == 1 else "s"
    click.echo(f"removed {removed} cached result{plural} from {cache.directory}")
    return 0
