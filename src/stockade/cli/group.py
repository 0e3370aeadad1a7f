"""The click command group; commands are imported on first use."""

from __future__ import annotations

import importlib

import click

__all__ = ["COMMANDS", "cli", "explain"]

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
    "run": ("stockade.cli.run_cmd", "run_command", "Run a pipeline from stockade.yaml, live."),
    "runs": ("stockade.cli.runs_cmd", "runs_command", "List pipeline runs, or show one."),
    "rerun": (
        "stockade.cli.runs_cmd",
        "rerun_command",
        "Run a recorded run again: all, --failed, or one STEP[/ITEM].",
    ),
    "tui": ("stockade.cli.tui_cmd", "tui_command", "Watch a pipeline run full screen."),
    "cache": ("stockade.cli.cache_cmd", "cache_group", "Clear the pipelines' result cache."),
    "sandboxes": ("stockade.cli.sandboxes_cmd", "sandboxes_command", "List sandbox backends."),
    "submit": (
        "stockade.cli.submit_cmd",
        "submit_command",
        "Queue a job (a TASK or -- COMMAND) and print its id.",
    ),
    "jobs": ("stockade.cli.jobs_cmd", "jobs_command", "List jobs in the store."),
    "schedules": (
        "stockade.cli.schedules_cmd",
        "schedules_command",
        "List schedules with their next and last run.",
    ),
    "prune": (
        "stockade.cli.schedules_cmd",
        "prune_command",
        "Delete finished jobs and runs older than a duration.",
    ),
    "show": ("stockade.cli.jobs_cmd", "show_command", "Show one job: state, attempts, outputs."),
    "logs": ("stockade.cli.jobs_cmd", "logs_command", "Print a job's output (-f follows it)."),
    "artifacts": (
        "stockade.cli.artifacts_cmd",
        "artifacts_command",
        "List a job's artifacts, or save them (-o DIR).",
    ),
    "cancel": ("stockade.cli.jobs_cmd", "cancel_command", "Cancel queued or running jobs."),
    "retry": ("stockade.cli.jobs_cmd", "retry_command", "Queue failed or cancelled jobs again."),
    "worker": (
        "stockade.cli.worker_cmd",
        "worker_command",
        "Run jobs from the store in N slots until stopped.",
    ),
    "workers": (
        "stockade.cli.workers_cmd",
        "workers_command",
        "List live workers: queues, labels, slots, heartbeat.",
    ),
    "db": ("stockade.cli.db_cmd", "db_group", "Create or upgrade the job store's schema."),
    "serve": ("stockade.cli.serve_cmd", "serve_command", "Serve the HTTP API, webhooks, metrics."),
    "health": ("stockade.cli.health_cmd", "health_command", "Check a server's /health (exit 0/1)."),
    "token": ("stockade.cli.serve_cmd", "token_group", "Make API tokens for `stockade serve`."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if not entry[1]:
            return _ArgparseCommand(cmd_name, entry[0], entry[2])
        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, entry[1])
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            from stockade.suggest import did_you_mean

            ctx.fail(f"no such command {name!r}{did_you_mean(name, COMMANDS)}")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class _ArgparseCommand(click.Command):
    """A command parsed by argparse in its own module (``main(argv) -> int``);
    reached through click only for ``stockade help``-style listings."""

    def __init__(self, name: str, module: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help, add_help_option=False,
                         context_settings={"ignore_unknown_options": True})  # fmt: skip
        self.params = [click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)]
        self._module = module
        self.callback = self._invoke

    def _invoke(self, args: tuple[str, ...]) -> int:
        entry: int = importlib.import_module(self._module).main(list(args))
        return entry


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stockade", message="stockade %(version)s")
def cli() -> None:
    """stockade runs any command as a supervised, sandboxed, durable job."""


def explain(exc: click.ClickException) -> str:
    """The one-line message for a click error; an unknown option names the
    command's option it most likely misspells (click's own guess lists up to
    three, sorted by name, and is misled by the shared ``--``)."""
    if isinstance(exc, click.NoSuchOption) and exc.ctx is not None:
        from stockade.suggest import did_you_mean

        params = exc.ctx.command.get_params(exc.ctx)
        known = [o for p in params for o in (*p.opts, *p.secondary_opts)]
        return f"no such option {exc.option_name!r}{did_you_mean(exc.option_name, known)}"
    return exc.format_message()
