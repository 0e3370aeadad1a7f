"""Ad-hoc jobs made without pydantic (``stockade.engine.adhoc``): the template
is what the task model makes today, and the job it gives is stored exactly as
the model's job is, for every option ``stockade submit -- CMD`` takes; bad
options get the model path's one-line errors."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from stockade import tracing
from stockade.cli.submit_cmd import routed
from stockade.engine.adhoc import INPUT_FORMAT, Adhoc, adhoc_job
from stockade.engine.adhocgen import TEMPLATE_PATH, render
from stockade.engine.jobspec import adhoc_task, new_job
from stockade.store import NewJob, open_store
from stockade.store.jobinsert import job_rows, job_values
from tests.engine.test_cli_jobs import _run

#: Options of submit, as the builders take them (``None``: not given).
CASES: dict[str, dict[str, Any]] = {
    "bare": {},
    "queue": {"queue": "gpu"},
    "require": {"labels": {"gpu": "1", "os": "linux:6"}},
    "max-attempts": {"max_attempts": 7},
    "priority": {"priority": -5},
    "delay": {"delay": 90.5},
    "input": {"input": {"n": 1, "name": "ann", "deep": {"x": [1, 2.5, None]}}},
    "all": {"queue": "q.1", "labels": {"a": "b"}, "max_attempts": 2, "priority": 9,
            "delay": 3.0, "input": {"k": "v\u00e9"}},
}  # fmt: skip
COMMANDS = {
    "argv": Adhoc(["echo", "hi there", "\u00e9\udcff", "$X"], None, "/tmp/some dir"),
    "shell": Adhoc(None, "echo $INPUT_N | tr a b", "/"),
}


def _model(adhoc: Adhoc, opts: dict[str, Any]) -> NewJob:
    """The job submit's model path makes (``adhoc_task``, ``routed``, ``new_job``)."""
    argv = None if adhoc.argv is None else list(adhoc.argv)
    task = adhoc_task(argv=argv, shell=adhoc.shell, workdir=adhoc.workdir)
    if opts.get("max_attempts"):
        task = task.model_copy(update={"max_attempts": opts["max_attempts"]})
    task = routed(task, opts.get("queue"), opts.get("labels", {}))
    return new_job(
        "exec", task, input=opts.get("input"), priority=opts.get("priority"),
        delay=opts.get("delay", 0.0),
    )  # fmt: skip


def _stored(job: NewJob) -> list[Any]:
    """The driver's values of ``job``'s row, as the SQLite writers insert them."""
    (values,) = job_values(job_rows([(job, "id")], 1000.0, 0.0))
    return values


def test_the_template_is_what_the_model_makes_now() -> None:
    assert TEMPLATE_PATH.read_text(encoding="utf-8") == render(), (
        "run python -m stockade.engine.adhocgen"
    )
    assert adhoc_task(argv=["x"]).input_format == INPUT_FORMAT


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CASES)
def test_the_job_is_stored_as_the_models_job(command: str, case: str) -> None:
    adhoc, opts = COMMANDS[command], CASES[case]
    assert _stored(adhoc_job(adhoc, **opts)) == _stored(_model(adhoc, opts))


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    """Spans recorded (the SDK's provider), so a submit inside a trace keeps it."""
    made = TracerProvider()
    tracing.use_provider(made)
    yield made
    tracing.use_provider(None)
    made.shutdown()


def test_a_job_made_inside_a_trace_keeps_it_as_the_models_does(provider: TracerProvider) -> None:
    adhoc = COMMANDS["argv"]
    parent = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    with tracing.span("stockade.submit", parent, {}):
        fast, model = adhoc_job(adhoc), _model(adhoc, {})
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in fast.spec["trace"]["traceparent"]
    assert _stored(fast) == _stored(model)


