"""``schedules:`` and ``retention:`` in stockade.yaml: what is accepted, what
each mistake says, and what `stockade validate` shows."""

from __future__ import annotations

import pytest

from stockade.config import loads
from stockade.config.problems import ConfigValidationError
from stockade.config.summary import summary

TASKS = "version: 1\ntasks:\n  backup:\n    run: 'true'\n"


def test_schedules_and_retention_load_with_their_defaults() -> None:
    config = loads(
        TASKS + "schedules:\n  nightly:\n    task: backup\n    cron: '0  3 * * *'\n"
        "retention:\n  finished: 7d\n  failed: 30d\n"
    )
    nightly = config.schedules["nightly"]
    assert (nightly.cron, nightly.timezone, nightly.catch_up.value) == (
        "0 3 * * *",
        "UTC",
        "latest",
    )
    assert config.retention.ages() == {
        "succeeded": 7 * 86400.0, "failed": 30 * 86400.0, "cancelled": 7 * 86400.0,
    }  # fmt: skip
    assert loads(TASKS).retention.ages() == {}
    assert "  nightly: backup at '0 3 * * *' UTC, catch_up latest" in summary(config)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "task: backpu\n    cron: '* * * * *'",
            "runs unknown task 'backpu'; did you mean 'backup'?",
        ),
        ("task: backup\n    cron: '* * *'", "must have five fields"),
        ("task: backup\n    cron: '0 25 * * *'", "not a valid cron expression"),
        ("task: backup\n    cron: '* * * * *'\n    timezone: Mars/Base", "unknown time zone"),
        ("task: backup\n    cron: '* * * * *'\n    catch_up: some", "catch_up"),
    ],
)
def test_a_bad_schedule_says_what_to_fix(entry: str, message: str) -> None:
    with pytest.raises(ConfigValidationError) as raised:
        loads(TASKS + f"schedules:\n  s:\n    {entry}\n")
    assert message in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1


def test_a_bad_retention_age_is_refused() -> None:
    with pytest.raises(ConfigValidationError) as raised:
        loads(TASKS + "retention:\n  finished: forever\n")
    assert "retention.finished" in str(raised.value)
