"""Workspaces on a real worker: 50 concurrent jobs each in their own git
worktree, swept after their ttl; a SIGKILLed worker's workspaces are swept
by the next process on the host. Real workers, real git, on SQLite (the
store plays no part in what is proved)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from stockade.engine.jobspec import adhoc_task, new_job
from stockade.engine.worker import Worker
from stockade.runner.workspace import sweep, workspaces_dir
from stockade.store import Store
from tests.engine.helpers import state, submit, until, with_worker
from tests.engine.procs import kill_leftovers, start_worker
from tests.runner.test_workspace import git, worktrees
from tests.store.fixtures import sqlite_url

__all__ = ["sqlite_url"]  # fixtures used here

JOBS = 50


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "r.txt").write_text("content\n")
    git("add", ".", cwd=repo)
    git("commit", "-qm", "c", cwd=repo)
    return repo


def test_fifty_concurrent_jobs_get_their_own_worktrees_and_none_is_left(
    sqlite_url: str, tmp_path: Path
) -> None:
    """On SQLite only: what is proved is the worker's and git's, not the store's."""
    from stockade.store import open_store

    store = open_store(sqlite_url)
    try:
        _fifty(store, sqlite_url, tmp_path)
    finally:
        store.close()


def _fifty(store: Store, store_url: str, tmp_path: Path) -> None:
    repo, data = _repo(tmp_path), tmp_path / "data"
    line = 'echo "$PWD $STOCKADE_WORKSPACE $(cat r.txt)"; echo mine > own'
    workspace = {"git": {"repo": str(repo), "ref": "main"}, "keep": "always", "ttl": "1s"}
    jobs = [submit(store, line, workspace=workspace) for _ in range(JOBS)]
    bwrap = submit(store, "id -u; echo x > f; cat r.txt", workspace=workspace, sandbox="bwrap")

    async def body(worker: Worker) -> None:
        await until(lambda: all(state(store, j) == "succeeded" for j in [*jobs, bwrap]), timeout=60)
        # kept for 1 s, then swept by the worker's housekeeping
        await until(lambda: not os.listdir(workspaces_dir(data)), timeout=30, what="the sweep")

    with_worker(store_url, body, slots=8, lease=2.0, data_dir=str(data))
    seen = set()
    for job in jobs:
        cwd, env, content = str(store.queries.outputs(job)["stdout"]).split()
        assert cwd == env and content == "content"
        seen.add(cwd)
    assert len(seen) == JOBS  # each its own worktree
    assert str(store.queries.outputs(bwrap)["stdout"]).split() == ["65534", "content"]
    assert len(worktrees(data, repo)) == 1  # only the mirror: no stale entries


def test_a_sigkilled_workers_workspaces_are_swept(sqlite_url: str, tmp_path: Path) -> None:
    from stockade.store import open_store

    data = tmp_path / "data"
    store = open_store(sqlite_url)
    try:
        task = adhoc_task(shell="sleep 60", workspace={"keep": "never"})
        store.jobs.submit([new_job("t", task) for _ in range(3)])
        proc = start_worker(
            sqlite_url, "--slots", "3", "--data-dir", str(data), log=tmp_path / "w.log"
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if workspaces_dir(data).is_dir() and len(os.listdir(workspaces_dir(data))) == 3:
                    break
                time.sleep(0.05)
            left = sorted(os.listdir(workspaces_dir(data)))
            assert len(left) == 3 and all(n.startswith(f"{proc.pid}-") for n in left)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kill_leftovers(proc.pid)
        assert len(os.listdir(workspaces_dir(data))) == 3  # a killed worker removes nothing
        assert len(sweep(data)) == 3  # the next process on the host does
        assert os.listdir(workspaces_dir(data)) == []
    finally:
        store.close()


def test_artifacts_are_recorded_in_the_store(store: Store, store_url: str, tmp_path: Path) -> None:
    """The attempt's record keeps what was kept, read back by both readers."""
    from stockade.engine.artifacts import listed

    data = tmp_path / "data"
    line = "mkdir out; echo one > out/a.txt; ln -s /etc/shadow out/s.txt"
    job = submit(store, line, workspace="empty", artifacts=["out/*"])

    async def body(worker: Worker) -> None:
        await until(lambda: state(store, job) == "succeeded", timeout=30)

    with_worker(store_url, body, slots=1, data_dir=str(data))
    readers = [store]
    if store_url.startswith("sqlite"):
        from stockade.store.lite import open_reader

        readers.append(open_reader(store_url, None))
    for reader in readers:
        attempt, items = listed(reader.queries.attempts(job))
        assert attempt == 1
        assert [(i["name"], i["size"]) for i in items] == [("out/a.txt", 4)]
        skipped = reader.queries.attempts(job)[0].result["artifact_skipped"]
        assert [s["name"] for s in skipped] == ["out/s.txt"]
    assert (data / "artifacts" / job / items[0]["sha256"]).read_bytes() == b"one\n"
