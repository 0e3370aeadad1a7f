"""The plain log of ``stockade run`` written without rich, when it can be.

Off a terminal the run's view is one line per event and a summary table.
Importing rich costs a run's start-up more than writing those lines, so
:class:`PlainConsole` writes the lines itself while they are exactly what
rich would write: a line of plain characters (ASCII and the few marks the
view uses) that fits the width, with nothing rich would rewrite (markup,
``:emoji:`` codes). Anything else (a long or wide line, a table wider than
the console) goes to a rich console on the same output, as before, so the
output never changes; a test compares both over many runs.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from stockade.pipeline.joberrors import job_errors
from stockade.pipeline.model import RunState, Status, StepState
from stockade.printable import printable

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "PlainConsole", "console_width", "finish_lines", "seconds", "status_pieces",
    "stdout_is_terminal", "summary_lines", "summary_rows", "summary_title",
]  # fmt: skip

#: Characters beyond printable ASCII whose cell width is one, as rich counts it.
_NARROW = frozenset("✗│…")
#: What rich replaces in a printed string: ``:name:`` emoji codes.
_EMOJI = re.compile(r":\S*?:")
_HEAD = ("step", "status", "jobs", "ok", "failed", "skipped", "time")
_RIGHT = frozenset({"jobs", "ok", "failed", "skipped", "time"})


def seconds(value: float | None) -> str:
    """``1.2s``, ``2m03s``; ``-`` when unknown."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes}m{rest:02d}s"


def console_width(environ: Mapping[str, str] | None = None) -> int:
    """The width rich gives a console that is not a terminal: ``$COLUMNS``,
    else the size of the first of stdin, stdout and stderr that is a
    terminal, else 80."""
    env = os.environ if environ is None else environ
    columns = env.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns)
    width = 0
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    return width or 80


def stdout_is_terminal(environ: Mapping[str, str] | None = None) -> bool:
    """Whether rich takes stdout for a terminal: ``$TTY_COMPATIBLE`` (``1``
    or ``0``), else ``$FORCE_COLOR`` (set and not empty), else ``isatty``."""
    env = os.environ if environ is None else environ
    compatible = env.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = env.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _plain(text: str, width: int, emoji: bool = True) -> bool:
    """Whether rich prints ``text`` as it is at ``width``."""
    if len(text) > width or text != text.rstrip():
        return False
    if any(not (" " <= ch <= "~") and ch not in _NARROW for ch in text):
        return False
    return not (emoji and _EMOJI.search(text))


def _markup_free(text: str) -> bool:
    """Whether rich's markup would leave ``text`` alone."""
    return "[" not in text and "]" not in text and "\\" not in text


class PlainConsole:
    """Writes the plain log's lines to ``file`` (stdout when ``None``)."""

    def __init__(self, file: IO[str] | None = None, width: int | None = None) -> None:
        self._file = file
        self.width = console_width() if width is None else width
        self._rich: Console | None = None

    @property
    def file(self) -> IO[str]:
        return self._file if self._file is not None else sys.stdout

    def write_lines(self, lines: list[str]) -> None:
        """Write ``lines`` (each fit to print as it is) and flush, as rich does."""
        self.file.write("".join(f"{line}\n" for line in lines))
        self.file.flush()

    def print(self, text: str, *, markup: bool = False, **style: Any) -> None:
        """Print ``text`` as ``Console.print(text, markup=markup, ...)`` would."""
        if _plain(text, self.width) and (not markup or _markup_free(text)):
            self.write_lines([text])
        else:
            self.rich().print(text, markup=markup, **style)

    def rich(self) -> Console:
        """The rich console for what this one does not write itself."""
        if self._rich is None:
            from stockade.ui.pipeconsole import PipeConsole

            self._rich = PipeConsole(
                file=self._file, highlight=False, force_terminal=False, width=self.width
            )
        return self._rich


def _step_time(step: StepState) -> float | None:
    starts = [j.started for j in step.jobs if j.started is not None]
    ends = [j.finished for j in step.jobs if j.finished is not None]
    return max(ends) - min(starts) if starts and ends else None


def status_pieces(step: StepState) -> list[tuple[str, str]]:
    """A step's summary status after its own (styled by its status): the
    reason it was skipped, and how many jobs were cached or reused (``dim``)."""
    pieces = []
    if step.reason and step.status is Status.SKIPPED:
        pieces.append((printable(f": {step.reason}"), ""))
    for label in ("cached", "reused"):
        count = sum(job.cached and job.reuse_label == label for job in step.jobs)
        if count:
            pieces.append((f" ({count} {label})", "dim"))
    return pieces


def summary_rows(run: RunState) -> list[tuple[str, ...]]:
    """The summary table's rows: each step with its jobs per status and time."""
    rows: list[tuple[str, ...]] = []
    for step in run.steps.values():
        counts = step.counts()
        rows.append((
            printable(step.name),
            step.status.value + "".join(text for text, _ in status_pieces(step)),
            str(len(step.jobs)),
            str(counts.get("succeeded", 0)), str(counts.get("failed", 0)),
            str(counts.get("skipped", 0)), seconds(_step_time(step)),
        ))  # fmt: skip
    return rows


def summary_title(run: RunState) -> str:
    """The summary table's title."""
    return f"{run.pipeline}: {run.status.value} in {seconds(run.elapsed)}"


def summary_lines(run: RunState, width: int) -> list[str] | None:
    """The summary table as rich draws it at ``width`` (heavy head, a column
    per field); ``None`` when rich would draw it otherwise (too wide)."""
    rows = summary_rows(run)
    title = summary_title(run)
    widths = [max(len(c) for c in column) for column in zip(_HEAD, *rows, strict=True)]
    total = sum(widths) + 3 * len(widths) + 1
    if total > width or len(title) > total:
        return None
    cells = [*_HEAD, *(cell for row in rows for cell in row)]
    if not all(_plain(cell, width) and _markup_free(cell) for cell in (*cells, title)):
        return None
    excess = total - len(title)
    out = [" " * (excess // 2) + title + " " * (excess - excess // 2)]

    def line(left: str, fill: str, join: str, right: str) -> str:
        return left + join.join(fill * (w + 2) for w in widths) + right

    def row(edge: str, values: tuple[str, ...]) -> str:
        parts = [
            f" {value:>{w}} " if name in _RIGHT else f" {value:<{w}} "
            for name, value, w in zip(_HEAD, values, widths, strict=True)
        ]
        return edge + edge.join(parts) + edge

    out.append(line("┏", "━", "┳", "┓"))
    out.append(row("┃", _HEAD))
    out.append(line("┡", "━", "╇", "┩"))
    out += [row("│", values) for values in rows]
    out.append(line("└", "─", "┴", "┘"))
    return out


def finish_lines(run: RunState, width: int) -> list[str] | None:
    """What the plain log prints when the run ends (failures, tests line,
    warnings, summary) as rich prints it; ``None`` when only rich can."""
    from stockade.ui.failures import failure_lines, tests_line

    lines = failure_lines(run)
    if not all(_plain(line, width, emoji=False) for line in lines):
        return None
    tests = tests_line(run.jobs(), job_errors(run))
    if tests:
        if not (_plain(tests, width) and _markup_free(tests)):
            return None
        lines.append(tests)
    for warning in run.warnings:
        text = f"warning: {printable(warning)}"
        if not _plain(text, width):
            return None
        lines.append(text)
    table = summary_lines(run, width)
    return None if table is None else lines + table
