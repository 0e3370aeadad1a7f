"""The faces of ``stockade run``: live view, plain log, JSON event stream.

Each is an :class:`~stockade.pipeline.model.Observer`. The live view
redraws with rich's ``Live`` (cursor control, so only on a terminal); the
plain log writes one line per job start and end, never moves the cursor,
and suits CI logs; the JSON stream writes one object per event per line.
Only the live view imports rich: the plain log writes through a
:class:`~stockade.ui.plaintext.PlainConsole`, which hands rich only what
it cannot write exactly as rich would.
"""

from __future__ import annotations

import json
import time
from typing import IO, TYPE_CHECKING, Any

from stockade.pipeline.joberrors import job_errors
from stockade.pipeline.model import Job, RunState, Status
from stockade.printable import printable
from stockade.ui.plaintext import PlainConsole, finish_lines, seconds

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.live import Live

__all__ = ["JsonObserver", "LiveObserver", "PlainObserver"]


class JsonObserver:
    """One JSON object per line per event (``--json``)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def event(self, kind: str, run: RunState, job: Job | None, data: dict[str, Any]) -> None:
        record: dict[str, Any] = {"event": kind, "run_id": run.run_id, "time": time.time()}
        if job is not None:
            record |= {"job": job.name, "step": job.step, "item": job.key}
        if kind == "job_finish" and job is not None:
            record |= job.to_dict()
        record |= data
        if kind == "run_finish":
            errors = [case.to_dict() for case in job_errors(run)]
            record |= {"status": run.status.value, "summary": run.to_dict(), "errors": errors}
        self.out.write(json.dumps(record, default=str) + "\n")
        self.out.flush()


class PlainObserver:
    """Line by line, no cursor control: for logs and non-terminals."""

    def __init__(self, console: Console | PlainConsole, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet

    def event(self, kind: str, run: RunState, job: Job | None, data: dict[str, Any]) -> None:
        if kind == "job_start" and job is not None and not self.quiet:
            self._line(run, f"start  {job.name}")
        elif kind == "job_finish" and job is not None:
            if self.quiet and job.status is not Status.FAILED:
                return
            reason = f" ({job.reason})" if job.reason else ""
            took = "" if job.duration is None else f" {seconds(job.duration)}"
            status = job.reuse_label if job.cached else job.status.value
            tries = f" after {job.attempts} attempts" if job.attempts > 1 else ""
            self._line(run, f"{status:<9} {job.name}{took}{tries}{reason}")
        elif kind == "job_retry" and job is not None and not self.quiet:
            attempt, outcome = data.get("attempt"), data.get("outcome")
            self._line(run, f"retry     {job.name} (attempt {attempt} {outcome}; trying again)")
        elif kind == "step_finish" and data.get("status") == "skipped" and not self.quiet:
            self._line(run, f"skipped   step {data.get('step')} ({data.get('reason')})")
        elif kind == "run_finish":
            finish(self.console, run)

    def _line(self, run: RunState, text: str) -> None:
        jobs = run.jobs()
        done = sum(1 for job in jobs if job.status.done)
        stamp = seconds(run.elapsed)
        self.console.print(f"[{done:>3}/{len(jobs):<3} {stamp:>6}] {printable(text)}", markup=False)


class LiveObserver:
    """The live view: header, a bar per step, active jobs, failures."""

    def __init__(self, console: Console, refresh: float = 8.0) -> None:
        self.console = console
        self.live: Live | None = None
        self.refresh = refresh

    def event(self, kind: str, run: RunState, job: Job | None, data: dict[str, Any]) -> None:
        if kind == "run_start":
            from rich.live import Live

            self.live = Live(
                _Screen(run),
                console=self.console,
                refresh_per_second=self.refresh,
                transient=True,
            )
            self.live.start()
        elif kind == "run_finish":
            if self.live is not None:
                self.live.stop()
                self.live = None
            finish(self.console, run)


class _Screen:
    """Renders the run's current state each time rich refreshes."""

    def __init__(self, run: RunState) -> None:
        self.run = run

    def __rich__(self) -> Group:
        from stockade.ui import render

        return render.live(self.run)


def finish(console: Console | PlainConsole, run: RunState) -> None:
    """The end of a run: failures with their log tails, then the summary."""
    if isinstance(console, PlainConsole):
        lines = finish_lines(run, console.width)
        if lines is not None:
            console.write_lines(lines)
            return
        console = console.rich()
    from stockade.ui import render

    for part in render.failures(run):
        console.print(part)
    line = render.tests_line(run.jobs(), job_errors(run))
    if line:
        console.print(line)
    for warning in run.warnings:
        console.print(f"warning: {printable(warning)}", style="yellow", markup=False)
    console.print(render.summary(run))
