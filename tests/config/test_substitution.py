"""``${VAR}`` substitution: values, defaults, escapes, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.config import load
from stockade.config.substitute import substitute
from tests.config.helpers import problems, write


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("x-${A}-y", "x-1-y"),
        ("${A}${A}", "11"),
        ("${UNSET:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${A:-fallback}", "1"),
        ("${UNSET:-}", ""),
        ("${EMPTY}", ""),
        ("$${A}", "${A}"),
        ("$${UNSET} and ${A}", "${UNSET} and 1"),
        ("$A and $HOME", "$A and $HOME"),
        ("${UNSET:-a b:c}", "a b:c"),
        ("no dollars", "no dollars"),
    ],
)
def test_substitute(text: str, expected: str) -> None:
    assert substitute(text, {"A": "1", "EMPTY": ""}) == (expected, [])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("${UNSET}", "environment variable UNSET is not set"),
        ("${1BAD}", "cannot substitute ${1BAD}"),
        ("${A-x}", "cannot substitute"),
        ("abc ${", "unclosed"),
    ],
)
def test_substitute_errors(text: str, words: str) -> None:
    result, errors = substitute(text, {"A": "1"})
    assert result == text  # left as written
    assert len(errors) == 1
    assert words in errors[0]


def test_every_problem_in_a_string_is_reported() -> None:
    _, errors = substitute("${X} ${Y}", {})
    assert [e.split(" is not set")[0] for e in errors] == [
        "environment variable X",
        "environment variable Y",
    ]


def test_substitution_in_a_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        defaults:
          timeout: ${TIMEOUT:-30s}
        tasks:
          deploy:
            run: 'deploy --to "${TARGET}" --home "$${HOME}"'
            priority: ${PRIORITY:-5}
            env:
              REGION: ${REGION:-eu-west-1}
        secrets:
          API_TOKEN:
            env: ${TOKEN_VAR:-API_TOKEN}
        """,
    )
    config = load(path, env={"TARGET": "prod", "TOKEN_VAR": "CI_TOKEN", "TIMEOUT": "1m"})
    task = config.tasks["deploy"]
    assert task.run == 'deploy --to "prod" --home "${HOME}"'
    assert task.priority == 5
    assert task.timeout == 60.0
    assert task.env == {"REGION": "eu-west-1"}
    assert config.secrets["API_TOKEN"].env == "CI_TOKEN"


def test_unset_variable_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        tasks:
          deploy:
            run: deploy --to ${TARGET}
            timeout: ${DEPLOY_TIMEOUT}
            env:
              A: "${A_VALUE} and ${B_VALUE}"
        """,
    )
    found = problems(path)
    assert [(p.line, p.path) for p in found] == [
        (3, "tasks.deploy.run"),
        (4, "tasks.deploy.timeout"),  # reported once: no second "bad duration" error
        (6, "tasks.deploy.env.A"),
        (6, "tasks.deploy.env.A"),
    ]
    assert str(found[0]).startswith(f"{path}:3: tasks.deploy.run: environment variable TARGET")
    assert "${TARGET:-default}" in found[0].message
    assert "B_VALUE" in found[3].message


def test_line_inside_a_literal_block(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        tasks:
          a:
            run: |
              echo one
              echo two
              echo ${MISSING}
        """,
    )
    (problem,) = problems(path)
    assert (problem.line, problem.path) == (6, "tasks.a.run")


def test_values_from_the_environment_are_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "tasks:\n  a:\n    run: x\n    max_attempts: ${ATTEMPTS}\n")
    (problem,) = problems(path, env={"ATTEMPTS": "s3cr3t-value"})
    assert problem.path == "tasks.a.max_attempts"
    assert "expected an integer" in problem.message
    assert "s3cr3t-value" not in str(problem)


def test_substitution_only_touches_values(tmp_path: Path) -> None:
    path = write(tmp_path, "tasks:\n  a:\n    run: x\n    env:\n      ${KEY}: v\n")
    (problem,) = problems(path, env={"KEY": "B"})
    assert "not a valid environment variable name" in problem.message
