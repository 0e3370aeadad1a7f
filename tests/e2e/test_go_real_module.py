"""``examples/go-tests`` unchanged on real modules nobody here wrote.

go-cmp's and testify's sources (with its four dependencies) come from
Debian's packages (``make sysdeps``), set up as the ``gotests`` benchmark
does it (no module is downloaded). The shipped ``stockade.yaml`` and shell
scripts are copied next to them as they are, the pipeline runs once, and
its per-test results are compared with plain ``go test -json ./...`` on the
same tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from benchmarks.bench_gotests import MODULES

from tests.schemas import assert_valid_junit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "go-tests"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
#: testify names subtests after pointers and function addresses: not the same in two builds
_POINTER = re.compile(r"0x[0-9a-f]+")

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="needs Go (Debian: golang-go)")


def _results(lines: list[str]) -> dict[tuple[str, str], str]:
    """``(package, test) -> passed/failed/skipped`` from test events."""
    out: dict[tuple[str, str], str] = {}
    for line in lines:
        if line.strip():
            event = json.loads(line)
            if event.get("event") == "test":
                out[(event["package"], _POINTER.sub("0x", event["test"]))] = event["status"]
    return out


def _go_test_json(stdout: str) -> dict[tuple[str, str], str]:
    final = {"pass": "passed", "fail": "failed", "skip": "skipped"}
    out: dict[tuple[str, str], str] = {}
    for line in stdout.splitlines():
        event = json.loads(line)
        if event["Action"] in final and event.get("Test"):
            out[(event["Package"], _POINTER.sub("0x", event["Test"]))] = final[event["Action"]]
    return out


#: each module: a package with tests, one without (which gets no test job)
PACKAGES = {
    "go-cmp": ("github.com/google/go-cmp/cmp", "github.com/google/go-cmp/cmp/internal/flags"),
    "testify": ("github.com/stretchr/testify/assert", "github.com/stretchr/testify/http"),
}


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_shipped_pipeline_on_a_real_module_matches_go_test_json(name: str, tmp_path: Path) -> None:
    module = tmp_path / name
    missing = MODULES[name](module)
    if missing:
        pytest.skip(missing)
    for path in [EXAMPLE / "stockade.yaml", *EXAMPLE.glob("*.sh")]:
        shutil.copy(path, module / path.name)  # the mode too: go runs go-collect.sh
    env = {
        **os.environ,
        "GOCACHE": str(tmp_path / "gocache"),
        "GOPATH": str(tmp_path / "gopath"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "STOCKADE_DATA_DIR": str(tmp_path / "data"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    (tmp_path / "tmp").mkdir()
    done = subprocess.run(
        [*STOCKADE, "run", "test", "--json", "--junit", "report.xml"],
        cwd=module, env=env, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    failed = [e["job"] for e in events if e["event"] == "job_finish" and e["status"] != "succeeded"]
    assert failed == []
    ran = {e["item"] for e in events if e["event"] == "job_start" and e["step"] == "test"}
    tested, untested = PACKAGES[name]
    assert tested in ran and untested not in ran  # a package without tests is no job

    plain = subprocess.run(
        ["go", "test", "-json", "./..."],
        cwd=module, env=env, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    expected = _go_test_json(plain.stdout)
    got = {key: status for key, status in _results(done.stdout.splitlines()).items() if key[1]}
    assert len(expected) > 500
    assert got == expected

    # (testify's suite package runs tests meant to fail inside tests that
    # pass, some of the same name twice: go test -json reports them failed,
    # and so does the pipeline, once per name)
    go_events = [json.loads(line) for line in plain.stdout.splitlines()]
    ends = {
        (e["Package"], e["Test"]): e["Action"]
        for e in go_events
        if e["Action"] in ("pass", "fail", "skip") and e.get("Test")
    }
    assert_valid_junit(module / "report.xml")
    root = ET.parse(module / "report.xml").getroot()
    assert int(root.get("tests", "")) == len(ends)
    assert int(root.get("failures", "")) == sum(action == "fail" for action in ends.values())
    assert root.get("errors") == "0"
    assert os.listdir(tmp_path / "tmp") == []  # no go-build* work directory left
