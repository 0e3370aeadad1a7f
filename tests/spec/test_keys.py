"""A task's ``concurrency:`` and ``unique:`` keys: validation and their values for an input."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from stockade.engine.jobspec import new_job
from stockade.errors import InputError
from stockade.spec import TaskSpec
from stockade.spec.keys import key_value


def _task(**keys: object) -> TaskSpec:
    return TaskSpec.model_validate({"run": "true", **keys})


def test_a_key_is_evaluated_over_the_input() -> None:
    assert key_value("deploy-${{ input.env }}", {"env": "prod"}, "concurrency") == "deploy-prod"
    assert key_value("k-${{ input.n }}-${{ input.tags[0] }}", {"n": 3, "tags": ["a"]}, "x") == (
        "k-3-a"
    )
    assert key_value("nightly", None, "unique") == "nightly"


@pytest.mark.parametrize(
    ("template", "value", "message"),
    [
        ("${{ input.env }}", {}, "unique key '${{ input.env }}' is empty for this input"),
        ("${{ input.s }}", {"s": "x" * 201}, "unique key is 201 characters; at most 200"),
        ("${{ inputs.env }}", {}, "unknown name 'inputs'"),
    ],
)
def test_a_key_the_input_cannot_give_is_an_input_error(
    template: str, value: object, message: str
) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        key_value(template, value, "unique")


def test_keys_are_checked_when_the_config_is_read() -> None:
    with pytest.raises(ValidationError, match="key is empty"):
        _task(concurrency={"key": " "})
    with pytest.raises(ValidationError, match=re.escape("key 'a-${{ input. }}'")):
        _task(unique={"key": "a-${{ input. }}"})
    with pytest.raises(ValidationError):
        _task(concurrency={"key": "k", "limit": 0})
    with pytest.raises(ValidationError):
        _task(unique={"key": "k", "while": "finished"})


def test_a_job_carries_its_keys_and_its_frozen_task_does_not() -> None:
    task = _task(
        concurrency={"key": "deploy-${{ input.env }}", "limit": 2, "cancel_in_progress": True},
        unique={"key": "u-${{ input.env }}", "while": "running"},
    )
    job = new_job("deploy", task, input={"env": "prod"})
    assert (job.concurrency_key, job.concurrency_limit, job.cancel_in_progress) == (
        "deploy-prod", 2, True,
    )  # fmt: skip
    assert (job.unique_key, job.unique_while) == ("u-prod", "running")
    assert "concurrency" not in job.spec["task"] and "unique" not in job.spec["task"]
    assert new_job("plain", _task()).gated is False
