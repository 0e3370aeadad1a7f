"""``stockade run`` end to end: real CLI processes, a pseudo-terminal, Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.terminal import read_pty

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipelines"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def stockade(*args: str, cwd: Path = EXAMPLE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STOCKADE, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_example_runs_plain_when_not_a_terminal(_data_dir: Path) -> None:
    done = stockade("run")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert "succeeded test[alpha]" in done.stdout
    assert "ci: succeeded" in done.stdout
    assert not (_data_dir / "runs").exists()  # the record is in the store now
    data = json.loads(stockade("runs", "latest", "--json").stdout)
    assert data["state"] == "succeeded"
    # jobs are listed step by step in the order they started (`order: alphabetical`)
    assert [j["job"] for j in data["jobs"] if j["step"] == "test"] == [
        "test[alpha]", "test[beta]", "test[gamma]",
    ]  # fmt: skip


def test_ports_json_stream_reports_the_skipped_and_why() -> None:
    done = stockade("run", "ports", "--json", "--keep-going")
    assert done.returncode == 1
    events = [json.loads(line) for line in done.stdout.splitlines()]
    finished = {e["job"]: (e["status"], e["reason"]) for e in events if e["event"] == "job_finish"}
    assert finished["build[broken]"] == ("failed", "exit code 1")
    assert finished["build[app]"] == ("skipped", "needs build[broken], which failed")
    assert finished["build[tool]"][0] == finished["build[libnet]"][0] == "succeeded"
    assert events[-1]["event"] == "run_finish" and events[-1]["status"] == "failed"


def test_ports_rerun_failed_runs_only_the_broken_and_what_needs_it() -> None:
    """The example of docs/pipelines.md: the second run starts only two jobs."""
    assert stockade("run", "ports", "--keep-going", "--plain").returncode == 1
    done = stockade("rerun", "--failed", "--json")
    assert done.returncode == 1, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    finished = {e["job"]: e for e in events if e["event"] == "job_finish"}
    # plan, libz, libnet and tool come from the first run; broken fails again
    # ...labelled "reused", not "cached": they did not come from the result cache
    assert {j for j, e in finished.items() if e["reused"]} == {
        "plan", "build[libz]", "build[libnet]", "build[tool]",
    }  # fmt: skip
    assert not any(e["cached"] for e in finished.values())
    assert (
        finished["build[broken]"]["status"] == "failed" and not finished["build[broken]"]["reused"]
    )
    assert finished["build[app]"]["status"] == "skipped"


def test_usage_errors(tmp_path: Path) -> None:
    assert "unknown pipeline 'cii'; did you mean 'ci'?" in stockade("run", "cii").stderr
    bad = stockade("run", "--only", "nope")
    assert bad.returncode == 2 and "--only: unknown step 'nope'" in bad.stderr
    (tmp_path / "stockade.yaml").write_text("pipelines: {p: {steps: {a: {needs: [b]}}}}\n")
    invalid = stockade("run", cwd=tmp_path)
    assert invalid.returncode == 2
    assert "stockade.yaml:1: pipelines.p.steps.a.needs[0]: unknown step 'b'" in invalid.stderr


def test_junit_from_test2json(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text(
        '{"Action":"run","Package":"ex/a","Test":"TestA"}\n'
        '{"Action":"pass","Package":"ex/a","Test":"TestA","Elapsed":0.1}\n'
        '{"Action":"output","Package":"ex/b","Test":"TestB","Output":"b_test.go:7: no\\n"}\n'
        '{"Action":"fail","Package":"ex/b","Test":"TestB","Elapsed":0.2}\n'
    )
    (tmp_path / "stockade.yaml").write_text(
        textwrap.dedent(
            """
            pipelines:
              go:
                steps:
                  test:
                    events: test2json
                    run: cat events.jsonl; exit 1
            """
        )
    )
    done = stockade("run", "--junit", "out.xml", cwd=tmp_path)
    assert done.returncode == 1
    assert "tests: 1 failed, 1 passed" in done.stdout
    assert "✗ ex/b TestB" in done.stdout
    root = ET.parse(tmp_path / "out.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")


def test_live_view_under_a_pseudo_terminal() -> None:
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm"}
    proc = subprocess.Popen(
        [*STOCKADE, "run"], cwd=EXAMPLE, stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    try:
        drawn = read_pty(master, time.monotonic() + 20)
    finally:
        os.close(master)
    assert proc.wait(timeout=30) == 0
    text = drawn.decode("utf-8", "replace")
    assert "\x1b[?25l" in text  # the cursor is hidden while the view is live
    assert "pipeline ci" in text and "build" in text
    assert "ci: succeeded" in text


def test_ctrl_c_cancels_every_job(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    (tmp_path / "stockade.yaml").write_text(
        textwrap.dedent(
            f"""
            pipelines:
              p:
                steps:
                  sleep:
                    for_each: [a, b, c]
                    run: 'sh -c "echo \\$\\$ >> {pids}; exec sleep 60"'
            """
        )
    )
    proc = subprocess.Popen(
        [*STOCKADE, "run", "-j", "3"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while (
        time.monotonic() < deadline and len(pids.read_text().split() if pids.exists() else []) < 3
    ):
        time.sleep(0.05)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 10
    assert "cancelling" in err
    assert "p: cancelled" in out
    # the store has the run cancelled, and every job it was running
    view = json.loads(stockade("runs", "latest", "--json", cwd=tmp_path).stdout)
    assert view["state"] == "cancelled" and view["reason"] == "cancelled"
    assert [j["status"] for j in view["jobs"]] == ["cancelled"] * 3
    for pid in pids.read_text().split():
        assert not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text()
