"""Failures that are not one test's: shown in the terminal, with what go said.

A panic in ``init``, a ``TestMain`` that exits, a test binary that is not
there: ``go test -json`` reports each as the package failing with no test
failed. And a test's own output with ``--- FAIL`` lines in it makes go
report a failed test in a package that passed.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from stockade.ui.observers import PlainObserver
from tests.pipeline.helpers import run

needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="needs Go (Debian: golang-go)")

MODULE = {
    "go.mod": "module example.com/pf\n\ngo 1.19\n",
    "initpanic/a.go": "package initpanic\n",
    "initpanic/a_test.go": (
        'package initpanic\n\nimport "testing"\n\n'
        'func init() { panic("boom in init: config missing") }\n\n'
        "func TestNothing(t *testing.T) {}\n"
    ),
    "mainexit/a.go": "package mainexit\n",
    "mainexit/a_test.go": (
        'package mainexit\n\nimport (\n\t"fmt"\n\t"os"\n\t"testing"\n)\n\n'
        'func TestMain(m *testing.M) { fmt.Println("database unreachable"); os.Exit(3) }\n\n'
        "func TestNothing(t *testing.T) {}\n"
    ),
}

PIPELINE = """
defaults:
  env: {GOPROXY: "off", GOFLAGS: -mod=mod, GOTOOLCHAIN: local}
pipelines:
  p:
    steps:
      test:
        for_each: [initpanic, mainexit, missing]
        events: test2json
        run: >-
          if [ ${{ item }} = missing ]; then
            exec go tool test2json -t -p example.com/pf/missing ./no-such.test -test.v;
          fi;
          cd ${{ item }} && go test -c -o ../${{ item }}.test . && cd .. &&
          cd ${{ item }} && exec go tool test2json -t -p example.com/pf/${{ item }} ../${{ item }}.test -test.v
"""


def _plain(text: str) -> str:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    run(text, keep_going=True, recorder=PlainObserver(console))  # type: ignore[arg-type]
    return out.getvalue()


@needs_go
def test_package_level_failures_show_what_go_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, text in MODULE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOCACHE", os.environ.get("GOCACHE") or str(tmp_path / "cache"))
    monkeypatch.setenv("GOPATH", str(tmp_path / "gopath"))
    shown = _plain(PIPELINE)
    assert "✗ test[initpanic]: exit code 1" in shown
    assert "✗ example.com/pf/initpanic (package)" in shown
    assert "panic: boom in init: config missing" in shown
    assert "✗ example.com/pf/mainexit (package)" in shown
    assert "database unreachable" in shown
    assert "✗ example.com/pf/missing (package)" in shown
    assert "no-such.test: no such file or directory" in shown


FAKE_FAIL = """
pipelines:
  p:
    steps:
      test:
        events: test2json
        run: |
          e() { printf '{"Action":"%s","Package":"p","Test":"%s","Output":"%s"}\\n' "$@"; }
          e run TestOuter ""
          e output TestOuter '--- FAIL: TestInner (0.00s)\\n'
          e fail TestInner ""
          e pass TestOuter ""
          printf '{"Action":"pass","Package":"p"}\\n'
"""


def test_failed_tests_of_a_passing_package_are_listed() -> None:
    """go (up to 1.19 always, later without its framing) reports a ``--- FAIL``
    line a test printed as that test failing: counted, so also listed."""
    shown = _plain(FAKE_FAIL)
    assert "succeeded test" in shown
    assert "tests: 1 failed, 1 passed" in shown
    assert "! test: succeeded, but its test events report 1 failed" in shown
    assert "✗ p TestInner" in shown
