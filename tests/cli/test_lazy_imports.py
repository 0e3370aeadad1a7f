"""What the fast commands import: they answer in a fraction of a second only
while they leave the heavy libraries alone. Checked through ``sys.modules``
after a real run of each command, not by timing anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stockade.runner.result import Outcome
from stockade.store import open_store
from tests.store.helpers import new, result

#: Runs the CLI as the entry point does, then names the heavy packages (or
#: modules, by their dotted names) it loaded.
PROBE = """
import sys
from stockade.cli.main import main
status = main(sys.argv[1:])
loaded = set(sys.modules) | {name.split(".")[0] for name in sys.modules}
print("LOADED " + " ".join(sorted(loaded & set(HEAVY))), file=sys.stderr)
sys.exit(status)
"""
HEAVY = ("sqlalchemy", "alembic", "psycopg", "pydantic", "yaml", "rich", "fastapi", "click")


def _loaded(
    args: list[str],
    data_dir: Path,
    heavy: tuple[str, ...] = HEAVY,
    env: dict[str, str] | None = None,
) -> set[str]:
    env = {**os.environ, "STOCKADE_DATA_DIR": str(data_dir), **(env or {})}
    env.pop("STOCKADE_DATABASE_URL", None)
    code = f"HEAVY = {heavy!r}\n{PROBE}"
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stderr.splitlines() if x.startswith("LOADED")][-1]
    return set(line.split()[1:])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store with a finished job that has logs."""
    path = tmp_path_factory.mktemp("lazy")
    store = open_store(None, path)
    try:
        store.jobs.submit([new() for _ in range(3)])
        store.journal.register_worker("w", 1)
        (claim,) = store.jobs.claim("w", 1, 30)
        store.journal.append_logs(
            [{"job_id": claim.job_id, "attempt": 1, "stream": "stdout", "text": "hi\n", "time": 0}]
        )
        store.jobs.finish(claim, result(claim, Outcome.SUCCEEDED))
    finally:
        store.close()
    (path / "job").write_text(claim.job_id)
    return path


@pytest.mark.parametrize("command", ["jobs", "show", "logs", "show-prefix"])
def test_read_commands_on_sqlite_import_no_orm_driver_or_models(
    command: str, data_dir: Path
) -> None:
    job_id = (data_dir / "job").read_text()
    args = {
        "jobs": ["jobs", "--all"],
        "show": ["show", job_id],
        "logs": ["logs", job_id],
        "show-prefix": ["show", job_id[:-1]],
    }[command]
    assert _loaded(args, data_dir) == {"click"}


def test_exec_imports_none_of_them(data_dir: Path) -> None:
    assert _loaded(["exec", "--", "true"], data_dir, (*HEAVY, "ssl")) == set()


def test_bare_exec_builds_no_option_parser(data_dir: Path) -> None:
    """``exec -- CMD`` has no option to parse, so argparse stays unloaded;
    an option before ``--`` brings it (the probe can see the difference)."""
    parser = ("argparse", "gettext")
    assert _loaded(["exec", "--", "true"], data_dir, parser) == set()
    assert _loaded(["exec", "--timeout", "30s", "--", "true"], data_dir, parser) == set(parser)


def test_bare_exec_loads_no_ctypes(data_dir: Path) -> None:
    """The subreaper ``prctl`` goes through the C spawn extension, not ctypes."""
    assert _loaded(["exec", "--", "true"], data_dir, ("ctypes",)) == set()


