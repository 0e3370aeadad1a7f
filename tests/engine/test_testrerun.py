"""``rerun --failed-tests`` and ``rerun RUN 'STEP/ITEM::TEST'`` planned from
a run recorded in the store (SQLite and PostgreSQL), and pipeline params
recorded with a run. Real jobs (shell processes) print ``go test -json``
events; what each job was asked to run is what it writes to a file."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stockade.config import loads
from stockade.engine.runs import PipelineRun, RunOptions, rerun_plan
from stockade.engine.testrerun import test_rerun_plan as plan_tests
from stockade.errors import IncompleteRun, UsageError
from stockade.pipeline.model import RunState
from stockade.store import Store

PIPELINE = """
pipelines:
  p:
    params:
      run: {default: ""}
    steps:
      build:
        for_each: [p, q]
        run: 'echo built >> "built-${{ item }}"'
      test:
        needs: [build]
        for_each: [p, q]
        events: test2json
        env:
          ITEM: ${{ item }}
          RUN: ${{ go_test_run(rerun.tests) || params.run }}
        run: 'printf "%s\\n" "$RUN" >> "asked-$ITEM"; cat "events-$ITEM.jsonl"; test ! -e "fail-$ITEM"'
"""


def _event(action: str, test: str, output: str = "") -> str:
    event = {"Action": action, "Package": "m/p", "Test": test}
    if output:
        event["Output"] = output
    return json.dumps(event) + "\n"


FAILING = (
    _event("pass", "TestOK")
    + _event("output", "TestNo", "p_test.go:9: no\n")
    + _event("fail", "TestNo")
    + _event("fail", "TestSub/b")
    + _event("fail", "TestSub")
)
PASSING = _event("pass", "TestQ")


def _execute(store: Store, **kwargs: Any) -> tuple[str, RunState]:
    config = loads(textwrap.dedent(PIPELINE), env={})
    name, spec = config.pipeline(None)
    options = kwargs.pop("options", RunOptions(keep_going=True))
    run = PipelineRun(store, config, name, spec, options=options, own_store=False, **kwargs)
    run.create()
    return run.run_id, asyncio.run(run.execute())


def _spec() -> Any:
    return loads(textwrap.dedent(PIPELINE), env={}).pipeline(None)[1]


@pytest.fixture()
def failed_run(store: Store, tmp_path: Path) -> str:
    """A run where test[p] failed two tests (one a subtest) and test[q] passed."""
    os.chdir(tmp_path)
    (tmp_path / "events-p.jsonl").write_text(FAILING)
    (tmp_path / "events-q.jsonl").write_text(PASSING)
    (tmp_path / "fail-p").touch()
    run_id, state = _execute(store)
    assert state.status.value == "failed"
    return run_id


def test_failed_tests_rerun_only_them_with_what_was_built(
    store: Store, tmp_path: Path, failed_run: str
) -> None:
    plan = plan_tests(store, store.runs.run(failed_run), _spec(), None)
    assert plan.tests == {"test[p]": ["TestNo", "TestSub/b"]}
    second, state = _execute(
        store, options=plan.options, reuse=plan.reuse, source_run=failed_run,
        rerun=plan.record, rerun_tests=plan.tests,
    )  # fmt: skip
    # test[p] ran again, asked for its failed tests only (a subtest anchored per level)
    assert (tmp_path / "asked-p").read_text().splitlines() == ["", "^TestNo$|^TestSub$/^b$"]
    assert (tmp_path / "asked-q").read_text().splitlines() == [""]  # reused, not run
    assert (tmp_path / "built-p").read_text() == "built\n"  # the builds were reused
    assert (tmp_path / "built-q").read_text() == "built\n"
    jobs = {(j.step, j.item): j for j in store.runs.jobs(second)}
    assert jobs[("test", "q")].error == f"reused from run {failed_run}"
    assert jobs[("build", "p")].error == f"reused from run {failed_run}"
    run = store.runs.run(second)
    assert run.source_run == failed_run
    assert run.options["rerun"] == {"failed_tests": True}
    assert state.status.value == "failed"


def test_one_test_by_name(store: Store, tmp_path: Path, failed_run: str) -> None:
    plan = plan_tests(store, store.runs.run(failed_run), _spec(), "test/q::TestQ")
    assert plan.tests == {"test[q]": ["TestQ"]}
    second, state = _execute(
        store, options=plan.options, reuse=plan.reuse, source_run=failed_run,
        rerun=plan.record, rerun_tests=plan.tests,
    )  # fmt: skip
    assert (tmp_path / "asked-q").read_text().splitlines() == ["", "^TestQ$"]
    assert (tmp_path / "asked-p").read_text().splitlines() == [""]  # not rerun: it failed
    assert state.status.value == "succeeded"  # the test asked for passed
    jobs = {(j.step, j.item): j for j in store.runs.jobs(second)}
    assert jobs[("test", "p")].reason == "skipped"  # no success of it to reuse
    assert store.runs.run(second).options["rerun"] == {"test": "test/q::TestQ"}

    with pytest.raises(UsageError, match=r"has no job test\[z\] \(its jobs of test: "):
        plan_tests(store, store.runs.run(failed_run), _spec(), "test/z::TestQ")
    with pytest.raises(UsageError, match="step 'build' has no test events"):
        plan_tests(store, store.runs.run(failed_run), _spec(), "build/p::TestQ")


PANIC = (
    _event("pass", "TestOK")
    + _event("output", "TestBoom", "panic: boom\n")
    + _event("fail", "TestBoom")
)


@pytest.mark.parametrize(
    ("events", "why"),
    [
        (PANIC, r"test\[p\]: TestBoom panicked, so the tests after it never ran"),
        # a binary that stopped before reporting (a timeout's panic leaves its test running)
        (_event("pass", "TestOK") + _event("run", "TestSlow"), "failed without a failed test"),
    ],
)
def test_an_incomplete_run_is_refused(store: Store, tmp_path: Path, events: str, why: str) -> None:
    os.chdir(tmp_path)
    (tmp_path / "events-p.jsonl").write_text(events)
    (tmp_path / "events-q.jsonl").write_text(PASSING)
    (tmp_path / "fail-p").touch()
    run_id, _ = _execute(store)
    with pytest.raises(IncompleteRun, match=f"run {run_id} is incomplete, some tests never ran: "):
        plan_tests(store, store.runs.run(run_id), _spec(), None)
    with pytest.raises(IncompleteRun, match=why):
        plan_tests(store, store.runs.run(run_id), _spec(), None)


def test_params_reach_the_steps_and_a_rerun_keeps_them(store: Store, tmp_path: Path) -> None:
    os.chdir(tmp_path)
    (tmp_path / "events-p.jsonl").write_text(PASSING)
    (tmp_path / "events-q.jsonl").write_text(PASSING)
    first, state = _execute(store, options=RunOptions(params={"run": "TestQ"}))
    assert state.status.value == "succeeded"
    assert (tmp_path / "asked-p").read_text() == "TestQ\n"
    source = store.runs.run(first)
    assert source.options["params"] == {"run": "TestQ"}
    _, options, _ = rerun_plan(store, source, _spec(), None, failed=False)
    assert options.params == {"run": "TestQ"}
    _execute(store, options=options, source_run=first)
    assert (tmp_path / "asked-p").read_text() == "TestQ\nTestQ\n"
