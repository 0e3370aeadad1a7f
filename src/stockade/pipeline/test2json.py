"""Go's ``go test -json`` / ``go tool test2json`` events, folded into tests.

Each line of a step's stdout that is a JSON object with an ``Action`` is
one event. :class:`Test2Json` folds them into one :class:`TestCase` per
test (and per package, for package-level failures such as a build error);
:func:`junit_xml` writes the cases in the JUnit XML format CI systems read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stockade.pipeline.clip import Clip

__all__ = ["Test2Json", "TestCase", "failure_message", "junit_xml"]

_FINAL = {"pass": "passed", "fail": "failed", "skip": "skipped"}
_NOT_BUILT = re.compile(r"\[(build|setup) failed\]$", re.MULTILINE)
"""How ``go test`` ends a package it could not build (Go 1.24 and later
also set ``FailedBuild`` on the package's fail event)."""
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters XML 1.0 cannot hold, even escaped (ANSI colour's ESC among them):
those its ``Char`` leaves out, listed, not as the complement of those it
allows, which took 10 ms to compile at every ``stockade run``'s start."""


@dataclass
class TestCase:
    """One test's result (``name`` empty for the package itself); ``status``
    is passed, failed, skipped, or error for a package that did not build or
    a job that failed without a test result (:mod:`stockade.pipeline.joberrors`)."""

    __test__ = False  # not a pytest class

    package: str
    name: str
    status: str = "running"
    elapsed: float = 0.0
    output: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON and the run record."""
        return {
            "package": self.package,
            "test": self.name,
            "status": self.status,
            "elapsed": self.elapsed,
            "output": "".join(self.output) if self.status in ("failed", "error") else "",
        }


class Test2Json:
    """Folds ``go test -json`` lines into :class:`TestCase` objects."""

    __test__ = False  # not a pytest class

    def __init__(self, package: str = "") -> None:
        self.default_package = package
        self.cases: dict[tuple[str, str], TestCase] = {}
        self.clips: dict[tuple[str, str], Clip] = {}

    def feed(self, line: str) -> TestCase | None:
        """Take one line; return the case it finished, if any. Lines that
        are not test2json events are ignored."""
        text = line.strip()
        if not text.startswith("{"):
            return None
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            return None
        if not isinstance(event, dict) or not isinstance(event.get("Action"), str):
            return None
        package = str(event.get("Package") or self.default_package)
        key = (package, str(event.get("Test") or ""))
        case = self.cases.get(key)
        if case is None:
            case = self.cases[key] = TestCase(package, key[1])
            self.clips[key] = Clip()
        action = event["Action"]
        output = event.get("Output")
        if isinstance(output, str):
            self.clips[key].add(output)
        if action in _FINAL:
            case.output = self.clips[key].lines()
            case.status = _FINAL[action]
            if action == "fail" and not key[1] and _not_built(event, case.output):
                case.status = "error"  # as gotestsum counts it: no test ran
            elapsed = event.get("Elapsed")
            case.elapsed = float(elapsed) if isinstance(elapsed, int | float) else 0.0
            return case
        return None

    def results(self) -> list[TestCase]:
        """Finished tests, then a package case only where it failed without
        any failed test (a build or set-up failure)."""
        for key, case in self.cases.items():  # with output that came after its end
            case.output = self.clips[key].lines()
        tests = [c for c in self.cases.values() if c.name and c.status != "running"]
        failed_packages = {c.package for c in tests if c.status == "failed"}
        packages = [
            c
            for c in self.cases.values()
            if not c.name and c.status in ("failed", "error") and c.package not in failed_packages
        ]
        return [*tests, *packages]


def _not_built(event: dict[str, Any], output: list[str]) -> bool:
    """Whether a package's fail event says it was not built (a build error)."""
    return bool(event.get("FailedBuild")) or any(_NOT_BUILT.search(line) for line in output)


def _xml_text(text: str) -> str:
    """``text`` with what XML 1.0 cannot hold shown as ``\\xNN``: a test's
    output may carry colour codes or NULs, and one such character would make
    the whole file unreadable to a CI system."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


#: Lines of ``go test`` output that frame a failure rather than say what failed.
_FRAMING = re.compile(r"^(=== (RUN|PAUSE|CONT|NAME)|--- (FAIL|PASS|SKIP)|FAIL|PASS|ok )\b|^#\s")
_MESSAGE_MAX = 200
_COLOUR = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failure_message(output: Iterable[str]) -> str:
    """The first line of a failed test's output that says what failed (as
    ``main_test.go:12: got 3, want 2``), for JUnit's one-line ``message``;
    ``failed`` when no line does."""
    for chunk in output:
        for line in chunk.splitlines():
            text = _COLOUR.sub("", line).strip()
            if text and not _FRAMING.match(text):
                return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 3] + "..."
    return "failed"


def junit_xml(cases: Iterable[TestCase], name: str = "stockade") -> bytes:
    """JUnit XML (``testsuites`` > ``testsuite`` per package > ``testcase``),
    valid under the schema CI systems check reports against (the Jenkins
    xunit plugin's ``junit-10.xsd``): ``testsuites`` carries the totals it
    allows (tests, failures, errors, time; skipped only on each suite)."""
    import xml.etree.ElementTree as ET  # only for a report: a run's start-up does without

    by_package: dict[str, list[TestCase]] = {}
    for case in cases:
        by_package.setdefault(case.package, []).append(case)
    root = ET.Element("testsuites", name=_xml_text(name))
    totals = {"tests": 0, "failures": 0, "errors": 0}
    elapsed = 0.0
    for package, members in sorted(by_package.items()):
        failures = sum(c.status == "failed" for c in members)
        errors = sum(c.status == "error" for c in members)
        skipped = sum(c.status == "skipped" for c in members)
        took = sum(c.elapsed for c in members)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_xml_text(package),
            tests=str(len(members)),
            failures=str(failures),
            errors=str(errors),
            skipped=str(skipped),
            time=f"{took:.3f}",
        )
        for case in members:
            element = ET.SubElement(
                suite,
                "testcase",
                classname=_xml_text(package),
                name=_xml_text(case.name or "(package)"),
                time=f"{case.elapsed:.3f}",
            )
            if case.status == "failed":
                message = _xml_text(failure_message(case.output))
                failure = ET.SubElement(element, "failure", message=message, type="failure")
                failure.text = _xml_text("".join(case.output))
            elif case.status == "error":
                message = _xml_text(case.output[0].strip() if case.output else "error")
                error = ET.SubElement(
                    element, "error", message=message[:_MESSAGE_MAX], type="error"
                )
                error.text = _xml_text("".join(case.output))
            elif case.status == "skipped":
                ET.SubElement(element, "skipped")
        totals["tests"] += len(members)
        totals["failures"] += failures
        totals["errors"] += errors
        elapsed += took
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{elapsed:.3f}")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
