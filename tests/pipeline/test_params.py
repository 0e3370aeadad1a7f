"""Pipeline params (``--set NAME=VALUE``) and the ``go_test_run`` pattern
``rerun --failed-tests`` hands to Go test binaries: pure functions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from stockade.pipeline.expr import FUNCTIONS, render
from stockade.spec.params import ParamSpec, resolve_params
from tests.config.helpers import located, problems, write

DECLARED = {
    "run": ParamSpec(default=""),
    "short": ParamSpec(type="bool", default=False),
    "count": ParamSpec(type="int", default=1),
    "target": ParamSpec(),  # no default: required
}


def test_values_are_typed_over_the_defaults() -> None:
    got = resolve_params(DECLARED, ["target=x", "short=yes", "count=3", "run=^A$|B"], "p")
    assert got == {"run": "^A$|B", "short": True, "count": 3, "target": "x"}
    assert resolve_params(DECLARED, ["target=a=b"], "p")["target"] == "a=b"  # first = splits
    assert resolve_params(DECLARED, ["target=; rm -rf /"], "p")["target"] == "; rm -rf /"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["nope=1", "target=x"], "--set nope: pipeline 'p' has no param 'nope' (params: run, "),
        (["short=maybe", "target=x"], "--set short: 'maybe' is not a bool (true or false)"),
        (["count=2.5", "target=x"], "--set count: '2.5' is not an int"),
        (["target"], "--set 'target': give NAME=VALUE"),
        ([], "pipeline 'p' needs --set target=VALUE (no default)"),
    ],
)
def test_bad_values_are_one_line_errors(given: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        resolve_params(DECLARED, given, "p")
    assert "\n" not in str(caught.value)


def test_a_default_of_the_wrong_type_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="is not an int"):
        ParamSpec(type="int", default="many")


go_test_run = FUNCTIONS["go_test_run"]


@pytest.mark.parametrize(
    ("tests", "pattern"),
    [
        (["TestA"], "^TestA$"),
        (["TestA", "TestB"], "^(TestA|TestB)$"),
        # a parent is left to its failed subtests (running them runs its body)
        (["TestA", "TestA/sub", "TestB"], "^TestB$|^TestA$/^sub$"),
        (["TestT/a/b"], "^TestT$/^a$/^b$"),
        (["TestX/1+1=2", "TestX/a.b(c)"], r"^TestX$/^1\+1=2$|^TestX$/^a\.b\(c\)$"),
        ([], ""),
        (None, ""),
    ],
)
def test_go_test_run_anchors_each_level(tests: list[str] | None, pattern: str) -> None:
    assert go_test_run(tests) == pattern


def test_params_and_rerun_tests_in_an_expression() -> None:
    context = {"params": {"run": "TestZ"}, "rerun": {"tests": []}}
    assert render("${{ go_test_run(rerun.tests) || params.run }}", context) == "TestZ"
    context["rerun"] = {"tests": ["TestY"]}
    assert render("${{ go_test_run(rerun.tests) || params.run }}", context) == "^TestY$"


def test_an_undeclared_param_is_a_config_problem_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        pipelines:
          p:
            params:
              run: {default: ""}
            steps:
              go:
                env: {RUN: "${{ params.run }}", X: "${{ params.nope }}"}
                run: go test ./...
        """,
    )
    assert located(path, env={}) == [(7, "pipelines.p.steps.go.env.X")]
    (problem,) = problems(path, env={})
    assert "unknown param 'nope' (params: run)" in str(problem)
