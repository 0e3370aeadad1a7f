"""A run from a cached plan is the run the full path makes.

Each config runs twice through the command line, in fresh data
directories: once with the plan cache off (the models load and validate
the file, as ever) and once from a plan cached by an earlier run. The
recorded rows of every run table (ids, times and durations aside) and the
output must be the same; and the frozen job spec the plan makes for a task
is the one :func:`stockade.engine.jobspec.new_job` makes from the models.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stockade.config import loads
from stockade.engine.jobspec import SPEC_VERSION, new_job
from stockade.runplan.compile import compile_config
from stockade.runplan.freeze import SPEC_VERSION as PLAN_SPEC_VERSION
from stockade.runplan.freeze import frozen_job
from stockade.runplan.model import RunPlan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: Fan-out, needs, if, params, a secret, a sandbox profile, notify, test events.
FEATURES = """\
version: 1
defaults:
  timeout: 1m
  env: {SHARED: "from-defaults"}
secrets:
  API_TOKEN: {env: PLAN_TEST_TOKEN}
sandboxes:
  fake: {backend: mock}
notify:
  - command: ["true"]
tasks:
  greet:
    run: 'echo "hello $WHO ${API_TOKEN}" | tr -d x; echo "said=$WHO" >> "$STOCKADE_OUTPUT"'
    secrets: [API_TOKEN]
pipelines:
  p:
    params:
      flavor: {type: string, default: plain}
      loud: {type: bool, default: false}
    steps:
      list:
        task: {output_format: json_stdout, run: 'echo ''{"items": ["b", "a", "c"]}'''}
      each:
        task: greet
        needs: [list]
        for_each: ${{ steps.list.outputs.items }}
        env: {WHO: "${{ item }}-${{ params.flavor }}"}
      boxed:
        needs: [each]
        task: {run: 'true', sandbox: fake}
      loud:
        needs: [each]
        if: ${{ params.loud }}
        run: echo LOUD
      tests:
        needs: [list]
        events: test2json
        continue_on_error: true
        run: >-
          printf '%s\\n'
          '{"Action":"run","Package":"p","Test":"TestA"}'
          '{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0}'
          '{"Action":"run","Package":"p","Test":"TestB"}'
          '{"Action":"fail","Package":"p","Test":"TestB","Elapsed":0}'
          '{"Action":"fail","Package":"p","Elapsed":0}'; exit 1
      after:
        needs: [tests]
        if: always()
        run: echo "after ${{ steps.tests.outcome }}"
