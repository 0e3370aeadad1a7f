"""Finding and loading ``stockade.yaml`` for commands that name a task."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stockade.errors import UsageError
from stockade.printable import printable
from stockade.runner.spec import RunSpec

if TYPE_CHECKING:
    from stockade.config import ConfigValidationError

__all__ = ["config_path", "print_problems", "task_run_spec"]


def config_path(given: str | None) -> Path:
    """``--config FILE``, else ``stockade.yaml`` in the working directory."""
    from stockade.configfile import find_config

    if given:
        path = Path(given)
        if not path.is_file():
            raise UsageError(f"config file {given!r} not found")
        return path
    found = find_config(Path.cwd())
    if found is None:
        raise UsageError("no stockade.yaml here: give --config FILE, or run from its directory")
    return found


def task_run_spec(name: str, config: str | None, data_dir: str | None) -> RunSpec:
    """The runner spec of task ``name`` from the project's config."""
    from stockade.config import load

    cfg = load(config_path(config))
    return cfg.run_spec(name, data_dir=data_dir)


def print_problems(exc: ConfigValidationError) -> None:
    """Every problem of a config on stderr, one per line, then their count."""
    import click

    for problem in exc.problems:
        click.echo(printable(str(problem)), err=True)
    click.echo(f"stockade: {len(exc.problems)} problem(s) found", err=True)
