"""The scheduler with real processes: order, fan-out, failures, cancel."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from stockade.pipeline.model import Status
from stockade.pipeline.scheduler import Scheduler
from tests.pipeline.helpers import Recorder, lines, reasons, run, statuses


def test_fan_out_needs_each_and_alphabetical_order(tmp_path: Path) -> None:
    log = tmp_path / "order"
    state = run(
        f"""
        pipelines:
          ci:
            steps:
              discover:
                task:
                  output_format: json_stdout
                  run: 'echo ''{{"units": ["c", "a", "b"]}}'''
              build:
                needs: [discover]
                for_each: ${{{{ steps.discover.outputs.units }}}}
                run: 'sleep 0.${{{{ item == "a" && "3" || "1" }}}}; echo "out=${{{{ item }}}}.bin" >> "$STOCKADE_OUTPUT"'
              test:
                needs: [discover]
                needs_each: [build]
                for_each: ${{{{ steps.discover.outputs.units }}}}
                order: alphabetical
                concurrency: 1
                run: echo ${{{{ steps.build.outputs.out }}}} >> {log}
        """,
        jobs=4,
    )
    assert state.status is Status.SUCCEEDED
    assert lines(log) == ["a.bin", "b.bin", "c.bin"]
    assert [j.key for j in state.steps["build"].jobs] == ["c", "a", "b"]


def test_failed_step_skips_dependents_and_stops_the_pipeline(tmp_path: Path) -> None:
    text = """
        pipelines:
          p:
            steps:
              build:
                for_each: [good, bad]
                run: 'echo compiling ${{ item }}; test ${{ item }} = good || { echo "bad.c:1: error" >&2; exit 2; }'
              test:
                needs: [build]
                run: echo test
              slow:
                run: sleep 0.5
              after-slow:
                needs: [slow]
                run: echo later
        """
    state = run(text, jobs=4)
    assert state.status is Status.FAILED
    assert statuses(state) == {
        "build[good]": "succeeded",
        "build[bad]": "failed",
        "slow": "succeeded",
    }
    bad = state.steps["build"].jobs[1]
    assert bad.reason == "exit code 2" and "bad.c:1: error" in bad.tail
    assert state.steps["test"].reason == "needs build, which failed"
    assert state.steps["after-slow"].reason == "not started: build[bad] failed"

    kept = run(text, jobs=4, keep_going=True)
    assert statuses(kept)["after-slow"] == "succeeded"
    assert kept.steps["test"].status is Status.SKIPPED


def test_graph_items_run_in_dependency_order_and_skip_downstream(tmp_path: Path) -> None:
    log = tmp_path / "built"
    state = run(
        f"""
        pipelines:
          ports:
            steps:
              build:
                graph: true
                for_each:
                  - {{name: app, needs: [libnet, broken]}}
                  - {{name: libnet, needs: [libz]}}
                  - {{name: libz}}
                  - {{name: broken, needs: [libz]}}
                  - {{name: cli, needs: [app]}}
                  - {{name: orphan, needs: [nowhere]}}
                run: 'test ${{{{ item.name }}}} != broken && echo ${{{{ item.name }}}} >> {log}'
        """,
        keep_going=True,
    )
    assert lines(log) == ["libz", "libnet"]
    assert reasons(state) == {
        "build[app]": "needs build[broken], which failed",
        "build[broken]": "exit code 1",
        "build[cli]": "needs build[app], which skipped",
        "build[orphan]": "needs unknown item 'nowhere'",
    }


def test_item_cycle_is_skipped_not_hung() -> None:
    state = run(
        """
        pipelines:
          p:
            steps:
              s:
                graph: true
                for_each: [{name: a, needs: [b]}, {name: b, needs: [a]}, {name: c}]
                run: 'true'
        """
    )
    assert statuses(state) == {"s[a]": "skipped", "s[b]": "skipped", "s[c]": "succeeded"}
    assert state.steps["s"].jobs[0].reason == "its dependencies form a cycle"


def test_continue_on_error_and_if_conditions() -> None:
    state = run(
        """
        pipelines:
          p:
            steps:
              flaky:
                run: exit 3
                continue_on_error: true
              next:
                needs: [flaky]
                run: echo "outcome=${{ steps.flaky.outcome }}" >> "$STOCKADE_OUTPUT"
              broken:
                run: exit 1
              cleanup:
                needs: [broken]
                if: failure()
                run: 'true'
              report:
                needs: [broken]
                run: 'true'
              never:
                needs: [next]
                if: steps.next.outputs.outcome == 'succeeded'
                run: 'true'
        """,
        keep_going=True,
    )
    assert statuses(state)["next"] == "succeeded"
    assert state.steps["next"].jobs[0].outputs["outcome"] == "failed"
    assert statuses(state)["cleanup"] == "succeeded"
    assert state.steps["report"].reason == "needs broken, which failed"
    assert state.steps["never"].reason == "if: steps.next.outputs.outcome == 'succeeded' is false"
    assert state.status is Status.FAILED


def test_only_runs_the_step_and_what_it_needs() -> None:
    recorder = Recorder()
    run(
        """
        pipelines:
          p:
            steps:
              a: {run: 'true'}
              b: {run: 'true', needs: [a]}
              c: {run: 'true'}
        """,
        only=["b"],
        recorder=recorder,
    )
    assert recorder.started() == ["a", "b"]


def test_retries_by_the_task_policy(tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    state = run(
        f"""
        tasks:
          flaky:
            run: 'test -f {marker} || {{ touch {marker}; exit 75; }}'
            backoff: {{initial: 0s}}
        pipelines:
          p:
            steps:
              s: {{task: flaky}}
        """
    )
    job = state.steps["s"].jobs[0]
    assert (job.status, job.attempts) == (Status.SUCCEEDED, 2)


def test_mock_sandbox_slots_are_set_up_once_and_cleaned_up() -> None:
    state = run(
        """
        tasks:
          t: {run: 'true', sandbox: mock}
        pipelines:
          p:
            steps:
              s: {task: t, for_each: [1, 2, 3, 4]}
        """,
        jobs=2,
    )
    assert statuses(state) == {f"s[{i}]": "succeeded" for i in range(1, 5)}


def test_cancel_stops_every_running_job(tmp_path: Path) -> None:
    pids = tmp_path / "pids"

    async def cancel_soon(scheduler: Scheduler) -> None:
        for _ in range(100):
            if len(lines(pids)) == 2:
                break
            await asyncio.sleep(0.05)
        scheduler.cancel()

    started = time.monotonic()
    state = run(
        f"""
        pipelines:
          p:
            steps:
              sleepers:
                for_each: [a, b]
                run: 'sh -c "echo \\$\\$ >> {pids}; exec sleep 30"'
              after:
                needs: [sleepers]
                run: 'true'
        """,
        jobs=2,
        during=cancel_soon,
    )
    assert time.monotonic() - started < 10
    assert state.status is Status.CANCELLED
    assert statuses(state) == {"sleepers[a]": "cancelled", "sleepers[b]": "cancelled"}
    assert state.steps["after"].reason == "needs sleepers, which cancelled"
    for pid in lines(pids):
        assert not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_test2json_events_become_tests(tmp_path: Path) -> None:
    events = [
        '{"Action":"run","Package":"ex/a","Test":"TestOK"}',
        '{"Action":"pass","Package":"ex/a","Test":"TestOK","Elapsed":0.01}',
        '{"Action":"run","Package":"ex/a","Test":"TestBad"}',
        '{"Action":"output","Package":"ex/a","Test":"TestBad","Output":"a_test.go:9: want 2\\n"}',
        '{"Action":"fail","Package":"ex/a","Test":"TestBad","Elapsed":0.02}',
        '{"Action":"fail","Package":"ex/a","Elapsed":0.03}',
    ]
    stream = tmp_path / "events.jsonl"
    stream.write_text("\n".join(events) + "\n")
    recorder = Recorder()
    state = run(
        f"""
        pipelines:
          p:
            steps:
              test:
                events: test2json
                run: cat {stream}; exit 1
        """,
        recorder=recorder,
    )
    job = state.steps["test"].jobs[0]
    assert [(t.name, t.status) for t in job.tests] == [("TestOK", "passed"), ("TestBad", "failed")]
    assert job.tests[1].output == ["a_test.go:9: want 2\n"]
    assert [d["test"] for kind, _, d in recorder.events if kind == "test"] == [
        "TestOK",
        "TestBad",
        "",
    ]
    assert not [d for kind, _, d in recorder.events if kind == "job_output"]


def test_a_steps_concurrency_wins_over_the_default_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``concurrency: N`` on a step, N over the CPU count: N jobs run at once
    (each waits until all N have started, so a cap would fail them)."""
    from stockade.pipeline.scheduler import cpu_count

    monkeypatch.chdir(tmp_path)
    wanted = cpu_count() + 1
    items = ", ".join(f"j{n}" for n in range(wanted))
    state = run(
        f"""
        pipelines:
          p:
            steps:
              s:
                for_each: [{items}]
                concurrency: {wanted}
                run: >-
                  touch "started-${{{{ item }}}}";
                  for i in $(seq 200); do
                  [ "$(ls started-* | wc -l)" -ge {wanted} ] && exit 0; sleep 0.05; done; exit 1
        """
    )
    assert set(statuses(state).values()) == {"succeeded"}


def test_a_step_over_the_pipelines_explicit_total_is_a_config_error() -> None:
    from stockade.config import ConfigValidationError

    with pytest.raises(ConfigValidationError, match="step 'b' has concurrency 3, over the pipe"):
        run(
            """
            pipelines:
              p:
                concurrency: 2
                steps:
                  b: {run: "true", concurrency: 3}
            """
        )
