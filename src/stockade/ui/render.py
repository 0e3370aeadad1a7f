"""What the terminal shows of a pipeline run, as rich renderables.

Pure functions of a :class:`~stockade.pipeline.model.RunState`: the live
view redraws them a few times a second, the plain log prints the final
ones once. Tests render them into a fixed-width console. Names, reasons,
log tails and test output come from jobs: each goes through
:func:`~stockade.printable.printable` (rich passes ESC through).
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from stockade.pipeline.model import Job, RunState, Status
from stockade.printable import printable
from stockade.ui.failures import TAIL_SHOWN, failure_parts, tests_line
from stockade.ui.plaintext import seconds, status_pieces, summary_rows, summary_title

__all__ = ["failures", "header", "live", "step_rows", "summary", "tests_line"]

_STYLE = {
    Status.SUCCEEDED: "green",
    Status.FAILED: "bold red",
    Status.SKIPPED: "yellow",
    Status.CANCELLED: "magenta",
    Status.RUNNING: "cyan",
    Status.PENDING: "dim",
}
_MARK = {
    Status.SUCCEEDED: "ok",
    Status.FAILED: "FAIL",
    Status.SKIPPED: "skip",
    Status.CANCELLED: "cancel",
    Status.RUNNING: "run",
    Status.PENDING: "wait",
}


def header(run: RunState) -> Text:
    """``pipeline ci  5/8 jobs  1 failed  3.2s``."""
    jobs = run.jobs()
    done = sum(1 for job in jobs if job.status.done)
    failed = sum(1 for job in jobs if job.status is Status.FAILED)
    text = Text()
    text.append(f"pipeline {run.pipeline}", style="bold")
    text.append(f"  {done}/{len(jobs)} jobs")
    if failed:
        text.append(f"  {failed} failed", style="bold red")
    text.append(f"  {seconds(run.elapsed)}")
    if run.status is not Status.RUNNING:
        text.append(f"  {run.status.value}", style=_STYLE[run.status])
    return text


def step_rows(run: RunState, width: int = 30) -> Table:
    """One row per step: name, bar (done/total), counts, state."""
    table = Table.grid(padding=(0, 1))
    for step in run.steps.values():
        total = len(step.jobs)
        done = sum(1 for job in step.jobs if job.status.done)
        failed = sum(1 for job in step.jobs if job.status is Status.FAILED)
        bar = ProgressBar(total=max(total, 1), completed=done if total else 0, width=width)
        note = Text(f"{done}/{total}" if step.expanded else "waiting")
        if failed:
            note.append(f" {failed} failed", style="bold red")
        state = Text(_MARK[step.status], style=_STYLE[step.status])
        if step.status is Status.SKIPPED and step.reason:
            state.append(f" ({printable(step.reason)})", style="yellow")
        table.add_row(Text(printable(step.name), style="bold"), bar, note, state)
    return table


def _active(run: RunState, limit: int = 8) -> Table:
    table = Table.grid(padding=(0, 1))
    running = [job for job in run.jobs() if job.status is Status.RUNNING]
    for job in running[:limit]:
        table.add_row(
            Text(printable(job.name), style="cyan"),
            Text(seconds(job.duration), style="dim"),
            _progress(job),
            Text(printable(job.last_line.rstrip()), overflow="ellipsis", no_wrap=True),
        )
    if len(running) > limit:
        table.add_row(Text(f"… {len(running) - limit} more", style="dim"), "", "", "")
    return table


def _progress(job: Job) -> Text:
    """``[ 40%] uploading part 2`` from the job's latest ``::progress``, or nothing."""
    if job.progress is None:
        return Text("")
    value, message = job.progress
    text = Text(f"[{value:3.0f}%]", style="magenta")
    if message:
        text.append(f" {' '.join(message.split())[:40]}")
    return text


def failures(run: RunState, tail: int = TAIL_SHOWN) -> list[RenderableType]:
    """:func:`~stockade.ui.failures.failure_parts` as styled lines."""
    out: list[RenderableType] = []
    for pieces, overflow in failure_parts(run, tail):
        (first, style), *rest = pieces
        text = Text(
            first, style=style, overflow=None if overflow == "wrap" else overflow,
            no_wrap=True if overflow == "ellipsis" else None,
        )  # fmt: skip
        for piece, piece_style in rest:
            text.append(piece, style=piece_style or None)
        out.append(text)
    return out


def live(run: RunState) -> Group:
    """The whole live screen: header, steps, active jobs, failures so far."""
    parts: list[RenderableType] = [header(run), step_rows(run), _active(run)]
    line = tests_line(run.jobs())
    if line:
        parts.append(Text(line))
    parts += failures(run, tail=3)
    return Group(*parts)


def summary(run: RunState) -> Table:
    """The final table: each step with its jobs per status and its duration."""
    table = Table(title=summary_title(run))
    for column in ("step", "status", "jobs", "ok", "failed", "skipped", "time"):
        table.add_column(column, justify="right" if column not in ("step", "status") else "left")
    for step, row in zip(run.steps.values(), summary_rows(run), strict=True):
        status = Text(step.status.value, style=_STYLE[step.status])
        for text, style in status_pieces(step):
            status.append(text, style=style or None)
        table.add_row(row[0], status, *row[2:])
    return table
