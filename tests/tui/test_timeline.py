"""The run timeline: lanes derived from overlapping intervals, the critical
path from timing, and ``stockade runs RUN --timeline`` on a real run, on
SQLite and PostgreSQL."""

from __future__ import annotations

import json

from stockade.engine.timeline import LANES_DERIVED, build, render_text
from stockade.store.records import JobRecord
from stockade.store.states import JobState
from tests.tui.conftest import Recorded
from tests.tui.helpers import stockade


def _job(name: str, start: float, end: float | None, state: str = "succeeded") -> JobRecord:
    return JobRecord(
        id=name, task=name, state=JobState(state), priority=0, attempts=1, max_attempts=1, runs=1,
        created_at=start, updated_at=start, run_after=start, started_at=start, finished_at=end,
        worker_id=None, lease_expires=None, cancel_requested=False, outcome=None, exit_code=None,
        signal=None, reason=None, error=None, step=name,
    )  # fmt: skip


def test_lanes_reuse_a_free_lane_and_the_critical_path_follows_the_chain() -> None:
    jobs = [_job("a", 100, 102), _job("b", 100, 101), _job("c", 101, 103), _job("d", 103, 104)]
    timeline = build("r", jobs, origin=100.0, now=200.0)
    lanes = {bar.id: bar.lane for bar in timeline.bars}
    assert lanes == {"a": 0, "b": 1, "c": 1, "d": 0}
    assert timeline.lanes == 2
    assert timeline.lanes_from == LANES_DERIVED
    assert timeline.critical_path == ["b", "c", "d"]
    assert not next(bar for bar in timeline.bars if bar.id == "a").critical
    assert timeline.span == 4.0


def test_a_running_job_ends_now_and_jobs_that_never_started_are_left_out() -> None:
    never = _job("skipped", 0, None, "cancelled")
    jobs = [_job("a", 10, 11), _job("live", 10.5, None, "running"), never]
    jobs[2] = JobRecord(**{**never.__dict__, "started_at": None})
    timeline = build("r", jobs, origin=10.0, now=15.0)
    assert [bar.id for bar in timeline.bars] == ["a", "live"]
    live = timeline.bars[1]
    assert (live.start, live.end, live.lane, live.status) == (0.5, 5.0, 1, "running")
    assert timeline.critical_path == ["live"]
    text = render_text(timeline, 80)
    assert ">" in text.splitlines()[1] and "*" in text.splitlines()[1]


def test_runs_timeline_on_a_real_run(recorded: Recorded) -> None:
    root, store_url, run_id = recorded.root, recorded.url, recorded.run_id
    shown = stockade(root, store_url, "runs", run_id, "--timeline")
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.splitlines()
    assert rows[0] == f"run {run_id}"
    names = [row.split()[1] if row[2] == "*" or row[2] == " " else "" for row in rows[1:-1]]
    assert sorted(names) == ["build[a]", "build[b]", "build[c]", "test"]  # publish never ran
    test_row = next(row for row in rows if " test " in row)
    assert "X" in test_row and test_row[2] == "*"  # failed, and it ended last
    assert LANES_DERIVED in rows[-1]

    data = json.loads(stockade(root, store_url, "runs", run_id, "--timeline", "--json").stdout)
    bars = {bar["job"]: bar for bar in data["bars"]}
    assert data["critical_path"][-1] == bars["test"]["id"]
    for one in data["bars"]:  # bars on one lane never overlap
        for other in data["bars"]:
            if one is not other and one["lane"] == other["lane"]:
                assert one["end"] <= other["start"] + 1e-3 or other["end"] <= one["start"] + 1e-3
    assert max(bar["lane"] for bar in data["bars"]) + 1 == data["lanes"]

    missing = stockade(root, store_url, "runs", "--timeline")
    assert missing.returncode == 2
    assert "--timeline needs the RUN" in missing.stderr


def test_a_run_stamped_after_its_first_job_started_starts_at_that_job() -> None:
    # a queued run's start is written with its first batch, after the job started
    timeline = build("r", [_job("a", 100, 101)], origin=100.5, now=200.0)
    assert (timeline.bars[0].start, timeline.bars[0].end) == (0.0, 1.0)
