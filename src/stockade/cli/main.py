"""``stockade``: the entry point and the lazy command group."""

from __future__ import annotations

import importlib
import sys

import click

__all__ = ["cli", "main"]

#: command name -> (module, attribute, one-line help shown by --help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "exec": (
        "stockade.cli.exec_cmd",
        "exec_command",
        "Run one command or task as a supervised job.",
    ),
    "validate": (
        "stockade.cli.config_cmd",
        "validate_command",
        "Check a stockade.yaml and summarize it.",
    ),
    "schema": (
        "stockade.cli.config_cmd",
        "schema_command",
        "Print the JSON Schema of stockade.yaml.",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stockade", message="stockade %(version)s")
def cli() -> None:
    """stockade runs any command as a supervised, sandboxed, durable job."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the command's status."""
    try:
        status = cli.main(args=argv, prog_name="stockade", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("stockade: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"stockade: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
