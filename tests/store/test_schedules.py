"""Schedules in the store: defined from the config, each tick submitted exactly
once however many processes fire at the same time (both stores)."""

from __future__ import annotations

import calendar
import multiprocessing
from pathlib import Path
from typing import Any

from stockade.store import Store, open_store
from stockade.store.schedules import ScheduleDef, tick_job_id
from tests.store.helpers import new

BASE = float(calendar.timegm((2026, 1, 1, 0, 0, 0)))  # on a minute


def _race(url: str, steps: int, start: Any, out: Any) -> None:
    """One racing process: every pass of the same sequence of clocks."""
    store = open_store(url, schema="check")
    fired: list[str] = []
    start.wait()
    for step in range(steps):
        for one in store.schedules.fire_due(now=BASE + step * 60 + 1):
            fired += one.job_ids
    store.close()
    out.put(fired)


def every_minute(catch_up: str = "all", **job: object) -> ScheduleDef:
    return ScheduleDef("minutely", "* * * * *", "UTC", catch_up, new("tick", **job))


def all_jobs(store: Store) -> list[str]:
    return sorted(job.id for job in store.queries.jobs(limit=10_000))


def test_a_tick_is_submitted_once_with_the_schedules_job(store: Store) -> None:
    store.schedules.define([every_minute(input={"n": 1}, priority=3)], now=BASE)
    (listed,) = store.schedules.list()
    assert (listed.name, listed.next_at, listed.last_at) == ("minutely", BASE + 60, None)
    assert store.schedules.fire_due(now=BASE + 59) == []
    (fired,) = store.schedules.fire_due(now=BASE + 61)
    assert fired.job_ids == [tick_job_id("minutely", BASE + 60)]
    assert store.schedules.fire_due(now=BASE + 61) == []
    job = store.queries.job(fired.job_ids[0])
    assert (job.task, job.input, job.priority, job.state.value) == ("tick", {"n": 1}, 3, "queued")
    (listed,) = store.schedules.list()
    assert (listed.next_at, listed.last_at, listed.last_job) == (BASE + 120, BASE + 60, job.id)


def test_catch_up_after_downtime_follows_the_schedule(store: Store) -> None:
    defs = [every_minute("all"), ScheduleDef("latest", "* * * * *", "UTC", "latest", new("l")),
            ScheduleDef("none", "* * * * *", "UTC", "none", new("n"))]  # fmt: skip
    store.schedules.define(defs, now=BASE)
    fired = {f.name: f for f in store.schedules.fire_due(now=BASE + 10 * 60 + 5 * 60 + 1)}
    assert len(fired["minutely"].job_ids) == 15
    assert fired["latest"].job_ids == [tick_job_id("latest", BASE + 15 * 60)]
    assert fired["none"].job_ids == [tick_job_id("none", BASE + 15 * 60)]  # on time
    assert (fired["latest"].skipped, fired["none"].skipped) == (14, 14)
    assert len(all_jobs(store)) == 17
    later = {f.name: f for f in store.schedules.fire_due(now=BASE + 20 * 60 + 30)}
    assert later["none"].job_ids == [tick_job_id("none", BASE + 20 * 60)]
    assert later["latest"].job_ids == [tick_job_id("latest", BASE + 20 * 60)]
    skipped = {s.name: s.skipped for s in store.schedules.list()}
    assert skipped == {"latest": 18, "minutely": 0, "none": 18}


def test_catch_up_none_submits_nothing_for_a_tick_missed_by_more_than_a_minute(
    store: Store,
) -> None:
    store.schedules.define([ScheduleDef("n", "0 3 * * *", "UTC", "none", new("n"))], now=BASE)
    (fired,) = store.schedules.fire_due(now=BASE + 3 * 3600 + 120)
    assert (fired.job_ids, fired.skipped) == ([], 1)
    assert store.schedules.list()[0].next_at == BASE + 27 * 3600


def test_a_changed_definition_starts_afresh_and_a_removed_one_goes(store: Store) -> None:
    store.schedules.define([every_minute()], now=BASE)
    store.schedules.define([every_minute()], now=BASE + 600)  # unchanged: keeps its place
    assert store.schedules.list()[0].next_at == BASE + 60
    changed = ScheduleDef("minutely", "*/5 * * * *", "UTC", "all", new("tick"))
    store.schedules.define([changed], now=BASE + 600)
    assert store.schedules.list()[0].next_at == BASE + 900  # no catch-up of the old ticks
    store.schedules.define([], now=BASE + 600)
    assert store.schedules.list() == []


def test_racing_processes_submit_each_tick_exactly_once(store: Store, store_url: str) -> None:
    store.schedules.define([every_minute("all")], now=BASE)
    steps, racers = 15, 3
    # Forked (the modules are loaded already); each opens its own store.
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(racers), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(store_url, steps, start, out)) for _ in range(racers)]
    for proc in procs:
        proc.start()
    fired: list[str] = []
    for _ in procs:
        fired += out.get(timeout=90)
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    expected = sorted(tick_job_id("minutely", BASE + 60 * i) for i in range(1, steps))
    assert sorted(fired) == expected  # each tick reported by one process only
    assert all_jobs(store) == expected


def test_open_store_migrates_to_a_schema_with_schedules(tmp_path: Path) -> None:
    opened = open_store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        assert opened.schedules.list() == []
    finally:
        opened.close()


def test_a_schedule_this_process_cannot_read_does_not_stop_the_others(store: Store) -> None:
    import sqlalchemy as sa

    from stockade.store import schema as t

    other = ScheduleDef("other", "* * * * *", "UTC", "all", new("o"))
    store.schedules.define([every_minute(), other], now=BASE)
    with store.db.transaction() as conn:  # as a host without this zone would see it
        conn.execute(
            sa.update(t.schedules)
            .where(t.schedules.c.name == "minutely")
            .values(timezone="Nowhere/X")
        )
    fired = {f.name: f for f in store.schedules.fire_due(now=BASE + 61)}
    assert fired["other"].job_ids == [tick_job_id("other", BASE + 60)]
    assert fired["minutely"].job_ids == [] and "Nowhere/X" in (fired["minutely"].error or "")
    assert store.schedules.list()[0].next_at == BASE + 60  # still due, for a process that can
