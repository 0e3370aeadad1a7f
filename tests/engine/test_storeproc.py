"""The worker's store process: real child processes, real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from stockade.engine.storeio import AsyncStore
from stockade.engine.storeproc import StoreProcess
from stockade.errors import StoreError, StoreUnavailable
from stockade.store import Store
from tests.engine.helpers import submit
from tests.engine.procs import kill_leftovers, start_worker
from tests.runner.helpers import alive


def _url(store: Store) -> str:
    return store.db.url.render_as_string(hide_password=False)


def test_claims_in_the_child_and_errors_come_back_typed(store: Store) -> None:
    job = submit(store, "true")

    async def go() -> None:
        process = StoreProcess(_url(store))
        await process.start()
        try:
            (claim,) = await process.call("claim", "w1", 5, 30.0)
            assert claim.job_id == job and claim.run == 1
            with pytest.raises(StoreError, match="TypeError"):
                await process.call("claim", "w1")  # a bad call: reported, not fatal
            assert await process.call("claim", "w1", 5, 30.0) == []
            with pytest.raises(ValueError, match="not served"):
                await process.call("cancel", [job])
        finally:
            await process.close()

    asyncio.run(go())
    assert store.queries.job(job).state.value == "running"


def test_a_dead_store_process_fails_its_calls_and_the_thread_takes_over(store: Store) -> None:
    first, second = submit(store, "true"), submit(store, "true")

    async def go() -> None:
        astore = AsyncStore(store)
        process = StoreProcess(_url(store))
        await process.start()
        astore.process = process
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)  # as the OOM killer would
        while alive(process.pid):  # dead (a zombie until close reaps it)
            await asyncio.sleep(0.01)
        with pytest.raises(StoreUnavailable):
            await process.call("claim", "w1", 1, 30.0)
        assert not process.ready
        claims = await astore.claim("w1", 5, 30.0, None)  # on the store thread now
        assert {c.job_id for c in claims} == {first, second}
        assert astore.process is None
        await process.close()
        astore.close(dispose=False)

    asyncio.run(go())


def test_the_store_process_dies_with_its_worker_and_never_shows_the_url(
    store: Store, tmp_path: Path
) -> None:
    url = _url(store)
    worker = start_worker(url, "--slots", "1", "--poll", "0.05", log=tmp_path / "worker.log")
    try:
        child = _store_child(worker.pid)
        assert url.encode() not in Path(f"/proc/{child}/cmdline").read_bytes()
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(child), "the store process outlived its worker"
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child, 0)  # re-parented to this test process (a subreaper)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        kill_leftovers(worker.pid)


def _store_child(pid: int) -> int:
    """The pid of the worker's store process, once it runs."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for tid in os.listdir(f"/proc/{pid}/task"):
            for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split():
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"stockade.engine.storeproc" in cmdline:
                    return int(child)
        time.sleep(0.05)
    raise AssertionError("the worker started no store process")


def test_a_store_process_that_is_behind_never_blocks_the_event_loop(store: Store) -> None:
    """A call bigger than the socket buffer, to a child that reads nothing
    (stopped): the loop keeps running and is what resumes the child. A
    blocking send would hold the loop until the watchdog thread did it."""
    resumed_by: list[str] = []

    def resume(who: str, pid: int) -> None:
        if not resumed_by:
            resumed_by.append(who)
        os.kill(pid, signal.SIGCONT)

    async def go() -> None:
        process = StoreProcess(_url(store))
        await process.start()
        assert process.pid is not None
        watchdog = threading.Timer(15, resume, ("watchdog", process.pid))
        try:
            os.kill(process.pid, signal.SIGSTOP)
            watchdog.start()
            loop = asyncio.get_running_loop()
            loop.call_later(0.2, resume, "loop", process.pid)
            huge = "w" * (8 << 20)  # far beyond any socket buffer
            assert await process.call("claim", huge, 1, 30.0) == []  # nothing queued
            assert await process.call("claim", "w1", 1, 30.0) == []  # in order, after it
        finally:
            watchdog.cancel()
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
            await process.close()

    asyncio.run(go())
    assert resumed_by == ["loop"]
