"""``stockade run --tui``: the run in a process of its own, the TUI on it.

The pipeline runs as ``stockade run --json`` in a child process (in its own
session), so the TUI shares neither an event loop nor a GIL with the jobs
and can never slow the run down; the run's id is the first event the child
prints. Quitting the TUI leaves the run going: the command then waits for
it, Ctrl-C cancelling it as in ``stockade run``, and exits with its status.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from typing import IO, Any

import click

from stockade.printable import printable

__all__ = ["run_command_in_tui", "run_in_tui"]


def _run_id(out: IO[bytes]) -> str | None:
    """The run id of the child's first event (``None``: it ended first)."""
    for line in out:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        run_id = event.get("run_id") if isinstance(event, dict) else None
        if isinstance(run_id, str):
            return run_id
    return None


def _drain(out: IO[bytes]) -> None:
    """Read the child's events to their end, so it never blocks on its stdout."""
    for _ in out:
        pass


def _wait(proc: subprocess.Popen[bytes], run_id: str) -> int:
    if proc.poll() is None:
        click.echo(
            f"stockade: run {run_id} goes on (`stockade tui {run_id}` watches it); "
            "waiting for it, Ctrl-C cancels it",
            err=True,
        )
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)  # the child cancels; a second one forces


def run_in_tui(
    args: list[str], *, config: str | None, data_dir: str | None, database_url: str | None
) -> int:
    """Run ``stockade run ARGS`` and watch it; the run's exit status."""
    from stockade.store import open_store
    from stockade.tui.actions import Rerun
    from stockade.tui.app import RunApp

    env = dict(os.environ)
    if database_url:
        env["STOCKADE_DATABASE_URL"] = database_url  # not on the process list
    argv = [sys.executable, "-m", "stockade.cli.main", "run", "--json", *args]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, env=env,
            start_new_session=True,
        )  # fmt: skip
        assert proc.stdout is not None
        run_id = _run_id(proc.stdout)
        if run_id is not None:
            threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
            store = open_store(database_url, data_dir)
            try:
                RunApp(store, run_id, Rerun(store, config, data_dir, database_url)).run()
            finally:
                store.close()
            status = _wait(proc, run_id)
        else:
            status = proc.wait()
        errors.seek(0)
        for line in errors.read().decode(errors="replace").splitlines():
            click.echo(printable(line), err=True)
    return status


def run_command_in_tui(params: dict[str, Any]) -> int:
    """``stockade run --tui`` with ``run_command``'s parameters."""
    clash = [f"--{name}" for name in ("json", "plain", "quiet") if params[_FLAG.get(name, name)]]
    if clash:
        click.echo(f"stockade: error: --tui shows the run itself: drop {clash[0]}", err=True)
        return 2
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(
            "stockade: error: --tui needs a terminal: drop it (the plain view is used)", err=True
        )
        return 2
    args = [] if params["pipeline"] is None else ["--", params["pipeline"]]
    options: list[str] = []
    for name, flag in (("config_file", "--config"), ("jobs", "-j"), ("junit", "--junit"),
                       ("data_dir", "--data-dir")):  # fmt: skip
        if params[name] is not None:
            options += [flag, str(params[name])]
    options += [flag for name, flag in (("keep_going", "--keep-going"), ("fleet", "--fleet"))
                if params[name]]  # fmt: skip
    for step in params["only"]:
        options += ["--only", step]
    for entry in params["sets"]:
        options += ["--set", entry]
    return run_in_tui(
        [*options, *args], config=params["config_file"], data_dir=params["data_dir"],
        database_url=params["database_url"],
    )  # fmt: skip


_FLAG = {"json": "as_json"}
