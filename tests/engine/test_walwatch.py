"""SQLite wakeups: an idle worker hears of new work from the kernel (inotify), not its poll."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from stockade.engine.walwatch import WalWatch
from stockade.engine.worker import Worker
from stockade.store import open_store
from tests.engine.helpers import state, submit, until, with_worker


def test_a_job_submitted_to_an_idle_sqlite_worker_starts_at_once(sqlite_url: str) -> None:
    # A poll of a minute: only the wakeup can start the job within the test.
    store = open_store(sqlite_url)

    async def body(worker: Worker) -> None:
        await asyncio.sleep(0.5)  # started, found nothing, waiting out its poll
        began = time.monotonic()
        job = submit(store, "true")
        await until(lambda: state(store, job) == "succeeded", timeout=5.0)
        assert time.monotonic() - began < 5.0

    try:
        with_worker(sqlite_url, body, poll=60.0)
    finally:
        store.close()


def test_the_watch_hears_other_commits_but_not_a_claim_that_finds_nothing(
    sqlite_url: str,
) -> None:
    store = open_store(sqlite_url)
    database = store.db.url.database
    assert database is not None

    async def main() -> tuple[int, int, int]:
        heard = 0

        def on_write() -> None:
            nonlocal heard
            heard += 1

        watch = WalWatch(database, on_write)
        assert watch.start(asyncio.get_running_loop())
        try:
            store.jobs.claim("w", 5, 30)  # nothing queued: no page written
            await asyncio.sleep(0.2)
            idle = heard
            submit(store, "true")  # a commit, as any other process would make it
            await asyncio.sleep(0.2)
            after_submit = heard
        finally:
            watch.stop()
        submit(store, "true")
        await asyncio.sleep(0.2)
        return idle, after_submit, heard - after_submit

    try:
        idle, after_submit, after_stop = asyncio.run(main())
    finally:
        store.close()
    assert idle == 0
    assert after_submit >= 1
    assert after_stop == 0  # stopped: nothing more


def test_no_watch_where_the_directory_cannot_be_watched(tmp_path: Path) -> None:
    watch = WalWatch(str(tmp_path / "missing" / "stockade.db"), lambda: None)

    async def main() -> bool:
        return watch.start(asyncio.get_running_loop())

    assert asyncio.run(main()) is False
    watch.stop()  # harmless when it never started
