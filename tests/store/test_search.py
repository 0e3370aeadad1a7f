"""Searching jobs (``GET /api/v1/jobs?q=``) on both stores: an id prefix
reaches every job, a word of the task or command the newest ones only."""

from __future__ import annotations

import time

import sqlalchemy as sa

from stockade.engine.jobspec import adhoc_task, new_job
from stockade.store import Store
from stockade.store import schema as t
from stockade.store.search import matching, window_start
from stockade.store.serverq import ServerQueries
from tests.store.helpers import new


def test_search_by_id_prefix_task_and_command(store: Store) -> None:
    make = new_job("exec", adhoc_task(argv=["make", "-j4", "Deploy_100%"]))
    shell = new_job("exec", adhoc_task(shell="echo Hello"))
    build, make_id, shell_id = store.jobs.submit([new("nightly-build"), make, shell])
    found = ServerQueries(store).page

    def ids(text: str) -> list[str]:
        return [job.id for job in found(search=text)]

    assert ids(build[:16].upper()) == [build]  # an id prefix, any case
    assert ids("BUILD") == [build]  # a part of the task's name, ignoring case
    assert ids("-j4") == [make_id]  # an argument of the command
    assert ids("hello") == [shell_id]  # the shell line
    assert ids("100%") == [make_id] and ids("y_1") == [make_id]  # wildcards are literal
    assert ids("1_0") == [] and ids("0%x") == []
    assert set(ids("L")) == {build, make_id, shell_id}
    assert set(ids("exec")) == {shell_id, make_id}  # ad-hoc jobs: task exec
    assert ids("nothing-like-it") == []


def test_text_search_looks_at_the_newest_jobs_only(store: Store) -> None:
    made = []
    for task in ("needle", "hay", "hay"):  # ids sort by the millisecond they were made in
        made += store.jobs.submit([new(task)])
        time.sleep(0.002)
    old = made[0]
    with store.db.read() as conn:

        def found(text: str, window: int) -> list[str]:
            query = sa.select(t.jobs.c.id).where(matching(text, window_start(conn, window)))
            return list(conn.execute(query).scalars())

        assert found("needle", 2) == []  # past the window
        assert found("needle", 3) == [old] and found("needle", 30) == [old]
        assert found(old[:12], 1) == [old]  # an id prefix, however old
