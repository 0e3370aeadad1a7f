"""``stockade rerun --failed-tests`` and ``rerun RUN 'STEP/ITEM::TEST'``:
run only some tests again, with what was built in the source run.

The jobs of the steps with ``events`` whose tests failed run again; every
other job's recorded success is reused (the builds, the discovery, the
packages that passed), so the test binaries are the ones already built.
Each job that runs again sees its failed tests as ``${{ rerun.tests }}``
(``go_test_run(rerun.tests)`` makes ``go test``'s ``-run`` pattern of them).

Running only the failed tests is sound only if every test ran in the source
run: a job that panicked, timed out, was killed or never started hid the
tests after it, so such a run is refused (:class:`IncompleteRun`) and
``rerun --failed`` (the whole job again) is the way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stockade.engine.runs import RunOptions, job_name, reuse_for
from stockade.errors import IncompleteRun, UsageError
from stockade.pipeline.model import Reuse
from stockade.reasons import Reason
from stockade.spec.pipeline import PipelineSpec
from stockade.store import JobState, Store
from stockade.store.records import JobRecord
from stockade.store.runs import RunRecord, TestRecord

__all__ = ["TestRerun", "parse_test_target", "test_rerun_plan"]

TEST_SEPARATOR = "::"
"""Between a job and a test: ``test/example.com/m/strs::TestReverse``."""


@dataclass
class TestRerun:
    """What a rerun of tests runs: the reuse, the options, what to record,
    and the tests per job name."""

    __test__ = False  # not a pytest class

    reuse: Reuse
    options: RunOptions
    record: dict[str, Any]
    tests: dict[str, list[str]]


def parse_test_target(target: str) -> tuple[str, str | None, str] | None:
    """``STEP/ITEM::TEST`` (or ``STEP::TEST`` for an unfanned step) as
    ``(step, item, test)``; ``None`` when ``target`` names no test."""
    job, sep, test = target.partition(TEST_SEPARATOR)
    if not sep:
        return None
    if not test or not job:
        raise UsageError(f"{target!r}: give STEP/ITEM::TEST (e.g. 'test/PKG::TestName')")
    step, _, item = job.partition("/")
    return step, item or None, test


def _incomplete(job: JobRecord, failed: list[TestRecord]) -> str | None:
    """Why ``job``'s tests did not all run, if they did not."""
    name = job_name(job.step or job.task, job.item)
    if job.state is JobState.SUCCEEDED:
        return None
    if job.state is not JobState.FAILED:
        return f"{name} did not run ({job.error or job.reason or job.state.value})"
    if job.reason != Reason.FAILED.value:
        return f"{name} ended with {job.reason or 'an error'} ({job.error or 'no detail'})"
    named = [test for test in failed if test.test]
    if not named:
        return f"{name} failed without a failed test (its binary stopped before reporting)"
    for test in named:
        if any(line.startswith("panic: ") for line in test.output.splitlines()):
            return f"{name}: {test.test} panicked, so the tests after it never ran"
    return None


def _unfinished_steps(source: RunRecord, names: list[str]) -> list[str]:
    """Why each of the steps ``names`` did not run to its end in ``source``
    (skipped, cancelled), if it did not."""
    out = []
    for name in names:
        summary: dict[str, Any] = source.steps.get(name) or {}
        status = summary.get("status")
        if status not in ("succeeded", "failed"):
            why = f" ({summary['reason']})" if summary.get("reason") else ""
            out.append(f"step {name} {status or 'did not run'}{why}")
    return out


def _leaves(tests: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(tests))
    return [n for n in names if not any(o.startswith(n + "/") for o in names)]


def test_rerun_plan(
    store: Store, source: RunRecord, spec: PipelineSpec, target: str | None
) -> TestRerun:
    """The rerun of ``source``'s failed tests (``target`` None) or of the one
    test ``target`` names. Raises :class:`IncompleteRun` when the source run
    did not run all its tests, :class:`UsageError` for an unknown job."""
    event_steps = [name for name, step in spec.steps.items() if step.events is not None]
    if not event_steps:
        raise UsageError(f"pipeline {source.pipeline!r} has no step with events: no tests to rerun")
    jobs = [j for j in store.runs.jobs(source.id) if (j.step or j.task) in event_steps]
    failed: dict[str, list[TestRecord]] = {}
    for test in store.runs.tests(source.id, status="failed"):
        failed.setdefault(test.job_id or "", []).append(test)
    if target is not None:
        parsed = parse_test_target(target)
        assert parsed is not None
        step, item, test_name = parsed
        if step not in event_steps:
            raise UsageError(
                f"step {step!r} has no test events (steps with tests: {', '.join(event_steps)})"
            )
        wanted = job_name(step, item)
        names = sorted(job_name(step, j.item) for j in jobs if j.step == step)
        if wanted not in names:
            have = ", ".join(names) or "none"
            raise UsageError(f"run {source.id} has no job {wanted} (its jobs of {step}: {have})")
        tests = {wanted: [test_name]}
    else:
        problems = _unfinished_steps(source, event_steps)
        problems += [p for j in jobs if (p := _incomplete(j, failed.get(j.id, [])))]
        if problems:
            raise IncompleteRun(
                f"run {source.id} is incomplete, some tests never ran: {problems[0]}"
                f"{f' (and {len(problems) - 1} more)' if len(problems) > 1 else ''}; "
                "`stockade rerun --failed` runs those jobs whole"
            )
        tests = {
            job_name(j.step or j.task, j.item): _leaves(t.test for t in failed[j.id] if t.test)
            for j in jobs
            if j.state is JobState.FAILED
        }
        if not tests:
            raise UsageError(f"run {source.id} has no failed test to rerun")
    reuse = reuse_for(store, source, rerun=set(tests), strict=False)
    reuse.targets = set(tests)
    options = RunOptions.from_dict(source.options)
    steps = tuple(dict.fromkeys(name.partition("[")[0] for name in tests))
    record: dict[str, Any] = {"failed_tests": True} if target is None else {"test": target}
    return TestRerun(reuse, dataclasses.replace(options, only=steps), record, tests)
