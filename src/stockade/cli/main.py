"""``stockade``: the entry point.

Nothing heavy is imported here: ``stockade exec`` goes straight to its
argparse module, every other command through the click group in
:mod:`stockade.cli.group`.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the command's status."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["exec"]:
        # The hot path: argparse, no click (see stockade.cli.exec_cmd).
        if argv is None:  # this process is the command's own
            from stockade.cli.startup import hold

            hold()
        from stockade.cli.exec_cmd import main as exec_main

        return exec_main(args[1:])
    import click

    from stockade.cli.group import cli, explain

    if os.environ.get("OTEL_TRACES_EXPORTER"):  # traces are off unless asked for
        from stockade.tracing import configure

        configure()
    try:
        status = cli.main(args=argv, prog_name="stockade", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("stockade: aborted", err=True)
        return 130
    except click.ClickException as exc:
        from stockade.printable import printable

        click.echo(f"stockade: error: {printable(explain(exc))}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