"""

#: Columns that differ between any two runs: ids, times, durations, usage.
_VARYING = re.compile(
    r"(^id$|_at$|^time$|^due$|^duration$|^elapsed$|^cpu_seconds$|^memory_bytes$|^lease_expires$"
    r"|^result$|^token$|^history$|^run_after$)"
)
#: The run tables compared. ``events`` (each job's journal of state changes) is
#: not: which changes it holds depends on how the recorder's writes were
#: batched (a job that ends within one write has no ``started``), which varies
#: between any two runs.
_TABLES = (
    "runs", "jobs", "attempts", "outputs", "run_tests", "log_chunks", "notifications", "job_deps",
)  # fmt: skip
#: What go test prints of the clock: event times and elapsed seconds.
_CLOCK = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z|Elapsed\W+[\d.]+|\(\d+\.\d+s\)|\b\d+\.\d+s\b")
#: A failed job's log path (its id; folded over lines when long).
_LOG = re.compile(r"log:\s+/[\s\S]*?\.jsonl")
_SECONDS = re.compile(r"\b\d+(\.\d+)?s\b|\b\d+m\d\ds\b")


def _rows(db: Path, unordered: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Every row of the run tables, ids and times left out, job ids named by
    their step and item, sorted (jobs running at once interleave). The log
    and outputs of the jobs named in ``unordered`` are left out: their lines
    come in an order that varies between any two runs."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    names = {
        row["id"]: f"job:{row['step']}[{row['item']}]" for row in con.execute("SELECT * FROM jobs")
    }
    names |= {row["id"]: "run" for row in con.execute("SELECT id FROM runs")}
    out: dict[str, list[str]] = {}
    for table in _TABLES:
        rows = []
        for row in con.execute(f"SELECT * FROM {table}"):
            kept = {k: row[k] for k in row.keys() if not _VARYING.search(k)}  # noqa: SIM118
            text = json.dumps(kept, sort_keys=True, default=str)
            for id_, label in names.items():  # in columns and inside JSON values
                text = text.replace(id_, label)
            if table in ("log_chunks", "outputs") and names.get(kept.get("job_id")) in unordered:
                continue
            rows.append(_CLOCK.sub("C", text))
        out[table] = sorted(rows)
    con.close()
    return out


def _run(workdir: Path, data: Path, args: list[str], cache: bool) -> str:
    env = {**os.environ, "STOCKADE_DATA_DIR": str(data), "PLAN_TEST_TOKEN": "xx-tok-xx"}
    env["STOCKADE_PLAN_CACHE"] = "1" if cache else "0"
    env.pop("STOCKADE_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "stockade.cli.main", "run", "-j", "1", "-q", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    text = _LOG.sub("log: LOG", f"exit {done.returncode}\n{done.stdout}{done.stderr}")
    return _SECONDS.sub("T", text)


def _both(
    workdir: Path, tmp: Path, args: list[str], unordered: frozenset[str] = frozenset()
) -> None:
    full = _run(workdir, tmp / "full", args, cache=False)
    _run(workdir, tmp / "kept", args, cache=True)  # compiles and keeps the plan
    (tmp / "kept" / "stockade.db").unlink()
    cached = _run(workdir, tmp / "kept", args, cache=True)
    assert list((tmp / "kept" / "plans").glob("*.json")), "the plan was not kept"
    assert not (tmp / "full" / "plans").exists()
    assert cached == full
    kept, whole = tmp / "kept" / "stockade.db", tmp / "full" / "stockade.db"
    assert _rows(kept, unordered) == _rows(whole, unordered)


@pytest.mark.parametrize(
    "args", [[], ["--set", "flavor=spicy", "--set", "loud=yes"], ["--only", "boxed"]]
)
def test_features_run_the_same_from_a_cached_plan(tmp_path: Path, args: list[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "stockade.yaml").write_text(FEATURES)
    _both(work, tmp_path, args)
    for plan in (tmp_path / "kept" / "plans").glob("*.json"):
        assert "xx-tok-xx" not in plan.read_text()


@pytest.mark.parametrize("pipeline", ["ci", "ports"])
def test_the_pipelines_example_runs_the_same(tmp_path: Path, pipeline: str) -> None:
    work = tmp_path / "work"
    shutil.copytree(EXAMPLES / "pipelines", work)
    _both(work, tmp_path, [pipeline])


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")
def test_the_go_tests_example_runs_the_same(tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(EXAMPLES / "go-tests", work, ignore=shutil.ignore_patterns(".work"))
    # go builds the packages at once and prints each one's events as it is
    # done, in an order that varies: what the build reported is compared
    # through its test results (run_tests), not its log's order
    _both(work, tmp_path, [], unordered=frozenset({"job:build[None]"}))


def test_a_frozen_job_is_the_one_new_job_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the recorder stores for a planned job, from the plan, equals the
    record :func:`new_job` makes from the models: secrets' sources, notify
    entries (the file's and the task's), the sandbox profile."""
    config = loads(
        textwrap.dedent(FEATURES)
        + "  q:\n    steps:\n      s:\n        task:\n          run: 'true'\n"
        "          sandbox: mock\n          secrets: [OTHER_KEY]\n          priority: 7\n"
        "          notify: [{command: [echo, done]}]\n",
        env={},
    )
    plan = RunPlan(compile_config(config))
    assert PLAN_SPEC_VERSION == SPEC_VERSION
    for name, pipeline in plan.pipelines.items():
        for step_name, step in pipeline.steps.items():
            model = config.pipelines[name].steps[step_name]
            task = config.task(model.task) if isinstance(model.task, str) else step.task.model()
            expected = new_job(step.task_name, task, config=config, input={"item": 1})
            got: dict[str, Any] = frozen_job(plan, step.task_name, step.task, {"item": 1})
            assert got == {
                "task": expected.task, "spec": expected.spec, "input": expected.input,
                "priority": expected.priority, "max_attempts": expected.max_attempts,
            }  # fmt: skip
