"""``stockade validate`` and ``stockade schema``."""

from __future__ import annotations

import json

import click

from stockade.errors import ConfigError, UsageError
from stockade.printable import printable

__all__ = ["schema_command", "validate_command"]


@click.command("validate")
@click.argument("file", required=False, metavar="[FILE]")
def validate_command(file: str | None) -> int:
    """Check FILE (default: ./stockade.yaml) and summarize what it defines.

    Exits 0 when the file is valid, 1 with every problem listed when it is not.
    """
    from stockade.cli.tasks import config_path, print_problems
    from stockade.config import ConfigValidationError, load, summary

    try:
        cfg = load(config_path(file))
    except ConfigValidationError as exc:
        print_problems(exc)
        return 1
    except (ConfigError, UsageError) as exc:
        click.echo(f"stockade: error: {printable(exc.message)}", err=True)
        return 1
    click.echo(summary(cfg))
    return 0


@click.command("schema")
def schema_command() -> int:
    """Print the JSON Schema of stockade.yaml (for editors and linters)."""
    from stockade.config import json_schema

    click.echo(json.dumps(json_schema(), indent=2))
    return 0
