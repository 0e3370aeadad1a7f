"""Pipeline runs recorded in the store, on SQLite and PostgreSQL.

Real jobs (processes), a real store; the scheduler records through
:class:`stockade.engine.runs.PipelineRun` exactly as ``stockade run`` does.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import sqlalchemy as sa

from stockade.config import loads
from stockade.engine.runs import PipelineRun, RunOptions, rerun_plan
from stockade.engine.runview import run_view
from stockade.pipeline.model import RunState
from stockade.store import JobState, Store
from stockade.store import schema as t
from stockade.store.states import RunState as StoredRun

PIPELINE = """
tasks:
  hello:
    run: 'echo hello; echo "greeting=hi" >> "$STOCKADE_OUTPUT"'
pipelines:
  p:
    steps:
      first:
        task: hello
      each:
        needs: [first]
        for_each: [a, b, bad]
        run: 'test "${{ item }}" != bad || { echo broken >&2; exit 3; }; echo "item ${{ item }}"'
      after:
        needs: [each]
        run: echo never
      gotest:
        events: test2json
        run: cat "$EVENTS"
        env:
          EVENTS: events.jsonl
"""
EVENTS = (
    '{"Action":"run","Package":"m/p","Test":"TestOK"}\n'
    '{"Action":"pass","Package":"m/p","Test":"TestOK","Elapsed":0.1}\n'
    '{"Action":"output","Package":"m/p","Test":"TestNo","Output":"p_test.go:9: no\\n"}\n'
    '{"Action":"fail","Package":"m/p","Test":"TestNo","Elapsed":0.2}\n'
)


def _execute(store: Store, text: str, **kwargs: Any) -> tuple[str, RunState]:
    config = loads(textwrap.dedent(text), env={})
    name, spec = config.pipeline(None)
    options = kwargs.pop("options", RunOptions(keep_going=True))
    run = PipelineRun(store, config, name, spec, options=options, own_store=False, **kwargs)
    run.create()
    return run.run_id, asyncio.run(run.execute())


def test_a_run_and_its_jobs_are_in_the_store(store: Store, tmp_path: Any) -> None:
    os.chdir(tmp_path)
    (tmp_path / "events.jsonl").write_text(EVENTS)
    run_id, state = _execute(store, PIPELINE)
    run = store.runs.run(run_id)
    assert run.state is StoredRun.FAILED and run.reason == "each[bad] failed"
    assert run.options == {"jobs": None, "keep_going": True, "only": []}
    assert run.steps["each"]["counts"] == {"succeeded": 2, "failed": 1}
    assert run.steps["after"]["status"] == "skipped"
    assert run.tests == {"passed": 1, "failed": 1}

    jobs = {(j.step, j.item): j for j in store.runs.jobs(run_id)}
    assert set(jobs) == {("first", None), ("each", "a"), ("each", "b"), ("each", "bad"),
                         ("gotest", None)}  # fmt: skip
    first = jobs[("first", None)]
    assert first.state is JobState.SUCCEEDED and first.task == "hello" and first.run_id == run_id
    assert first.spec["task"]["run"].startswith("echo")  # frozen as a worker's job is
    assert store.queries.outputs(first.id) == {"stdout": "hello\n", "greeting": "hi"}
    (attempt,) = store.queries.attempts(first.id)
    assert attempt.outcome == "succeeded" and attempt.worker_id == f"run:{run_id}"
    assert attempt.reason == "succeeded"
    # A run's attempt keeps what it used, as a worker's does.
    assert attempt.result is not None and attempt.result["usage"]["cpu_user"] >= 0
    assert attempt.result["usage"]["wall"] > 0 and attempt.result["dump"] is None
    with store.db.read() as conn:  # and its CPU as the column the metrics read
        cpu = conn.execute(
            sa.select(t.attempts.c.cpu_seconds).where(t.attempts.c.job_id == first.id)
        ).scalar_one()
    usage = attempt.result["usage"]
    assert cpu == pytest.approx(usage["cpu_user"] + usage["cpu_system"])
    bad = jobs[("each", "bad")]
    assert (bad.state, bad.outcome, bad.exit_code) == (JobState.FAILED, "failed", 3)
    logs = "".join(c.text for c in store.queries.logs(bad.id))
    assert logs == "broken\n"
    assert "item a" in "".join(c.text for c in store.queries.logs(jobs[("each", "a")].id))
    # listing by run is the same set
    assert {j.id for j in store.queries.jobs(run_id=run_id)} == {j.id for j in jobs.values()}

    failed = store.runs.tests(run_id, status="failed")
    assert [(t.package, t.test, t.output) for t in failed] == [
        ("m/p", "TestNo", "p_test.go:9: no\n")
    ]
    assert state.status.value == "failed"


def test_a_skipped_job_is_recorded_with_its_reason(store: Store, tmp_path: Any) -> None:
    os.chdir(tmp_path)
    run_id, _ = _execute(
        store,
        """
        pipelines:
          p:
            steps:
              build:
                for_each: [ok, broken]
                run: test "${{ item }}" = ok
              pack:
                needs_each: [build]
                for_each: [ok, broken]
                run: echo packed
        """,
    )
    view = run_view(store, run_id)
    by_name = {j["job"]: j for j in view["jobs"]}
    assert by_name["pack[broken]"]["status"] == "skipped"
    assert by_name["pack[broken]"]["reason"] == "needs build[broken], which failed"
    assert by_name["pack[ok]"]["status"] == "succeeded"
    skipped = store.queries.job(by_name["pack[broken]"]["id"])
    assert (skipped.state, skipped.reason) == (JobState.CANCELLED, "skipped")
    assert store.queries.attempts(skipped.id) == []


def test_rerun_failed_reuses_the_recorded_successes(store: Store, tmp_path: Any) -> None:
    os.chdir(tmp_path)
    text = """
    pipelines:
      p:
        steps:
          build:
            for_each: [x, y]
            run: 'echo ran >> "count-${{ item }}"; test -e fixed -o "${{ item }}" = x'
          pack:
            needs: [build]
            run: echo packed >> count-pack
    """
    first_id, _ = _execute(store, text)
    (tmp_path / "fixed").touch()
    config = loads(textwrap.dedent(text), env={})
    _, spec = config.pipeline(None)
    source = store.runs.run(first_id)
    reuse, options, rerun = rerun_plan(store, source, spec, None, failed=True)
    second_id, state = _execute(
        store, text, options=options, reuse=reuse, source_run=first_id, rerun=rerun
    )
    assert state.status.value == "succeeded"
    assert (tmp_path / "count-x").read_text() == "ran\n"  # reused, not run again
    assert (tmp_path / "count-y").read_text() == "ran\nran\n"
    assert (tmp_path / "count-pack").read_text() == "packed\n"
    second = store.runs.run(second_id)
    assert second.source_run == first_id and second.options["rerun"] == {"failed": True}
    reused = {j.item: (j.reason, j.error) for j in store.runs.jobs(second_id) if j.step == "build"}
    assert reused == {"x": ("reused", f"reused from run {first_id}"), "y": ("succeeded", None)}


def test_secrets_are_frozen_as_sources_and_masked_in_logs(
    store: Store, tmp_path: Any, monkeypatch: Any
) -> None:
    os.chdir(tmp_path)
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cr3t-value-4711")
    run_id, _ = _execute(
        store,
        """
        secrets:
          TOKEN: {env: DEPLOY_TOKEN}
        tasks:
          deploy:
            secrets: [TOKEN]
            run: 'echo "token is $TOKEN"'
        pipelines:
          p:
            steps:
              deploy: {task: deploy}
        """,
    )
    (job,) = store.runs.jobs(run_id)
    assert job.state is JobState.SUCCEEDED
    assert job.spec["secrets"] == {"TOKEN": {"env": "DEPLOY_TOKEN"}}
    assert "s3cr3t" not in repr(job.spec)
    text = "".join(c.text for c in store.queries.logs(job.id))
    assert text == "token is ***\n"


def test_a_quiet_run_beats_so_it_is_not_taken_for_abandoned(store: Store, tmp_path: Any) -> None:
    os.chdir(tmp_path)
    config = loads("pipelines: {p: {steps: {quiet: {run: 'sleep 1.5'}}}}", env={})
    name, spec = config.pipeline(None)
    run = PipelineRun(store, config, name, spec, options=RunOptions(), own_store=False)
    run.recorder.heartbeat = 0.2  # 5 s in `stockade run`
    run.create()

    def age() -> None:  # two minutes pass on the store's clock, in one step
        with store.db.transaction() as conn:
            conn.execute(sa.update(t.runs).values(updated_at=t.runs.c.updated_at - 120))

    async def main() -> tuple[list[str], RunState]:
        task = asyncio.create_task(run.execute())
        await asyncio.sleep(0.5)  # the job is running and prints nothing
        await asyncio.to_thread(age)
        await asyncio.sleep(0.6)  # a beat or more
        recovered = await asyncio.to_thread(store.runs.recover_abandoned, 60)
        return recovered, await task

    recovered, state = asyncio.run(main())
    assert recovered == []
    assert state.status.value == "succeeded"
    assert store.runs.run(run.run_id).state is StoredRun.SUCCEEDED


def test_a_run_job_keeps_its_tasks_log_head_and_tail(store: Store, tmp_path: Any) -> None:
    os.chdir(tmp_path)
    run_id, _ = _execute(
        store,
        """
        tasks:
          loud:
            run: seq 1 200000
            log_head: 1KiB
            log_tail: 1KiB
        pipelines:
          p:
            steps:
              talk:
                task: loud
        """,
    )
    (job,) = run_view(store, run_id)["jobs"]
    chunks = store.queries.logs(job["id"])
    out = "".join(c.text for c in chunks if c.stream == "stdout")
    assert out.startswith("1\n2\n") and out.endswith("199999\n200000\n")
    assert len(out) <= 2048
    assert any("log cut here: stdout" in c.text for c in chunks if c.stream == "stockade")


def test_a_sandbox_cleanup_failure_is_a_warning_of_the_run(
    store: Store, store_url: str, tmp_path: Any, monkeypatch: Any
) -> None:
    """It does not fail the run, and it is not swallowed: the run records it
    and ``stockade runs`` shows it."""
    from stockade.errors import CleanupError
    from stockade.sandbox.mock import MockSandbox

    def stuck(self: MockSandbox) -> None:
        raise CleanupError("1 mount(s) under /x could not be unmounted: /x/proc")

    # A test double: a sandbox that cannot be taken down (a mount held by a
    # process that escaped) cannot be produced on demand here.
    monkeypatch.setattr(MockSandbox, "cleanup", stuck)
    os.chdir(tmp_path)
    text = """
    sandboxes:
      fake: {backend: mock}
    pipelines:
      p:
        steps:
          s:
            task: {run: "true", sandbox: fake}
    """
    run_id, state = _execute(store, text)
    assert state.status.value == "succeeded"
    (warning,) = state.warnings
    assert warning.startswith("slot 0 (fake): cleanup failed: 1 mount(s) under /x")
    assert store.runs.run(run_id).warnings == [warning]
    assert run_view(store, run_id)["warnings"] == [warning]

    def runs(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "stockade.cli.main", "runs", *args, "--database-url", store_url],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout

    listed = runs()
    assert "succeeded  1/1" in listed and "1 warning" in listed
    assert f"warning   {warning}" in runs(run_id)
