"""The plain log written without rich is, byte for byte, what rich writes.

:class:`~stockade.ui.plaintext.PlainConsole` writes the lines and the
summary table itself when it can and hands rich the rest. Here many
generated run states (short and long names, markup and ``:emoji:``-like
text, wide characters, skipped, cached and failed steps, tests, warnings,
log tails; narrow and wide consoles) are ended through both, and every
plain-log line is printed through both: the outputs must be equal.
"""

from __future__ import annotations

import io
import random
import textwrap

import pytest
from rich.console import Console

from stockade.config import loads
from stockade.pipeline.model import Job, RunState, Status, StepState
from stockade.pipeline.test2json import TestCase
from stockade.runplan.compile import compile_config
from stockade.runplan.model import RunPlan
from stockade.ui.observers import PlainObserver, finish
from stockade.ui.plaintext import PlainConsole

STEPS = ["a", "build", "test-everything-in-the-repository", "x.y", "deploy_to_production_now"]
TEXTS = [
    "", "ok", "exit code 1", "needs build, which failed", "[bold]not markup[/bold]",
    "a :smile: face", "ratio 3:4:5", "naïve café", "漢字のテスト", "tab\there",
    "a very long reason " * 8, "trailing space ", "back\\slash", "✗ │ …",
]  # fmt: skip

_STEPS_YAML = "".join(f"      {name}: {{run: 'true'}}\n" for name in STEPS)


def _steps() -> dict[str, StepState]:
    config = loads(
        textwrap.dedent("version: 1\npipelines:\n  p:\n    steps:\n") + _STEPS_YAML, env={}
    )
    plan = RunPlan(compile_config(config))
    return {n: StepState(n, s) for n, s in plan.pipelines["p"].steps.items()}


#: Texts the plain console writes itself (where they fit).
PLAIN_TEXTS = ["", "ok", "exit code 1", "needs build, which failed", "✗ │ …"]


def _run(rng: random.Random, texts: list[str] = TEXTS) -> RunState:
    steps = _steps()
    pipeline = rng.choice(["p", "ci", "a-rather-long-pipeline-name-for-the-title-to-wrap" * 2])
    run = RunState(pipeline, "r1", steps, started=1000.0)
    run.finished = 1000.0 + rng.choice([0.04, 3.5, 75.0, 4000.0])
    run.status = rng.choice([Status.SUCCEEDED, Status.FAILED, Status.CANCELLED])
    for name, step in steps.items():
        step.expanded = True
        step.status = rng.choice(list(Status))
        step.reason = rng.choice(texts) or None
        for index in range(rng.randint(0, 3)):
            key = rng.choice([None, "k", rng.choice(texts)]) if index == 0 else f"i{index}"
            job = Job(name, key, None, index)
            job.status = rng.choice([Status.SUCCEEDED, Status.FAILED, Status.SKIPPED])
            job.reason = rng.choice(texts) or None
            job.started, job.finished = 1000.0, 1000.0 + rng.random() * 90
            job.attempts = rng.randint(1, 3)
            if rng.random() < 0.2:
                job.from_cache = rng.random() < 0.5
                job.cached_from = None if job.from_cache else "r0"
            if rng.random() < 0.5:
                job.log_path = rng.choice(["/d/logs/x.jsonl", "/data/" + "deep/" * 20 + "x.jsonl"])
            job.tail.extend(rng.choice(texts) for _ in range(rng.randint(0, 4)))
            if rng.random() < 0.3:
                case = TestCase("pkg", rng.choice(["", "TestA"]), rng.choice(["passed", "failed"]))
                case.output = [rng.choice(texts), "=== RUN TestA"]
                job.tests.append(case)
            step.jobs.append(job)
    run.warnings = [rng.choice(texts) for _ in range(rng.randint(0, 2))]
    return run


def _rich(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, force_terminal=False, highlight=False), out


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("seed", range(60))
def test_the_end_of_a_run_is_written_as_rich_writes_it(seed: int, plain: bool) -> None:
    rng = random.Random(seed)
    width = rng.randint(30, 200)
    run = _run(rng, PLAIN_TEXTS if plain else TEXTS)
    expected_console, expected = _rich(width)
    finish(expected_console, run)
    got = io.StringIO()
    finish(PlainConsole(file=got, width=width), run)
    assert got.getvalue() == expected.getvalue()


@pytest.mark.parametrize("seed", range(20))
def test_the_plain_log_lines_are_written_as_rich_writes_them(seed: int) -> None:
    rng = random.Random(seed)
    width = rng.choice([40, 80, 120])
    run = _run(rng)
    expected_console, expected = _rich(width)
    got = io.StringIO()
    views = [PlainObserver(expected_console), PlainObserver(PlainConsole(file=got, width=width))]
    for job in run.jobs():
        outcome = rng.choice(TEXTS)
        for view in views:
            view.event("job_start", run, job, {})
            view.event("job_retry", run, job, {"attempt": 1, "outcome": outcome})
            view.event("job_finish", run, job, {})
    assert got.getvalue() == expected.getvalue()
