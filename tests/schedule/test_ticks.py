"""The tick arithmetic of schedules, given ``now`` (no clock, no sleeping)."""

from __future__ import annotations

import calendar

import pytest

from stockade.schedule.ticks import MAX_TICKS, ON_TIME, CatchUp, Ticker, cron_problem, zone_problem

DAY = 86400.0


def at(*parts: int) -> float:
    """Epoch seconds of a UTC time."""
    return float(calendar.timegm((*parts, 0)[:6]))


NIGHTLY = at(2026, 1, 1, 3, 0)  # the first 03:00 tick


def test_next_tick_is_in_the_schedules_time_zone() -> None:
    assert Ticker("0 3 * * *").next_after(at(2026, 1, 1, 0, 0)) == NIGHTLY
    paris = Ticker("0 3 * * *", "Europe/Paris")  # UTC+1 in January
    assert paris.next_after(at(2026, 1, 1, 0, 0)) == at(2026, 1, 1, 2, 0)


def test_a_time_skipped_by_daylight_saving_fires_once_after_the_gap() -> None:
    paris = Ticker("30 2 * * *", "Europe/Paris")  # 2026-03-29 02:30 does not exist there
    tick = paris.next_after(at(2026, 3, 28, 12, 0))
    assert at(2026, 3, 29, 0, 0) < tick < at(2026, 3, 30, 0, 0)
    assert paris.next_after(tick) == at(2026, 3, 30, 0, 30)  # 02:30 CEST


def test_nothing_is_due_before_the_next_tick() -> None:
    for catch_up in CatchUp:
        due = Ticker("0 3 * * *", catch_up=catch_up).due(NIGHTLY, NIGHTLY - 1)
        assert due.ticks == [] and due.next_at == NIGHTLY


@pytest.mark.parametrize("catch_up", list(CatchUp))
def test_a_tick_on_time_is_submitted_whatever_catch_up_says(catch_up: CatchUp) -> None:
    due = Ticker("0 3 * * *", catch_up=catch_up).due(NIGHTLY, NIGHTLY + 2)
    assert due.ticks == [NIGHTLY]
    assert due.next_at == NIGHTLY + DAY
    assert due.skipped == 0


def test_catch_up_all_submits_every_missed_tick_oldest_first() -> None:
    due = Ticker("0 3 * * *", catch_up=CatchUp.ALL).due(NIGHTLY, NIGHTLY + 3 * DAY + 3600)
    assert due.ticks == [NIGHTLY + i * DAY for i in range(4)]
    assert due.next_at == NIGHTLY + 4 * DAY


def test_catch_up_all_is_bounded_per_pass_and_resumes() -> None:
    ticker = Ticker("* * * * *", catch_up=CatchUp.ALL)
    now = NIGHTLY + 3 * MAX_TICKS * 60.0
    first = ticker.due(NIGHTLY, now)
    assert len(first.ticks) == MAX_TICKS
    second = ticker.due(first.next_at, now)
    assert second.ticks[0] == first.ticks[-1] + 60
    assert len(set(first.ticks) | set(second.ticks)) == 2 * MAX_TICKS


def test_catch_up_latest_submits_the_most_recent_missed_tick_once() -> None:
    due = Ticker("0 3 * * *", catch_up=CatchUp.LATEST).due(NIGHTLY, NIGHTLY + 3 * DAY + 3600)
    assert due.ticks == [NIGHTLY + 3 * DAY]
    assert due.next_at == NIGHTLY + 4 * DAY
    assert due.skipped == 3


def test_catch_up_none_skips_missed_ticks() -> None:
    ticker = Ticker("0 3 * * *", catch_up=CatchUp.NONE)
    late = ticker.due(NIGHTLY, NIGHTLY + 3 * DAY + ON_TIME + 1)
    assert late.ticks == []
    assert late.next_at == NIGHTLY + 4 * DAY
    assert late.skipped == 4


def test_bad_cron_and_zone_say_what_to_write() -> None:
    assert "five fields" in (cron_problem("0 3 * *") or "")
    assert "not a valid cron" in (cron_problem("61 3 * * *") or "")
    assert cron_problem("*/15 9-17 * * mon-fri") is None
    assert "IANA" in (zone_problem("Mars/Olympus") or "")
    assert zone_problem("Europe/Paris") is None
