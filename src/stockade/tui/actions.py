"""Reruns from the TUI, through ``stockade rerun`` in a process of its own.

The rerun is an ordinary ``stockade rerun`` (same config, same store), so
it behaves exactly as on the command line and outlives the TUI. Its id is
learnt from the store: the newest run whose source is the run rerun.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from stockade.printable import printable
from stockade.store import Store

__all__ = ["Rerun"]

#: Seconds to wait for a rerun to appear in the store.
APPEAR_WITHIN = 60.0


@dataclass(frozen=True)
class Rerun:
    """How to start ``stockade rerun``: the store to watch, and the options
    the TUI was given (``database_url`` goes by environment, not argv, so a
    password in it is not on the process list)."""

    store: Store
    config: str | None = None
    data_dir: str | None = None
    database_url: str | None = None

    def command(self, ref: str, args: list[str]) -> list[str]:
        """The rerun's argv: ``args`` are ``--failed`` or one ``STEP[/ITEM]``;
        positionals come after ``--`` so a name starting with ``-`` stays a name."""
        flags = [a for a in args if a == "--failed"]
        names = [a for a in args if a != "--failed"]
        options = ["--quiet", *flags]
        if self.config:
            options += ["--config", self.config]
        if self.data_dir:
            options += ["--data-dir", self.data_dir]
        return [sys.executable, "-m", "stockade.cli.main", "rerun", *options, "--", ref, *names]

    def start(self, ref: str, args: list[str]) -> tuple[str | None, str]:
        """Start the rerun; ``(its run id, "")`` once it is in the store, or
        ``(None, why)`` when it ended without one (its last error line)."""
        before = {r.id for r in self.store.runs.runs(limit=200) if r.source_run == ref}
        env = dict(os.environ)
        if self.database_url:
            env["STOCKADE_DATABASE_URL"] = self.database_url
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(
                self.command(ref, args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=errors, env=env, start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + APPEAR_WITHIN
            while time.monotonic() < deadline:
                new = [
                    r.id for r in self.store.runs.runs(limit=20)
                    if r.source_run == ref and r.id not in before
                ]  # fmt: skip
                if new:
                    _reap_later(proc)
                    return new[0], ""
                if proc.poll() is not None:
                    errors.seek(0)
                    lines = errors.read().decode(errors="replace").strip().splitlines()
                    return None, printable(
                        lines[-1] if lines else f"rerun exited {proc.returncode}"
                    )
                time.sleep(0.2)
        _reap_later(proc)
        return None, "the rerun did not show up in the store within a minute"


def _reap_later(proc: subprocess.Popen[bytes]) -> None:
    """Wait for the rerun in a thread of its own: it may outlive the TUI."""
    threading.Thread(target=proc.wait, daemon=True).start()
