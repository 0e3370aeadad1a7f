"""When a schedule's ticks fall, and which of them to submit at a given ``now``.

Pure: :class:`Ticker` is given the time and never reads a clock, so catch-up
after any downtime is tested without waiting for a minute to pass.

Cron expressions are read by croniter (MIT; maintained, the cron parser of
Apache Airflow): five fields (minute hour day month weekday) with ranges,
steps, lists and names, evaluated in the schedule's time zone (IANA name,
through :mod:`zoneinfo`). A local time that a daylight-saving change skips
fires at the first instant after the gap; one that happens twice fires once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["MAX_TICKS", "ON_TIME", "CatchUp", "Due", "Ticker", "cron_problem", "zone_problem"]

#: The most ticks one pass submits for one schedule (``catch_up: all`` after
#: a long downtime); the rest are submitted by the next passes.
MAX_TICKS = 100
#: Seconds after its time within which a tick is on time, not missed: what
#: ``catch_up: none`` still submits (a pass runs every second or so).
ON_TIME = 60.0


def _croniter() -> Any:
    """croniter's class, imported on first use: reading ``stockade.yaml``
    imports this module for :class:`CatchUp`, and most configs have no
    schedule (croniter's import runs a subprocess)."""
    from croniter import croniter  # type: ignore[import-untyped]

    return croniter


class CatchUp(enum.StrEnum):
    """What a schedule does with ticks missed while nothing ran."""

    LATEST = "latest"  # submit the most recent missed tick once
    ALL = "all"  # submit every missed tick, oldest first
    NONE = "none"  # skip them; submit only a tick that is on time


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a five-field cron expression, or ``None``."""
    if len(expression.split()) != 5:
        return (
            f"cron {expression!r} must have five fields (minute hour day month weekday), "
            'like "0 3 * * *"'
        )
    if not _croniter().is_valid(expression):
        return f'cron {expression!r} is not a valid cron expression (e.g. "*/15 * * * *")'
    return None


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not a time zone this host knows, or ``None``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r} (an IANA name like UTC or Europe/Paris)"
    return None


@dataclass(frozen=True)
class Due:
    """A pass's decision: the ticks to submit (epoch seconds, oldest first)
    and the schedule's next unfired tick after them."""

    ticks: list[float]
    next_at: float
    skipped: int = 0


@dataclass(frozen=True)
class Ticker:
    """One schedule's tick arithmetic."""

    cron: str
    timezone: str = "UTC"
    catch_up: CatchUp = CatchUp.LATEST
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", ZoneInfo(self.timezone))

    def _at(self, when: float) -> datetime:
        return datetime.fromtimestamp(when, self.zone)

    def next_after(self, when: float) -> float:
        """The first tick strictly after ``when``."""
        value: float = _croniter()(self.cron, self._at(when)).get_next(float)
        return value

    def latest(self, now: float) -> float:
        """The last tick at or before ``now``."""
        # get_prev is strictly before its start: start just after now.
        value: float = _croniter()(self.cron, self._at(now) + timedelta(microseconds=1)).get_prev(
            float
        )
        return value

    def due(self, next_at: float, now: float) -> Due:
        """Which ticks to submit at ``now`` when ``next_at`` is the first one
        not submitted yet; nothing before ``next_at`` is ever submitted again."""
        if next_at > now:
            return Due([], next_at)
        if self.catch_up is CatchUp.ALL:
            ticks: list[float] = []
            tick = next_at
            while tick <= now and len(ticks) < MAX_TICKS:
                ticks.append(tick)
                tick = self.next_after(tick)
            return Due(ticks, tick)
        latest = max(self.latest(now), next_at)
        following = self.next_after(latest)
        missed = self._count(next_at, latest)
        if self.catch_up is CatchUp.NONE and now - latest > ON_TIME:
            return Due([], following, skipped=missed + 1)
        return Due([latest], following, skipped=missed)

    def _count(self, first: float, last: float) -> int:
        """Ticks from ``first`` up to ``last`` excluded (at most :data:`MAX_TICKS`)."""
        count, tick = 0, first
        while tick < last and count < MAX_TICKS:
            count += 1
            tick = self.next_after(tick)
        return count
