"""A force stop: a job that ignores its stop signal, with a 20 s kill grace,
is killed at once — whole tree, no further grace — by a second cancel or
``cancel --force`` (CLI and HTTP), and by a second SIGTERM to a worker or to
``stockade serve``. Real processes on both stores.

Each case measures the time from the forcing request to the job's end (or
the process's exit) and prints it; the bound asserted is generous (10 s,
well under the 20 s grace).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from stockade.engine.jobspec import adhoc_task, new_job
from stockade.store import Store, open_store
from tests.engine.procs import STOCKADE, kill_leftovers, start_worker, stop
from tests.runner.helpers import alive
from tests.server.helpers import Server
from tests.store.fixtures import pg_base, pg_url, sqlite_url, store_url

__all__ = ["pg_base", "pg_url", "sqlite_url", "store_url"]  # fixtures used here

#: Ignores SIGTERM (and so does its child, which inherits that): only SIGKILL ends it.
STUBBORN = 'trap "" TERM; sleep 60 & echo $! >> "$INPUT_PIDS"; echo $$ >> "$INPUT_PIDS"; wait'
GRACE = 20.0
BOUND = 10.0


def _pids(path: Path, timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(pids := path.read_text().split()) >= 2:
            return [int(p) for p in pids]
        time.sleep(0.02)
    raise AssertionError("the job did not start")


def _submit(store: Store, pids: Path) -> str:
    task = adhoc_task(shell=STUBBORN, kill_grace=f"{GRACE:g}s", input_format="env")
    return store.jobs.submit([new_job("stubborn", task, input={"pids": str(pids)})])[0]


def _state(store: Store, job_id: str) -> str:
    return store.queries.job(job_id).state.value


def _until(check: object, timeout: float = BOUND * 3) -> float:
    """Wait for ``check()``; the seconds it took."""
    began = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - began < timeout, "never happened"
        time.sleep(0.02)
    return time.monotonic() - began


def _cancel(url: str, job_id: str, *flags: str) -> str:
    done = subprocess.run(
        [*STOCKADE, "cancel", job_id, *flags], env=dict(os.environ, STOCKADE_DATABASE_URL=url),
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def _in_grace(pids: list[int]) -> None:
    """The job was asked to stop but ignores it: it must still be alive."""
    time.sleep(1.0)
    assert all(alive(p) for p in pids), "the job ended within its grace; nothing to force"


@pytest.mark.parametrize("how", ["second_cancel", "force"])
def test_a_second_cancel_or_cancel_force_kills_the_job_now(
    store_url: str, tmp_path: Path, how: str
) -> None:
    store = open_store(store_url)
    job_id = _submit(store, tmp_path / "pids")
    worker = start_worker(store_url, "--slots", "1", "--poll", "0.05", log=tmp_path / "w")
    try:
        pids = _pids(tmp_path / "pids")
        if how == "second_cancel":
            assert _cancel(store_url, job_id) == f"{job_id} cancelling"
            _in_grace(pids)
            began = time.monotonic()
            assert _cancel(store_url, job_id) == f"{job_id} killing"
        else:
            began = time.monotonic()
            assert _cancel(store_url, job_id, "--force") == f"{job_id} killing"
        answered = time.monotonic()
        _until(lambda: _state(store, job_id) == "cancelled")
        took, after_answer = time.monotonic() - began, time.monotonic() - answered
    finally:
        assert stop(worker) == 0, (tmp_path / "w").read_text()[-3000:]
        kill_leftovers(worker.pid)
    print(
        f"{how} ({store.db.dialect}): job cancelled {took:.2f}s after the forcing cancel"
        f" began, {after_answer:.2f}s after it answered"
    )
    assert took < BOUND
    assert not [p for p in pids if alive(p)]
    (attempt,) = store.queries.attempts(job_id)
    assert attempt.outcome == "cancelled"
    store.close()


@pytest.mark.parametrize("when", ["draining", "in_grace"])
def test_a_second_signal_to_a_worker_kills_its_jobs_now(
    store_url: str, tmp_path: Path, when: str
) -> None:
    """``draining``: the second signal comes while the drain waits for the job;
    ``in_grace``: after the drain deadline, while the job ignores its stop signal."""
    store = open_store(store_url)
    job_id = _submit(store, tmp_path / "pids")
    drain = "60s" if when == "draining" else "0.2s"
    worker = start_worker(
        store_url, "--slots", "1", "--poll", "0.05", "--drain-timeout", drain, log=tmp_path / "w"
    )
    try:
        pids = _pids(tmp_path / "pids")
        worker.send_signal(signal.SIGTERM)
        _in_grace(pids)
        began = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        status = worker.wait(BOUND * 3)
        took = time.monotonic() - began
    finally:
        stop(worker)
        kill_leftovers(worker.pid)
    print(f"worker, second signal {when} ({store.db.dialect}): exited after {took:.2f}s")
    assert status == 0, (tmp_path / "w").read_text()[-3000:]
    assert took < BOUND
    assert not [p for p in pids if alive(p)]
    job = store.queries.job(job_id)
    assert (job.state.value, job.attempts) == ("queued", 0)  # given back, no attempt spent
    store.close()


def _serve_config(tmp_path: Path) -> Path:
    config = tmp_path / "stockade.yaml"
    config.write_text(
        "version: 1\n"
        "tasks:\n"
        "  stubborn:\n"
        "    input_format: env\n"
        f"    run: '{STUBBORN}'\n"
        f"    kill_grace: {GRACE:g}s\n"
    )
    return config


def _serve_job(server: Server, pids: Path) -> tuple[str, list[int]]:
    resp = server.client.post(
        "/api/v1/jobs", json={"task": "stubborn", "input": {"pids": str(pids)}}
    )
    assert resp.status_code in (200, 201, 202), resp.text
    return resp.json()["id"], _pids(pids)


def test_cancel_force_over_http_kills_the_job_now(store_url: str, tmp_path: Path) -> None:
    url = None if store_url.startswith("sqlite") else store_url
    server = Server(tmp_path / "data", config=_serve_config(tmp_path), database_url=url)
    try:
        job_id, pids = _serve_job(server, tmp_path / "pids")
        began = time.monotonic()
        resp = server.client.post(f"/api/v1/jobs/{job_id}/cancel", params={"force": "true"})
        assert resp.json() == {"id": job_id, "result": "killing"}
        _until(lambda: server.client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "cancelled")
        took = time.monotonic() - began
    finally:
        assert server.stop() == 0, server.log.read_text()[-3000:]
    print(f"HTTP cancel?force=true ({'sqlite' if url is None else 'postgresql'}): {took:.2f}s")
    assert took < BOUND
    assert not [p for p in pids if alive(p)]


def test_a_second_signal_to_serve_kills_its_jobs_now(store_url: str, tmp_path: Path) -> None:
    url = None if store_url.startswith("sqlite") else store_url
    server = Server(
        tmp_path / "data", config=_serve_config(tmp_path), database_url=url, drain="60s"
    )
    try:
        _, pids = _serve_job(server, tmp_path / "pids")
        server.proc.send_signal(signal.SIGTERM)
        _in_grace(pids)
        began = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        status = server.proc.wait(BOUND * 3)
        took = time.monotonic() - began
    finally:
        server.stop()
    print(f"serve, second signal ({'sqlite' if url is None else 'postgresql'}): {took:.2f}s")
    assert status == 0, server.log.read_text()[-3000:]
    assert took < BOUND
    assert not [p for p in pids if alive(p)]
    assert "second signal: stopping running jobs now" in server.log.read_text()
