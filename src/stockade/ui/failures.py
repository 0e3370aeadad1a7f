"""What the end of a run says about failures and tests, as plain parts.

:func:`failure_parts` is the one account of which jobs are shown as failed
and with which lines; :mod:`stockade.ui.render` styles the parts with rich
(the live view, a terminal), :mod:`stockade.ui.plaintext` writes their text
(the plain log). Names, reasons, log tails and test output come from jobs:
each goes through :func:`~stockade.printable.printable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from stockade.pipeline.model import Job, RunState, Status
from stockade.pipeline.test2json import TestCase
from stockade.printable import printable

__all__ = ["TAIL_SHOWN", "Part", "failure_lines", "failure_parts", "tests_line"]

TAIL_SHOWN = 10

#: How a line that does not fit is shown: wrapped, folded, or cut with ``…``.
Overflow = Literal["wrap", "fold", "ellipsis"]
#: One line: its pieces with their style names, and how it overflows.
Part = tuple[list[tuple[str, str]], Overflow]


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


def failure_parts(run: RunState, tail: int = TAIL_SHOWN) -> list[Part]:
    """Each failed job with its reason, the tail of its log and its failed tests
    (a package's own failure among them); a job that succeeded although its
    test events report failed tests is listed too, with those tests."""
    out: list[Part] = []
    for job in run.jobs():
        failed = [case for case in job.tests if case.status == "failed"]
        if job.status is Status.FAILED:
            title = [(printable(f"✗ {job.name}"), "bold red")]
            title.append((printable(f": {job.reason}") if job.reason else "", ""))
        elif failed:  # its exit said success, its test events did not (go's own count)
            title = [(printable(f"! {job.name}: {job.status.value}"), "yellow")]
            title.append((f", but its test events report {len(failed)} failed", ""))
        else:
            continue
        out.append((title, "wrap"))
        if job.log_path:
            out.append(([(printable(f"  log: {job.log_path}"), "dim")], "fold"))
        for line in list(job.tail)[-tail:]:
            out.append(([(printable(f"  │ {line.rstrip()}"), "")], "ellipsis"))
        for case in failed:  # a package's own failure (a panic in init, TestMain) has no name
            label = f"{case.package} {case.name or '(package)'}"
            out.append(([(printable(f"  ✗ {label}"), "red")], "wrap"))
            for text in _test_output(case.output)[-tail:]:
                out.append(([(printable(f"    │ {text}"), "")], "ellipsis"))
    return out


def failure_lines(run: RunState, tail: int = TAIL_SHOWN) -> list[str]:
    """The text of :func:`failure_parts`' lines."""
    return ["".join(text for text, _ in pieces) for pieces, _ in failure_parts(run, tail)]


def _test_output(output: list[str]) -> list[str]:
    """A failed test's own lines, without go test's ``=== RUN`` framing."""
    lines = [line.rstrip() for chunk in output for line in chunk.splitlines()]
    return [line for line in lines if line.strip() and not line.startswith("=== ")]
