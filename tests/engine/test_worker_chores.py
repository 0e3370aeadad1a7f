"""A worker fires due schedules as part of its housekeeping (both stores).
The retention pass it runs there is the same ``Chores.run`` the soak test
drives (tests/engine/test_retention_soak.py)."""

from __future__ import annotations

from stockade.engine.jobspec import adhoc_task, new_job
from stockade.engine.worker import Worker
from stockade.store import Store
from stockade.store.schedules import ScheduleDef
from tests.engine.helpers import state, until, with_worker


def test_a_worker_fires_a_missed_tick_and_runs_it(store: Store, store_url: str) -> None:
    job = new_job("tick", adhoc_task(argv=["true"]), input={"from": "cron"})
    schedule = ScheduleDef("minutely", "* * * * *", "UTC", "latest", job)
    store.schedules.define([schedule], now=store.queries.now() - 600)
    fired: list[str] = []

    async def body(worker: Worker) -> None:
        def ran() -> bool:
            (listed,) = store.schedules.list()
            if listed.last_job is None:
                return False
            fired[:] = [listed.last_job]
            return state(store, listed.last_job) == "succeeded"

        await until(ran, timeout=30, what="the missed tick to run")
        assert store.queries.job(fired[0]).input == {"from": "cron"}
        assert store.schedules.list()[0].skipped >= 9  # catch_up latest: one job for ten ticks

    with_worker(store_url, body)
