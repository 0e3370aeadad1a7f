"""A run's timeline: each job that ran as a bar on a lane over time, and the
run's critical path, computed from the job rows in the store.

The store does not record which of the scheduler's slots ran a job, so the
lanes are *derived*: jobs sorted by start go to the lowest lane free at
their start (greedy interval partitioning). That uses as many lanes as jobs
ever ran at once, which is the slots the run kept busy, but a job's lane is
not necessarily the slot it ran in.

The store does not record which job waited for which either, so the
critical path is derived from timing alone: from the job that ended last,
each step back goes to the job that ended last before it started. It is
the chain of back-to-back work that explains the run's length; a wait in
it (a gap) shows where nothing on the path was running.

Pure functions over :class:`~stockade.store.records.JobRecord`: the CLI
(``stockade runs RUN --timeline``), the HTTP API and the TUI share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from stockade.store.records import JobRecord

if TYPE_CHECKING:
    from stockade.store import Store

__all__ = ["LANES_DERIVED", "Bar", "Timeline", "build", "for_run", "render_text"]

#: What the ``lanes`` field says about where lanes come from.
LANES_DERIVED = "derived from overlapping intervals (the store does not record slots)"
#: Two intervals this close (seconds) count as back to back, not overlapping.
_EPSILON = 1e-3
#: Characters of the text timeline, by job status; a running bar is open-ended.
_FILL = {"succeeded": "=", "failed": "X", "running": ">", "cancelled": "-", "skipped": "."}
_LABEL_WIDTH = 22


@dataclass(frozen=True)
class Bar:
    """One job on the timeline; times are seconds from the run's start."""

    id: str
    job: str
    step: str | None
    status: str
    lane: int
    start: float
    end: float
    critical: bool


@dataclass(frozen=True)
class Timeline:
    """The bars of a run, the number of lanes, and the critical path."""

    run_id: str
    span: float
    lanes: int
    lanes_from: str
    bars: list[Bar]
    critical_path: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _status(job: JobRecord) -> str:
    if job.state.value == "cancelled" and job.reason == "skipped":
        return "skipped"
    return job.state.value


def _name(job: JobRecord) -> str:
    step = job.step or job.task
    return step if job.item is None else f"{step}[{job.item}]"


def _lanes(intervals: Sequence[tuple[float, float]]) -> list[int]:
    """The lowest free lane of each interval, given in start order."""
    ends: list[float] = []
    lanes: list[int] = []
    for start, end in intervals:
        for lane, busy_until in enumerate(ends):
            if busy_until <= start + _EPSILON:
                ends[lane] = end
                lanes.append(lane)
                break
        else:
            ends.append(end)
            lanes.append(len(ends) - 1)
    return lanes


def _critical(intervals: Sequence[tuple[float, float]]) -> set[int]:
    """Indices of the chain that ends last: each link the interval that
    ended last before the next one started."""
    if not intervals:
        return set()
    current = max(range(len(intervals)), key=lambda i: (intervals[i][1], -intervals[i][0]))
    chain = {current}
    while True:
        start = intervals[current][0]
        before = [i for i, (_, end) in enumerate(intervals) if end <= start + _EPSILON]
        before = [i for i in before if i not in chain and intervals[i][0] < start]
        if not before:
            return chain
        current = max(before, key=lambda i: intervals[i][1])
        chain.add(current)


def _interval(job: JobRecord, origin: float, now: float) -> tuple[float, float]:
    start = job.started_at if job.started_at is not None else origin
    end = job.finished_at if job.finished_at is not None else max(now, start)
    return start - origin, end - origin


def build(run_id: str, jobs: Sequence[JobRecord], *, origin: float | None, now: float) -> Timeline:
    """The timeline of ``jobs`` (a run's); ``origin`` is the run's start
    (else its first job's), ``now`` ends the bars of jobs still running."""
    ran = sorted(
        (j for j in jobs if j.started_at is not None), key=lambda j: (j.started_at or 0.0, j.id)
    )
    # The run's row may be stamped after its first job started (a queued
    # run's start is written with its first batch): the earlier one is zero.
    candidates = [t for t in (origin, ran[0].started_at if ran else None) if t is not None]
    start0 = min(candidates, default=now)
    intervals = [_interval(j, start0, now) for j in ran]
    lanes = _lanes(intervals)
    critical = _critical(intervals)
    bars = [
        Bar(j.id, _name(j), j.step, _status(j), lane, round(start, 3), round(end, 3), i in critical)
        for i, (j, lane, (start, end)) in enumerate(zip(ran, lanes, intervals, strict=True))
    ]
    path = [bar.id for bar in sorted((b for b in bars if b.critical), key=lambda b: b.start)]
    span = max((bar.end for bar in bars), default=0.0)
    return Timeline(run_id, round(span, 3), max(lanes, default=-1) + 1, LANES_DERIVED, bars, path)


def for_run(store: Store, ref: str) -> Timeline:
    """The timeline of the run ``ref`` names (``latest``, an id, a unique prefix)."""
    from stockade.engine.runview import find_run

    run = find_run(store, ref)
    jobs = store.runs.jobs(run.id)
    now = run.finished_at if run.finished_at is not None else store.queries.now()
    return build(run.id, jobs, origin=run.started_at, now=now)


def render_text(timeline: Timeline, width: int = 80) -> str:
    """The timeline as compact text: a row per job, by lane then start.

    ``lane`` and ``*`` (on the critical path) lead the row; the bar is drawn
    with ``=`` succeeded, ``X`` failed, ``>`` running, ``-`` cancelled."""
    if not timeline.bars:
        return "no job has started"
    columns = max(width - _LABEL_WIDTH - 16, 10)
    scale = columns / timeline.span if timeline.span > 0 else 0.0
    lines = []
    for bar in sorted(timeline.bars, key=lambda b: (b.lane, b.start)):
        first = min(int(bar.start * scale), columns - 1)
        last = max(first + 1, min(round(bar.end * scale), columns))
        cells = " " * first + _FILL.get(bar.status, "?") * (last - first)
        name = bar.job if len(bar.job) <= _LABEL_WIDTH else bar.job[: _LABEL_WIDTH - 1] + "…"
        took = f"{bar.end - bar.start:7.1f}s"
        mark = "*" if bar.critical else " "
        lines.append(f"{bar.lane:>2}{mark} {name:<{_LABEL_WIDTH}} |{cells:<{columns}}|{took}")
    lines.append(
        f"{timeline.lanes} lane(s) {timeline.lanes_from}; span {timeline.span:.1f}s; "
        "* critical path; = succeeded X failed > running - cancelled"
    )
    return "\n".join(lines)
