"""Pipelines in ``stockade.yaml``: models, and every problem with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.config import load
from stockade.errors import UsageError
from stockade.spec import Config, TaskSpec
from tests.config.helpers import located, problems, write

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipelines" / "stockade.yaml"


def test_example_loads() -> None:
    config = load(EXAMPLE, env={})
    name, ci = config.pipeline(None)
    assert name == "ci"
    assert list(ci.steps) == ["discover", "build", "test", "report"]
    test = ci.steps["test"]
    assert (test.needs_each, test.order, test.concurrency) == (["build"], "alphabetical", 1)
    assert ci.steps["report"].if_ == "success()"
    assert isinstance(ci.steps["discover"].task, TaskSpec)
    assert config.pipeline("ports")[1].steps["build"].graph


def test_expressions_survive_variable_substitution(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        pipelines:
          p:
            steps:
              a:
                run: echo ${{ item }} ${HOME_DIR:-/h}
                for_each: [x]
        """,
    )
    step = load(path, env={}).pipelines["p"].steps["a"]
    assert step.run == "echo ${{ item }} /h"


def test_every_problem_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        tasks:
          compile:
            run: make
        pipelines:
          ci:
            steps:
              build:
                task: compil
                needs: [discover]
              test:
                run: echo ${{ steps.build.outputs.x }}
                concurrency: 0
                order: random
              lint:
                if: steps.test.outcome ==
                run: echo
                task: compile
              loop-a:
                run: echo
                needs: [loop-b]
              loop-b:
                run: echo
                needs: [loop-a]
              empty: {}
              bogus:
                run: echo
                fan_out: [1]
        """,
    )
    found = located(path)
    assert (9, "pipelines.ci.steps.build.task") in found
    assert (10, "pipelines.ci.steps.build.needs[0]") in found
    assert (12, "pipelines.ci.steps.test.run") in found
    assert (13, "pipelines.ci.steps.test.concurrency") in found
    assert (14, "pipelines.ci.steps.test.order") in found
    assert (16, "pipelines.ci.steps.lint.if") in found
    assert (15, "pipelines.ci.steps.lint") in found
    assert (19, "pipelines.ci.steps.loop-a") in found
    assert (25, "pipelines.ci.steps.empty") in found
    assert (28, "pipelines.ci.steps.bogus.fan_out") in found
    messages = {p.path: p.message for p in problems(path)}
    assert "did you mean 'compile'" in messages["pipelines.ci.steps.build.task"]
    assert "not in needs" in messages["pipelines.ci.steps.test.run"]
    assert "cycle: loop-a -> loop-b -> loop-a" in messages["pipelines.ci.steps.loop-a"]
    assert "bad expression" in messages["pipelines.ci.steps.lint.if"]


def test_inline_task_is_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        pipelines:
          p:
            steps:
              a:
                task:
                  timeout: 5s
                  output_path: x.json
        """,
    )
    found = located(path)
    assert (5, "pipelines.p.steps.a.task") in found
    assert (7, "pipelines.p.steps.a.task.output_path") in found


def test_python_users_get_the_same_checks() -> None:
    with pytest.raises(ValueError, match="unknown step 'b'"):
        Config.model_validate({"pipelines": {"p": {"steps": {"a": {"run": "x", "needs": ["b"]}}}}})


def test_pipeline_lookup() -> None:
    config = Config.model_validate({"pipelines": {"first": {"steps": {"a": {"run": "x"}}}}})
    assert config.pipeline(None)[0] == "first"
    with pytest.raises(UsageError, match="did you mean 'first'"):
        config.pipeline("frist")
    with pytest.raises(UsageError, match="no pipelines defined"):
        Config().pipeline(None)


def test_events_forms(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        pipelines:
          p:
            steps:
              go:
                run: go test -json ./...
                events: test2json
              py:
                run: pytest --junitxml=out/report.xml
                events: {format: junit, path: out/report.xml}
        """,
    )
    steps = load(path, env={}).pipelines["p"].steps
    assert steps["go"].events is not None and steps["go"].events.format == "test2json"
    assert steps["py"].events is not None
    assert (steps["py"].events.format, steps["py"].events.path) == ("junit", "out/report.xml")
    assert steps["go"].events.path is None


def test_events_problems_with_their_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        pipelines:
          p:
            steps:
              bare:
                run: x
                events: junit
              up:
                run: x
                events: {format: junit, path: ../report.xml}
              absolute:
                run: x
                events:
                  format: junit
                  path: /tmp/report.xml
              stdout:
                run: x
                events: {format: test2json, path: r.xml}
              other:
                run: x
                events: tap
        """,
    )
    found = problems(path)
    where = {(p.line, p.path): p.message for p in found}
    assert "needs the report's path" in where[(6, "pipelines.p.steps.bare.events")]
    assert "escapes the workspace" in where[(9, "pipelines.p.steps.up.events.path")]
    assert "is absolute" in where[(14, "pipelines.p.steps.absolute.events.path")]
    assert "leave path out" in where[(17, "pipelines.p.steps.stdout.events")]
    assert (20, "pipelines.p.steps.other.events.format") in where
