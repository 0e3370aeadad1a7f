"""A JUnit XML report a step's job wrote, read into :class:`TestCase` objects.

A step with ``events: {format: junit, path: FILE}`` names the report its
job writes; after the job ends :func:`read_report` turns every
``testcase`` into the same per-test results ``go test -json`` gives, so
counts, failed tests' output and ``--junit`` include them.

The file is written by the job, so it is untrusted input. It is parsed with
``defusedxml`` with ``forbid_dtd=True``: a JUnit report never needs a DTD,
and refusing one outright closes entity expansion ("billion laughs"),
external entities and DTD retrieval in one place, on every Python and expat
version, rather than relying on the stdlib parser's defaults. The file is
opened and read as :mod:`stockade.runner.jobfile` reads every file a job
controls: beneath the workspace, a regular file, its size capped before
reading.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from stockade.errors import JobFileError, StockadeError
from stockade.pipeline.clip import clipped
from stockade.pipeline.test2json import TestCase
from stockade.runner import jobfile

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

__all__ = ["MAX_REPORT_BYTES", "JobReport", "ReportError", "parse_report", "read_report"]

MAX_REPORT_BYTES = 64 * 1024 * 1024
"""Largest report read; a bigger one is refused rather than parsed."""
_HINT = "a report this large is not read; report fewer or shorter test cases"


class ReportError(StockadeError):
    """The step's JUnit report cannot be read."""


class JobReport:
    """The report a step's job is to write at ``relative`` in ``workspace``.

    Made before the job starts, it notes the file already there (a report of
    an earlier run), so :meth:`read` can refuse a file the job did not write
    rather than pass the old results off as this job's.
    """

    def __init__(self, workspace: str, relative: str) -> None:
        self.workspace = workspace
        self.relative = relative
        self.before = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(os.path.join(self.workspace, self.relative))
        except OSError:
            return None
        return _identity(info)

    def read(self) -> list[TestCase]:
        """The job's test cases; :class:`ReportError` when there is no usable report
        (missing, left from before, escaping the workspace, not a regular
        file, too big, malformed). Blocking: run it in a thread from a loop."""
        shown = f"JUnit report {self.relative!r}"
        try:
            fd, info = jobfile.open_regular(self.workspace, self.relative, shown=shown)
            try:
                if self.before is not None and _identity(info) == self.before:
                    raise ReportError(
                        f"{shown} was not written by the job (the file there is left from before)"
                    )
                data = jobfile.read_open(fd, info, limit=MAX_REPORT_BYTES, shown=shown, hint=_HINT)
            finally:
                os.close(fd)
        except JobFileError as exc:
            raise ReportError(exc.message) from exc
        return parse_report(data, self.relative)


def read_report(path: str, shown: str) -> list[TestCase]:
    """The test cases of the JUnit XML file at ``path`` (``shown`` names it in errors),
    read as :mod:`~stockade.runner.jobfile` reads a file beneath its directory."""
    folder, name = os.path.split(path)
    try:
        data = jobfile.read(
            folder or ".", name, limit=MAX_REPORT_BYTES, shown=f"JUnit report {shown!r}",
            hint=_HINT, where="directory",
        )  # fmt: skip
    except JobFileError as exc:
        raise ReportError(exc.message) from exc
    return parse_report(data, shown)


def parse_report(data: bytes | bytearray, shown: str) -> list[TestCase]:
    """The test cases of a JUnit XML document (``shown`` names it in errors)."""
    # The parser only when there is a report: a run's start-up does without it.
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ReportError(f"JUnit report {shown!r} is refused: {exc}") from exc
    except ParseError as exc:
        raise ReportError(f"JUnit report {shown!r} is not well-formed XML: {exc}") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(
            f"JUnit report {shown!r} has root <{root.tag}>: expected <testsuites> or <testsuite>"
        )
    suite = (root.get("name") or "") if root.tag == "testsuite" else ""
    return [_case(case, name) for name, case in _cases(root, suite)]


def _identity(info: os.stat_result) -> tuple[int, int, int]:
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _cases(element: Element, suite: str) -> list[tuple[str, Element]]:
    """Every ``testcase`` below ``element`` with the name of its nearest suite."""
    out: list[tuple[str, Element]] = []
    for child in element:
        if child.tag == "testsuite":
            out += _cases(child, child.get("name") or suite)
        elif child.tag == "testcase":
            out.append((suite, child))
    return out


def _case(element: Element, suite: str) -> TestCase:
    package = element.get("classname") or suite
    case = TestCase(package, element.get("name") or "(unnamed)", status="passed")
    case.elapsed = _seconds(element.get("time"))
    failed = [c for c in element if c.tag in ("failure", "error")]
    if failed:
        case.status = "failed"
        for child in failed:
            message = child.get("message")
            if message:
                case.output.append(f"{child.tag}: {message}\n")
            case.output += _lines(child.text)
        for child in element:
            if child.tag in ("system-out", "system-err"):
                case.output += _lines(child.text)
        case.output = clipped(case.output)
    elif any(c.tag == "skipped" for c in element):
        case.status = "skipped"
    return case


def _lines(text: str | None) -> list[str]:
    return [line + "\n" for line in (text or "").strip("\n").splitlines()]


def _seconds(value: str | None) -> float:
    """A ``time`` attribute; writers disagree (``1,234.5``, empty), so 0 when unclear."""
    try:
        seconds = float((value or "0").replace(",", ""))
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else 0.0
