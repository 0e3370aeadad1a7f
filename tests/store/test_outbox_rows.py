"""Which notifications a job's end queues (pure: no database)."""

from __future__ import annotations

from stockade.store.outbox import end_rows

JOB = {"id": "j1", "task": "t", "state": "failed", "reason": "oom", "outcome": "failed"}
SPEC = {
    "notify": [
        {"on": ["failed"], "url": "http://h/a"},
        {"on": ["oom"], "command": ["x"]},
        {"on": ["succeeded"], "command": ["y"]},
        {"command": ["z"]},  # on defaults to [failed]
    ]
}


def test_an_end_queues_the_notifications_whose_state_or_reason_it_matches() -> None:
    rows = end_rows(SPEC, JOB, 2, 100.0)
    assert [(r[2], r[3]) for r in rows] == [(0, "webhook"), (1, "command"), (3, "command")]
    job_id, attempt, _, _, note, body, state, due, *_ = rows[0]
    assert (job_id, attempt, state, due) == ("j1", 2, "pending", 100.0)
    assert note == SPEC["notify"][0]
    assert body["delivery"] == "j1.0" and body["job"]["reason"] == "oom"
    assert "input" not in body["job"]


def test_nothing_is_queued_without_notify_or_before_the_end() -> None:
    assert end_rows({}, JOB, 1, 0.0) == []
    assert end_rows(SPEC, JOB | {"state": "queued"}, 1, 0.0) == []
