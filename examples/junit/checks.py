"""A tiny test runner that writes its results as JUnit XML, like most do.

Runs the check_* functions below (one passes, one fails, one is skipped),
writes the report to the path given as the first argument and exits 1 when
a check failed: the report, not stdout, is how stockade learns the results
(``events: {format: junit, path: ...}`` in stockade.yaml).
"""

from __future__ import annotations

import sys
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path


class Skip(Exception):
    """Raised by a check that does not apply here."""


def check_sum_of_squares() -> None:
    assert sum(n * n for n in range(4)) == 14


def check_title_case() -> None:
    got = "stockade runs jobs".title()
    assert got == "Stockade runs jobs", f"title() gave {got!r}"


def check_needs_network() -> None:
    raise Skip("no network in this example")


def main(report: Path) -> int:
    suite = ET.Element("testsuite", name="examples.checks")
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for name, check in sorted(globals().items()):
        if not name.startswith("check_") or not callable(check):
            continue
        counts["tests"] += 1
        started = time.monotonic()
        case = ET.SubElement(suite, "testcase", classname="examples.checks", name=name)
        try:
            check()
            print(f"ok   {name}")
        except Skip as skip:
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=str(skip))
            print(f"skip {name}")
        except AssertionError as exc:
            counts["failures"] += 1
            failure = ET.SubElement(case, "failure", message=str(exc), type="AssertionError")
            failure.text = traceback.format_exc()
            print(f"FAIL {name}: {exc}")
        case.set("time", f"{time.monotonic() - started:.3f}")
    for key, value in counts.items():
        suite.set(key, str(value))
    report.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(report, encoding="utf-8", xml_declaration=True)
    return 1 if counts["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
