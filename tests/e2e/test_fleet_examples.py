"""``examples/ports`` and ``examples/go-tests`` with ``--fleet`` on PostgreSQL:
two ``stockade worker`` processes run the jobs, and the run gives what the
same run in process gives (statuses, reasons, outputs, per-test results)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockade.store import Store, open_store
from tests.e2e.fleetworkers import two_workers
from tests.store.fixtures import pg_base, pg_url

__all__ = ["pg_base", "pg_url"]  # fixtures used here

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


@pytest.fixture
def fleet_store(pg_url: str, tmp_path: Path) -> Iterator[Store]:
    """The test's PostgreSQL store, and two workers on it."""
    store = open_store(pg_url)
    with two_workers(pg_url, tmp_path):
        yield store
    store.close()


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(
        EXAMPLES / name, target, ignore=shutil.ignore_patterns(".work", ".stockade", "*.tar.gz")
    )
    return target


def _run(url: str, cwd: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """``stockade run --json`` in ``cwd``: its status, its last event of each
    job, and its stderr. Each run has a data directory of its own, so no
    result cached by one is taken by the other."""
    env = dict(os.environ, STOCKADE_DATABASE_URL=url)
    data = cwd / f".stockade-{len(list(cwd.glob('.stockade-*')))}"
    done = subprocess.run(
        [*STOCKADE, "run", "--json", "--data-dir", str(data), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    finished = {e["job"]: e for e in events if e["event"] == "job_finish"}
    return done.returncode, finished, done.stderr


def _same(here: dict[str, Any], fleet: dict[str, Any], timed: tuple[str, ...] = ()) -> None:
    """The same jobs, statuses and reasons, and the same outputs of the jobs
    that succeeded (a worker keeps no outputs of a failed job: see
    docs/pipelines.md); the ``timed`` steps' stdout has times in it (and
    go's build, packages in the order they were done), so only its lines'
    actions are compared."""
    assert sorted(fleet) == sorted(here)
    for job, event in here.items():
        theirs = fleet[job]
        assert (theirs["status"], theirs["reason"]) == (event["status"], event["reason"]), job
        if event["status"] != "succeeded":
            continue
        if event["step"] in timed:
            assert _actions(theirs["outputs"].pop("stdout")) == _actions(
                event["outputs"].pop("stdout")
            )
        assert theirs["outputs"] == event["outputs"], job


def _actions(stdout: str) -> list[tuple[str, str, str]]:
    """What each test2json line says happened, to which test, without times."""
    lines = [json.loads(line) for line in stdout.splitlines()]
    return sorted((line["Action"], line["Package"], line.get("Test", "")) for line in lines)


def _tests(store: Store) -> list[tuple[str, str, str]]:
    run = store.runs.latest()
    return sorted((t.package, t.test, t.status) for t in store.runs.tests(run.id))


@pytest.mark.skipif(os.geteuid() != 0, reason="the chroot backend needs root")
@pytest.mark.skipif(shutil.which("make") is None or shutil.which("gcc") is None, reason="make, gcc")
def test_ports_with_fleet(fleet_store: Store, pg_url: str, tmp_path: Path) -> None:
    """Built in dependency order in chroot slots of the workers; the broken
    port fails and what needs it is skipped, as in process."""
    workspace = _copy("ports", tmp_path)
    code, here, err = _run(pg_url, workspace)
    assert code == 1, err
    built = sorted(p.name for p in (workspace / "packages").glob("*.tar.gz"))
    fcode, fleet, ferr = _run(pg_url, workspace, "--fleet")
    assert fcode == 1, ferr
    _same(here, fleet)
    assert sorted(p.name for p in (workspace / "packages").glob("*.tar.gz")) == built
    ran = [j for j in fleet_store.queries.jobs(limit=None) if j.run_id is None]
    assert {j.worker_id for j in ran if j.task == "build-port"} and all(
        (j.unique_key or "").startswith("run:") for j in ran
    )


@pytest.mark.skipif(shutil.which("go") is None, reason="needs Go")
def test_go_tests_with_fleet(fleet_store: Store, pg_url: str, tmp_path: Path) -> None:
    """Built and tested on the workers: the same per-test results (from
    test2json in the jobs' output, read back from the store) and JUnit."""
    workspace = _copy("go-tests", tmp_path)
    code, here, err = _run(pg_url, workspace, "test", "--junit", "here.xml")
    assert code == 1, err
    here_tests = _tests(fleet_store)
    fcode, fleet, ferr = _run(pg_url, workspace, "test", "--fleet", "--junit", "fleet.xml")
    assert fcode == 1, ferr
    _same(here, fleet, timed=("build", "test"))
    assert _tests(fleet_store) == here_tests
    assert any(status == "failed" for _, _, status in here_tests)
    assert (workspace / "fleet.xml").read_text().count("<testcase") == (
        workspace / "here.xml"
    ).read_text().count("<testcase")
