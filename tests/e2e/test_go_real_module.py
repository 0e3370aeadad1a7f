"""``examples/go-tests`` unchanged on a real module nobody here wrote.

go-cmp's sources come from Debian's ``golang-github-google-go-cmp-dev``
(``make sysdeps``). The shipped ``stockade.yaml`` and shell scripts are
copied next to them as they are, the pipeline runs
once, and its per-test results are compared with plain ``go test -json
./...`` on the same tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.schemas import assert_valid_junit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "go-tests"
GO_CMP = Path("/usr/share/gocode/src/github.com/google/go-cmp")
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]

pytestmark = pytest.mark.skipif(
    shutil.which("go") is None or not (GO_CMP / "go.mod").is_file(),
    reason="needs Go and go-cmp's sources (Debian: golang-go, golang-github-google-go-cmp-dev)",
)


def _results(lines: list[str]) -> dict[tuple[str, str], str]:
    """``(package, test) -> passed/failed/skipped`` from test events."""
    out: dict[tuple[str, str], str] = {}
    for line in lines:
        if line.strip():
            event = json.loads(line)
            if event.get("event") == "test":
                out[(event["package"], event["test"])] = event["status"]
    return out


def _go_test_json(stdout: str) -> dict[tuple[str, str], str]:
    final = {"pass": "passed", "fail": "failed", "skip": "skipped"}
    out: dict[tuple[str, str], str] = {}
    for line in stdout.splitlines():
        event = json.loads(line)
        if event["Action"] in final and event.get("Test"):
            out[(event["Package"], event["Test"])] = final[event["Action"]]
    return out


def test_shipped_pipeline_on_go_cmp_matches_go_test_json(tmp_path: Path) -> None:
    module = tmp_path / "go-cmp"
    shutil.copytree(GO_CMP, module, symlinks=False)
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
    # packages without tests (cmp/internal/flags, testprotos, teststructs...) are not jobs
    assert "github.com/google/go-cmp/cmp/internal/flags" not in ran
    assert "github.com/google/go-cmp/cmp" in ran

    plain = subprocess.run(
        ["go", "test", "-json", "./..."],
        cwd=module, env=env, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    expected = _go_test_json(plain.stdout)
    got = {key: status for key, status in _results(done.stdout.splitlines()).items() if key[1]}
    assert len(expected) > 500
    assert got == expected

    assert_valid_junit(module / "report.xml")
    root = ET.parse(module / "report.xml").getroot()
    assert int(root.get("tests", "")) == len(expected)
    assert root.get("failures") == "0" and root.get("errors") == "0"
    assert os.listdir(tmp_path / "tmp") == []  # no go-build* work directory left