def test_only_what_the_model_takes_as_given_fits() -> None:
    assert Adhoc(["true"], None, "/").fits()
    assert Adhoc(None, "true", "/").fits()
    for odd in (Adhoc(None, " \t", "/"), Adhoc([], None, "/"), Adhoc(["a"], "b", "/")):
        assert not odd.fits()
        with pytest.raises(ValueError, match="use the task model"):
            adhoc_job(odd)


#: Columns that differ between two submits of the same job.
_OWN = {"id", "created_at", "updated_at", "run_after"}


def _rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(row) for row in conn.execute("SELECT * FROM jobs ORDER BY created_at")]
    conn.close()
    return [{k: v for k, v in row.items() if k not in _OWN} for row in rows]


SUBMIT = [
    "submit", "--queue", "gpu", "--require", "gpu=1", "--require", "os=linux",
    "--max-attempts", "5", "--priority", "7", "--delay", "1h", "--count", "2",
    "--input", '{"n": 1, "s": "\u00e9"}', "--", "echo", "hi there",
]  # fmt: skip


def test_submit_writes_the_same_rows_with_and_without_the_model(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI on SQLite: the rows of ``submit`` (the fast path) and of
    ``STOCKADE_LITE=0`` (the model path and the full store) are byte for byte
    the same, but for each row's id and times; ``--shell`` likewise."""
    open_store(sqlite_url).close()
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    shell = ["submit", "--cwd", str(tmp_path), "--shell", "echo $INPUT_N"]
    for args in (SUBMIT, shell):
        monkeypatch.delenv("STOCKADE_LITE", raising=False)
        fast = _run(*args, url=sqlite_url, cwd=tmp_path)
        monkeypatch.setenv("STOCKADE_LITE", "0")
        model = _run(*args, url=sqlite_url, cwd=tmp_path)
        assert fast.returncode == model.returncode == 0, fast.stderr + model.stderr
    rows = _rows(db)
    assert len(rows) == 6
    assert rows[0] == rows[1] == rows[2] == rows[3]
    assert rows[4] == rows[5]
    assert json.loads(rows[0]["spec"])["task"]["workdir"] == str(tmp_path)


def test_the_model_path_stores_the_same_job_on_postgresql(
    pg_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    """PostgreSQL takes the model path: the job it stores is the SQLite fast
    path's job."""
    open_store(sqlite_url).close()
    assert _run(*SUBMIT, url=sqlite_url, cwd=tmp_path).returncode == 0
    done = _run(*SUBMIT, url=pg_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lite, pg = open_store(sqlite_url), open_store(pg_url)
    try:
        (a, _), (b, _) = (s.queries.jobs(limit=None) for s in (lite, pg))
    finally:
        lite.close()
        pg.close()
    assert {k: v for k, v in vars(a).items() if k not in _OWN} == {
        k: v for k, v in vars(b).items() if k not in _OWN
    }


@pytest.mark.parametrize(
    "args",
    [
        ["--queue", "a,b"],
        ["--queue", " , "],
        ["--require", "gpu"],
        ["--require", "g pu=1"],
        ["--require", "gpu=ä"],
        ["--delay", "soon"],
        ["--input", "[1, 2]"],
        ["--input", "{bad"],
        ["--input", "@missing.json"],
        ["--cwd", "no/such/dir"],
        ["--max-attempts", "0"],
        ["--priority", "99999999999"],
        ["--shell", " ", "--queue", "x"],
        ["--shell", "true", "extra"],
        ["--cancel-on-interrupt"],
    ],
    ids=" ".join,
)
def test_bad_options_get_the_model_paths_errors(
    args: list[str], sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(sqlite_url).close()
    argv = ["submit", *args, *([] if "--shell" in args else ["--", "true"])]
    fast = _run(*argv, url=sqlite_url, cwd=tmp_path)
    monkeypatch.setenv("STOCKADE_LITE", "0")
    model = _run(*argv, url=sqlite_url, cwd=tmp_path)
    assert (fast.returncode, fast.stderr) == (model.returncode, model.stderr)
    assert fast.returncode == 2
    assert len(fast.stderr.splitlines()) == 1, fast.stderr
    assert not fast.stdout
