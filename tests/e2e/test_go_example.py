"""``examples/go-tests`` end to end: real ``go list``, ``go test -exec``
(every test binary from one go command) and ``go tool test2json`` under
``stockade run``, checked from the JSON stream, the run record and the
JUnit XML."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.schemas import assert_valid_junit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "go-tests"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
MODULE = "example.com/gotests"
PACKAGES = [f"{MODULE}/{name}" for name in ("broken", "mathx", "queue", "strs")]

pytestmark = pytest.mark.skipif(
    shutil.which("go") is None, reason="needs Go (Debian: golang-go; `make sysdeps`)"
)


@pytest.fixture(scope="module")
def go_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Go build cache for the module's runs: the second build is quick."""
    return tmp_path_factory.mktemp("gocache")


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """A copy of the example, so runs never write into the source tree."""
    target = tmp_path / "go-tests"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".work", ".stockade"))
    return target


def stockade(workspace: Path, go_cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GOCACHE": str(go_cache / "build"),
        "GOPATH": str(go_cache / "gopath"),
        "GO_BUILD_DIR": str(workspace / ".work" / "bin"),
    }
    return subprocess.run(
        [*STOCKADE, "run", *args],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_go_tests_pass_and_fail_per_test(workspace: Path, go_cache: Path, _data_dir: Path) -> None:
    done = stockade(workspace, go_cache, "test", "--json", "--junit", "report.xml")
    assert done.returncode == 1, done.stderr
    events = _events(done.stdout)

    # discovery found every package; one go command built every test binary
    finished = {e["job"]: e for e in events if e["event"] == "job_finish"}
    assert finished["build"]["status"] == "succeeded"
    built = {e["package"] for e in events if e["event"] == "test" and e["step"] == "build"}
    assert built == set(PACKAGES)
    assert finished[f"test[{MODULE}/strs]"]["status"] == "failed"
    for name in ("broken", "mathx", "queue"):
        assert finished[f"test[{MODULE}/{name}]"]["status"] == "succeeded"

    # the build needs nothing from discovery: the two ran at the same time
    if (os.cpu_count() or 1) > 1:
        build_start = next(e for e in events if e["event"] == "job_start" and e["job"] == "build")
        assert events.index(build_start) < events.index(finished["discover"])
    # the tests started in alphabetical order of their packages, after the build
    started = [e["job"] for e in events if e["event"] == "job_start" and e["step"] == "test"]
    assert started == [f"test[{p}]" for p in PACKAGES]
    test_events = [e for e in events if e["event"] == "job_start" and e["step"] == "test"]
    build_ends = [e for e in events if e["event"] == "job_finish" and e["step"] == "build"]
    assert events.index(build_ends[-1]) < events.index(test_events[0])

    # per-test results from test2json
    results = {
        (e["package"], e["test"]): e for e in events if e["event"] == "test" and e["step"] == "test"
    }
    status = {key: e["status"] for key, e in results.items()}
    assert status[(f"{MODULE}/strs", "TestReverseUnicode")] == "failed"
    assert status[(f"{MODULE}/strs", "TestReverseASCII")] == "passed"
    assert status[(f"{MODULE}/mathx", "TestAdd")] == "passed"
    assert status[(f"{MODULE}/queue", "TestFIFO/pop#02")] == "passed"
    assert status[(f"{MODULE}/queue", "TestLarge")] == "skipped"
    assert [k for k, v in status.items() if v == "failed" and k[1]] == [
        (f"{MODULE}/strs", "TestReverseUnicode")
    ]
    assert status[(f"{MODULE}/strs", "")] == "failed"  # the package's own end event
    assert 'want "olléh"' in results[(f"{MODULE}/strs", "TestReverseUnicode")]["output"]

    # the run recorded in the store holds the same
    shown = subprocess.run(
        [sys.executable, "-m", "stockade.cli.main", "runs", "latest", "--json"],
        cwd=workspace, capture_output=True, text=True, check=True,
    )  # fmt: skip
    run = json.loads(shown.stdout)
    assert run["state"] == "failed"
    # (a package's own end is kept only where no test of it failed, as in the JUnit)
    tests_failed = {k for k, v in status.items() if v == "failed" and k[1]}
    assert run["tests"]["failed"] == len(tests_failed)
    assert run["tests"]["passed"] == sum(1 for k, v in status.items() if v == "passed" and k[1])
    failed = {(t["package"], t["test"]): t["output"] for t in run["failed_tests"]}
    assert set(failed) == tests_failed
    assert 'want "olléh"' in failed[(f"{MODULE}/strs", "TestReverseUnicode")]

    _check_junit(workspace / "report.xml")


def _check_junit(path: Path) -> None:
    """Valid under the JUnit schema CI systems read (tests/schemas/junit.xsd),
    and the counts."""
    assert_valid_junit(path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("11", "1", "0")
    assert sum(int(s.get("skipped", "")) for s in root.findall("testsuite")) == 1
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == PACKAGES
    counts: dict[str, tuple[int, int, int]] = {}
    for suite in suites:
        for attribute in ("name", "tests", "failures", "errors", "skipped", "time"):
            assert suite.get(attribute) is not None, attribute
        float(suite.get("time", ""))
        cases = suite.findall("testcase")
        assert all(child.tag == "testcase" for child in suite)
        assert int(suite.get("tests", "")) == len(cases)
        failures = [c for c in cases if c.find("failure") is not None]
        skipped = [c for c in cases if c.find("skipped") is not None]
        assert int(suite.get("failures", "")) == len(failures)
        assert int(suite.get("skipped", "")) == len(skipped)
        for case in cases:
            assert case.get("name") and case.get("classname") == suite.get("name")
            float(case.get("time", ""))
            assert {child.tag for child in case} <= {"failure", "skipped", "error"}
        counts[str(suite.get("name"))] = (len(cases), len(failures), len(skipped))
    assert counts == {
        f"{MODULE}/broken": (1, 0, 0),
        f"{MODULE}/mathx": (2, 0, 0),
        f"{MODULE}/queue": (6, 0, 1),
        f"{MODULE}/strs": (2, 1, 0),
    }
    (failure,) = root.iter("failure")
    assert failure.get("message") and failure.get("type")
    assert "strs_test.go:13" in (failure.text or "")


def test_ctrl_c_during_builds_leaves_no_go_work_directory(workspace: Path, tmp_path: Path) -> None:
    """The Go tasks stop with SIGINT, on which ``go`` removes its ``go-build*``
    directory (SIGTERM leaves it): after a Ctrl-C in the build stage, $TMPDIR is empty."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {
        **os.environ,
        "GOCACHE": str(tmp_path / "cold-cache"),  # cold: the builds take a while
        "GOPATH": str(tmp_path / "gopath"),
        "TMPDIR": str(scratch),
    }
    proc = subprocess.Popen(
        [*STOCKADE, "run", "test", "--json"],
        cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "job_start" and event["step"] == "build":
            break
    deadline = time.monotonic() + 30
    while not list(scratch.rglob("go-build*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert list(scratch.rglob("go-build*")), "go never made its work directory"
        proc.send_signal(signal.SIGINT)  # at once: go may not have its handler yet
        proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 130
    assert list(scratch.iterdir()) == []


def test_a_build_failure_stops_before_the_tests_and_is_an_error_in_every_view(
    workspace: Path, go_cache: Path
) -> None:
    """One ``broken`` run per view (JSON with JUnit, plain): each its checks.
    The package that does not compile is an error of its own (as gotestsum
    counts it), with the compiler's message; the others were built."""
    done = stockade(workspace, go_cache, "broken", "--json", "--junit", "report.xml")
    assert done.returncode == 1
    events = _events(done.stdout)
    # the build failure stops the run before the tests
    assert not [e for e in events if e["event"] in ("test", "job_start") and e["step"] == "test"]
    build = next(e for e in events if e["event"] == "job_finish" and e["job"] == "build")
    assert build["status"] == "failed"
    step = next(e for e in events if e["event"] == "step_finish" and e["step"] == "test")
    assert step["status"] == "skipped"
    assert events[-1]["event"] == "run_finish" and events[-1]["status"] == "failed"
    # per package, from go's own events: the broken one an error, the others built
    built = {e["package"]: e for e in events if e["event"] == "test" and e["step"] == "build"}
    assert {p: e["status"] for p, e in built.items()} == {
        f"{MODULE}/broken": "error",
        **{f"{MODULE}/{name}": "passed" for name in ("mathx", "queue", "strs")},
    }
    (error,) = build["tests"]
    assert (error["package"], error["test"], error["status"]) == (f"{MODULE}/broken", "", "error")
    assert "broken/bad.go:7:9: cannot use" in error["output"]

    assert_valid_junit(workspace / "report.xml")
    root = ET.parse(workspace / "report.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "0", "1")
    (case,) = root.iter("testcase")
    assert case.get("classname") == f"{MODULE}/broken"
    element = case.find("error")
    assert element is not None
    assert (element.get("message") or "").startswith("broken/bad.go:7:9: cannot use")
    assert "broken/bad.go:7:9: cannot use" in (element.text or "")

    plain = stockade(workspace, go_cache, "broken", "--plain")
    assert plain.returncode == 1, plain.stderr
    out = plain.stdout
    assert "tests: 1 error" in out
    assert "failed    build" in out
    assert f"# {MODULE}/broken" in out and "broken/bad.go:7:9: cannot use" in out  # shown
    assert "skipped   step test (needs build, which failed)" in out
    assert "start  test[" not in out


FIXED_REVERSE = """package strs

// Reverse reverses s rune by rune.
func Reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
"""


def test_rerun_failed_after_a_fix_rebuilds_what_changed(workspace: Path, go_cache: Path) -> None:
    """Reuse is keyed by content (the steps' ``inputs:``): with nothing changed
    only the failed test runs again; after a fix the build job runs again, so
    the fixed package's test runs the new binary; the other tests are reused.
    The first run's plain view shows the failed test and its output."""
    first = stockade(workspace, go_cache, "test", "--plain")
    assert first.returncode == 1, first.stdout + first.stderr
    # the plain view shows the failed test and its output
    assert f"✗ {MODULE}/strs TestReverseUnicode" in first.stdout
    assert 'strs_test.go:13: Reverse(héllo) = "oll\\xa9\\xc3h", want "olléh"' in first.stdout
    assert "tests: 1 failed, 9 passed, 1 skipped" in first.stdout
    unchanged = _stockade_cmd(workspace, go_cache, "rerun", "--failed", "--json")
    assert unchanged.returncode == 1, unchanged.stdout[-2000:] + unchanged.stderr
    assert set(_ran(unchanged.stdout)) == {f"test[{MODULE}/strs]"}  # the build is reused
    (workspace / "strs" / "strs.go").write_text(FIXED_REVERSE)
    again = _stockade_cmd(workspace, go_cache, "rerun", "--failed", "--json")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr
    finished = {e["job"]: e for e in _events(again.stdout) if e["event"] == "job_finish"}
    ran = {name for name, e in finished.items() if not e["reused"] and not e["cached"]}
    # the one build job ran again (go's cache rebuilt only strs), the other tests were reused
    assert ran == {"discover", "build", f"test[{MODULE}/strs]"}
    for name in ("broken", "mathx", "queue"):
        assert finished[f"test[{MODULE}/{name}]"]["reused"]
    assert finished[f"test[{MODULE}/strs]"]["status"] == "succeeded"


def _stockade_cmd(workspace: Path, go_cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Any stockade command in the workspace, with the module's Go caches."""
    env = {
        **os.environ,
        "GOCACHE": str(go_cache / "build"),
        "GOPATH": str(go_cache / "gopath"),
        "GO_BUILD_DIR": str(workspace / ".work" / "bin"),
    }
    return subprocess.run(
        [*STOCKADE, *args],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def _ran(stdout: str) -> dict[str, list[str]]:
    """The jobs that ran (not reused), each with the tests it reported."""
    events = _events(stdout)
    ran = {
        e["job"]: [t["test"] for t in e["tests"]]
        for e in events
        if e["event"] == "job_finish" and not e["reused"] and not e["cached"]
    }
    return ran


def test_rerun_failed_tests_runs_only_them_with_the_built_binaries(
    workspace: Path, go_cache: Path
) -> None:
    assert stockade(workspace, go_cache, "test", "--plain").returncode == 1
    again = _stockade_cmd(workspace, go_cache, "rerun", "--failed-tests", "--json")
    assert again.returncode == 1, again.stderr
    # nothing was built again: only the failed package's binary ran, with its failed test
    assert _ran(again.stdout) == {f"test[{MODULE}/strs]": ["TestReverseUnicode"]}

    one = _stockade_cmd(workspace, go_cache, "rerun", "latest", f"test/{MODULE}/queue::TestEmpty")
    assert one.returncode == 0, one.stdout + one.stderr
    shown = json.loads(_stockade_cmd(workspace, go_cache, "runs", "latest", "--json").stdout)
    ran = [j for j in shown["jobs"] if j["status"] == "succeeded" and not j.get("reason")]
    assert [j["job"] for j in ran] == [f"test[{MODULE}/queue]"], shown["jobs"]
    assert shown["options"]["rerun"] == {"test": f"test/{MODULE}/queue::TestEmpty"}


def test_set_params_reach_the_test_binaries(workspace: Path, go_cache: Path) -> None:
    done = stockade(workspace, go_cache, "test", "--json", "--set", "run=TestAbs|TestEmpty")
    assert done.returncode == 0, done.stderr
    tests = sorted(t for ts in _ran(done.stdout).values() for t in ts)
    assert tests == ["TestAbs", "TestEmpty"]

    bad = stockade(workspace, go_cache, "test", "--set", "nope=1")
    assert bad.returncode == 2
    assert bad.stderr == (
        "stockade: error: --set nope: pipeline 'test' has no param 'nope' (params: run, short)\n"
    )
    typed = stockade(workspace, go_cache, "test", "--set", "short=maybe")
    assert (typed.returncode, typed.stderr.count("\n")) == (2, 1)
    assert "'maybe' is not a bool" in typed.stderr


def test_rerun_failed_tests_refuses_a_run_whose_tests_did_not_all_run(
    workspace: Path, go_cache: Path
) -> None:
    assert stockade(workspace, go_cache, "broken", "--plain").returncode == 1
    refused = _stockade_cmd(workspace, go_cache, "rerun", "--failed-tests")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "is incomplete, some tests never ran: step test skipped (needs build" in refused.stderr
    assert "`stockade rerun --failed` runs those jobs whole" in refused.stderr
    both = _stockade_cmd(workspace, go_cache, "rerun", "--failed", "--failed-tests")
    assert (both.returncode, both.stderr) == (
        2, "stockade: error: give only one of --failed, --failed-tests and STEP[/ITEM][::TEST]\n"
    )  # fmt: skip


def test_a_package_whose_dependency_does_not_compile_carries_its_message(
    tmp_path: Path, go_cache: Path
) -> None:
    """Go names the dependency, not the package under test, above the
    compiler's messages: the package's error case still holds them."""
    module = tmp_path / "dep"
    module.mkdir()
    for path in [EXAMPLE / "stockade.yaml", *EXAMPLE.glob("*.sh")]:
        shutil.copy(path, module / path.name)
    files = {
        "go.mod": "module example.com/dep\n\ngo 1.19\n",
        "b/b.go": 'package b\n\nfunc B() int { return "b" }\n',
        "a/a.go": 'package a\n\nimport "example.com/dep/b"\n\nfunc A() int { return b.B() }\n',
        "a/a_test.go": 'package a\n\nimport "testing"\n\nfunc TestA(t *testing.T) { A() }\n',
    }
    for name, text in files.items():
        (module / name).parent.mkdir(exist_ok=True)
        (module / name).write_text(text)
    done = stockade(module, go_cache, "test", "--json")
    assert done.returncode == 1, done.stderr
    events = _events(done.stdout)
    build = next(e for e in events if e["event"] == "job_finish" and e["job"] == "build")
    (error,) = build["tests"]
    assert (error["package"], error["status"]) == ("example.com/dep/a", "error")
    assert "b/b.go:3:23: cannot use" in error["output"]


def test_a_module_whose_path_has_a_space_builds(tmp_path: Path, go_cache: Path) -> None:
    # go splits -exec's value at spaces: the build must not pass it a path
    target = tmp_path / "my module" / "go-tests"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".work", ".stockade"))
    done = stockade(target, go_cache, "test", "--json")
    finished = {e["job"]: e for e in _events(done.stdout) if e["event"] == "job_finish"}
    assert finished["build"]["status"] == "succeeded", done.stdout[-2000:]
    assert finished[f"test[{MODULE}/mathx]"]["status"] == "succeeded"
