"""Pure parts of routing and of the job commands' small words: no store, no
process (the end-to-end tests are test_routing_cli and test_routing_api)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stockade.cli.jobtext import task_label
from stockade.engine.counters import Counters
from stockade.engine.jobspec import adhoc_task, new_job
from stockade.errors import InputError
from stockade.runner.inputs import check_input
from stockade.spec import TaskSpec
from stockade.spec.routing import parse_label, parse_queues


def test_a_task_names_its_queue_and_labels_and_the_job_carries_them() -> None:
    task = TaskSpec.model_validate(
        {"run": "true", "queue": "gpu", "requires": {"labels": {"gpu": 1, "zone": "eu-1"}}}
    )
    job = new_job("render", task)
    assert (job.queue, job.labels) == ("gpu", {"gpu": "1", "zone": "eu-1"})
    assert "queue" not in job.spec["task"]  # a column, not in the frozen task older workers read
    assert (new_job("x", adhoc_task(shell="true")).queue, new_job("x", task).sandbox) == (
        "default",
        None,
    )
    for bad in ({"queue": "a b"}, {"requires": {"labels": {"gpu": "a b"}}}, {"requires": {"x": 1}}):
        with pytest.raises(ValidationError):
            TaskSpec.model_validate({"run": "true", **bad})


def test_labels_and_queues_on_the_command_line() -> None:
    assert parse_label("gpu=1", "--label") == ("gpu", "1")
    assert parse_label("empty=", "--label") == ("empty", "")
    assert parse_queues("gpu, cpu,gpu", "--queue") == ("gpu", "cpu")
    with pytest.raises(ValueError, match="write it as NAME=VALUE"):
        parse_label("gpu", "--label")
    with pytest.raises(ValueError, match="not a valid label value"):
        parse_label("gpu=a b", "--label")
    with pytest.raises(ValueError, match="at least one queue"):
        parse_queues(" , ", "--queue")


def test_input_a_task_cannot_take_is_refused_before_it_runs() -> None:
    check_input("env", {"name": "ann", "n": 1})
    check_input("env", None)
    check_input("json_stdin", 5)  # any JSON goes to stdin
    for fmt, value in [("env", 5), ("args", ["a"]), ("env", {"x": "a\0b"})]:
        with pytest.raises(InputError):
            check_input(fmt, value)


def test_the_stop_summary_is_a_sentence() -> None:
    counters = Counters()
    assert counters.summary() == "no jobs"
    counters.count("claimed", 3)
    counters.count("succeeded", 2)
    counters.count("timed_out")
    assert counters.summary() == "3 claimed: 2 succeeded, 1 timed out"
    counters = Counters()
    counters.count("lost", 2)
    assert counters.summary() == "2 lost"


def test_an_adhoc_job_is_listed_by_what_it_runs() -> None:
    argv = new_job("exec", adhoc_task(argv=["printf", "%s\n", "a b"])).spec
    assert task_label("exec", argv) == "exec: printf '%s ' 'a b'"  # on one line
    shell = new_job("exec", adhoc_task(shell="echo " + "x" * 80)).spec
    assert task_label("exec", shell) == "exec: echo " + "x" * 42 + "…"
    assert task_label("build", argv) == "build"
