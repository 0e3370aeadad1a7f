"""What the terminal shows of a pipeline run, as rich renderables.

Pure functions of a :class:`~stockade.pipeline.model.RunState`: the live
view redraws them a few times a second, the plain log prints the final
ones once. Tests render them into a fixed-width console. Names, reasons,
log tails and test output come from jobs: each goes through
:func:`~stockade.printable.printable` (rich passes ESC through).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from stockade.pipeline.model import Job, RunState, Status, StepState
from stockade.pipeline.test2json import TestCase
from stockade.printable import printable

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
TAIL_SHOWN = 10


def seconds(value: float | None) -> str:
    """``1.2s``, ``2m03s``; ``-`` when unknown."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes}m{rest:02d}s"


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


def tests_line(jobs: list[Job], errors: Sequence[TestCase] = ()) -> str:
    """``tests: 12 passed, 1 failed, 2 skipped`` or ``""`` without tests;
    ``errors`` (failed jobs no test accounts for) count as ``error``."""
    cases = [case for job in jobs for case in job.tests] + list(errors)
    if not cases:
        return ""
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.status] = counts.get(case.status, 0) + 1
    return "tests: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


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
    """Each failed job with its reason, the tail of its log and its failed tests
    (a package's own failure among them); a job that succeeded although its
    test events report failed tests is listed too, with those tests."""
    out: list[RenderableType] = []
    for job in run.jobs():
        failed = [case for case in job.tests if case.status == "failed"]
        if job.status is Status.FAILED:
            title = Text(printable(f"✗ {job.name}"), style="bold red")
            title.append(printable(f": {job.reason}") if job.reason else "")
        elif failed:  # its exit said success, its test events did not (go's own count)
            title = Text(printable(f"! {job.name}: {job.status.value}"), style="yellow")
            title.append(f", but its test events report {len(failed)} failed")
        else:
            continue
        out.append(title)
        if job.log_path:
            out.append(Text(printable(f"  log: {job.log_path}"), style="dim", overflow="fold"))
        for line in list(job.tail)[-tail:]:
            out.append(Text(printable(f"  │ {line.rstrip()}"), no_wrap=True, overflow="ellipsis"))
        for case in failed:  # a package's own failure (a panic in init, TestMain) has no name
            label = f"{case.package} {case.name or '(package)'}"
            out.append(Text(printable(f"  ✗ {label}"), style="red"))
            for text in _test_output(case.output)[-tail:]:
                out.append(Text(printable(f"    │ {text}"), no_wrap=True, overflow="ellipsis"))
    return out


def _test_output(output: list[str]) -> list[str]:
    """A failed test's own lines, without go test's ``=== RUN`` framing."""
    lines = [line.rstrip() for chunk in output for line in chunk.splitlines()]
    return [line for line in lines if line.strip() and not line.startswith("=== ")]


def live(run: RunState) -> Group:
    """The whole live screen: header, steps, active jobs, failures so far."""
    parts: list[RenderableType] = [header(run), step_rows(run), _active(run)]
    line = tests_line(run.jobs())
    if line:
        parts.append(Text(line))
    parts += failures(run, tail=3)
    return Group(*parts)


def _step_time(step: StepState) -> float | None:
    starts = [j.started for j in step.jobs if j.started is not None]
    ends = [j.finished for j in step.jobs if j.finished is not None]
    return max(ends) - min(starts) if starts and ends else None


def summary(run: RunState) -> Table:
    """The final table: each step with its jobs per status and its duration."""
    table = Table(title=f"{run.pipeline}: {run.status.value} in {seconds(run.elapsed)}")
    for column in ("step", "status", "jobs", "ok", "failed", "skipped", "time"):
        table.add_column(column, justify="right" if column not in ("step", "status") else "left")
    for step in run.steps.values():
        counts = step.counts()
        status = Text(step.status.value, style=_STYLE[step.status])
        if step.reason and step.status is Status.SKIPPED:
            status.append(printable(f": {step.reason}"))
        for label in ("cached", "reused"):
            count = sum(job.cached and job.reuse_label == label for job in step.jobs)
            if count:
                status.append(f" ({count} {label})", style="dim")
        table.add_row(
            printable(step.name),
            status,
            str(len(step.jobs)),
            str(counts.get("succeeded", 0)),
            str(counts.get("failed", 0)),
            str(counts.get("skipped", 0)),
            seconds(_step_time(step)),
        )
    return table