def test_the_full_store_still_answers_when_asked_to(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain path (``STOCKADE_LITE=0``) is the one that loads SQLAlchemy:
    the probe sees the difference, so the assertions above can fail."""
    monkeypatch.setenv("STOCKADE_LITE", "0")
    assert "sqlalchemy" in _loaded(["jobs"], data_dir)


@pytest.mark.parametrize("bulk", [False, True])
def test_submit_on_sqlite_imports_no_orm_or_driver(bulk: bool, data_dir: Path) -> None:
    """`stockade submit` writes on the driver (``stockade.store.lite``); with
    ``--inputs`` the task's models are still pydantic's."""
    (data_dir / "in.jsonl").write_text('{"n": 1}\n{"n": 2}\n')
    args = ["submit", *(["--inputs", "in.jsonl"] if bulk else []), "--", "true"]
    assert not _loaded(args, data_dir) & {"sqlalchemy", "alembic", "psycopg"}


@pytest.mark.parametrize(
    "args",
    [
        ["--", "true"],
        ["--shell", "echo hi", "--queue", "q", "--require", "gpu=1", "--max-attempts", "2",
         "--priority", "3", "--delay", "1s", "--count", "2", "--input", '{"n": 1}'],
    ],
    ids=["bare", "every-option"],
)  # fmt: skip
def test_adhoc_submit_on_sqlite_imports_no_models(args: list[str], data_dir: Path) -> None:
    """An ad-hoc job is made from the task model's template (``stockade.engine.adhoc``):
    no pydantic, only click for the options."""
    assert _loaded(["submit", *args], data_dir) == {"click"}


def test_a_named_task_still_goes_through_the_models(data_dir: Path, tmp_path: Path) -> None:
    """``submit TASK`` reads stockade.yaml with the models: the probe sees them."""
    (tmp_path / "stockade.yaml").write_text("version: 1\ntasks:\n  t:\n    run: 'true'\n")
    loaded = _loaded(["submit", "-c", str(tmp_path / "stockade.yaml"), "t"], data_dir)
    assert "pydantic" in loaded


def test_run_on_sqlite_records_without_the_orm(data_dir: Path, tmp_path: Path) -> None:
    """``stockade run`` of a one-step pipeline records its run on the driver
    alone (``stockade.store.literuns``): no SQLAlchemy, Alembic or psycopg;
    and it loads asyncio without OpenSSL (``stockade.cli.startup``)."""
    config = tmp_path / "stockade.yaml"
    config.write_text(
        'version: 1\npipelines:\n  one:\n    steps:\n      only:\n        run: "true"\n'
    )
    loaded = _loaded(["run", "-q", "-c", str(config)], data_dir, (*HEAVY, "ssl"))
    assert loaded == {"click", "pydantic", "yaml"}


def test_run_on_sqlite_imports_no_job_records(data_dir: Path, tmp_path: Path) -> None:
    """A run's recorder writes rows and reads no job back: the CLI's driver
    reads and submits (``stockade.store.lite``), the job records and the
    claim's routing stay unloaded, and the store's modules it does load are
    the few it writes with (see ``stockade.store.sqliteopen``)."""
    config = tmp_path / "stockade.yaml"
    config.write_text(
        'version: 1\npipelines:\n  one:\n    steps:\n      only:\n        run: "true"\n'
    )
    unused = (
        "stockade.store.lite", "stockade.store.records", "stockade.store.rows",
        "stockade.store.routing", "stockade.store.jobinsert", "stockade.store.gatewait",
    )  # fmt: skip
    assert _loaded(["run", "-q", "-c", str(config)], data_dir, unused) == set()


def test_a_second_run_of_a_file_reads_its_plan_without_the_models(
    data_dir: Path, tmp_path: Path
) -> None:
    """The first ``stockade run`` of a file validates it with the models and
    keeps the compiled plan; the second reads the plan: no pydantic, no
    yaml, and (stdout is not a terminal) no rich. Off, the cache costs
    every run the models again."""
    config = tmp_path / "stockade.yaml"
    config.write_text(
        'version: 1\npipelines:\n  one:\n    steps:\n      only:\n        run: "true"\n'
    )
    args = ["run", "-q", "-c", str(config)]
    assert {"pydantic", "yaml"} <= _loaded(args, data_dir)
    assert _loaded(args, data_dir) == {"click"}
    assert {"pydantic", "yaml"} <= _loaded(args, data_dir, env={"STOCKADE_PLAN_CACHE": "0"})
