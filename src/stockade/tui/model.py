"""What the TUI shows of a run, read from the store: a snapshot, the tree of
steps → jobs → packages → tests under a filter, and the lines of a log.

Plain data and blocking store reads: the app calls :func:`load` and
:func:`read_log` from worker threads, never on its event loop.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from stockade.engine.runview import find_run, job_status, run_summary
from stockade.engine.timeline import Timeline, build
from stockade.printable import printable
from stockade.store import JobRecord, Store
from stockade.store.runs import TestRecord

__all__ = [
    "TERMINAL", "Filter", "LogCursor", "Node", "Snapshot", "job_name", "load", "read_log", "tree",
]  # fmt: skip

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
#: How many jobs the "slowest" filter shows.
SLOWEST = 10
_ICONS = {
    "succeeded": ("✓", "green"), "failed": ("✗", "bold red"), "running": ("●", "yellow"),
    "cancelled": ("⊘", "magenta"), "skipped": ("○", "dim"), "queued": ("·", "dim"),
    "passed": ("✓", "green"), "pending": ("·", "dim"),
}  # fmt: skip


class Filter(enum.Enum):
    """Which nodes the tree shows."""

    ALL = "all"
    FAILED = "failed"
    RUNNING = "running"
    SLOWEST = "slowest"

    def next(self) -> Filter:
        order = list(Filter)
        return order[(order.index(self) + 1) % len(order)]


@dataclass(frozen=True)
class Snapshot:
    """One read of a run: its summary, jobs, every test result, timeline."""

    run: dict[str, Any]
    jobs: list[JobRecord]
    tests: list[TestRecord]
    timeline: Timeline
    now: float

    @property
    def live(self) -> bool:
        return self.run["state"] not in TERMINAL

    def duration(self, job: JobRecord) -> float | None:
        if job.started_at is None:
            return None
        return (job.finished_at or self.now) - job.started_at


@dataclass
class Node:
    """A tree node: a stable ``key`` (kept across refreshes), its label, children."""

    key: tuple[str, ...]
    label: Text
    children: list[Node] = field(default_factory=list)


def load(store: Store, ref: str) -> Snapshot:
    """Read the run ``ref`` names (``latest``, an id, a unique prefix)."""
    record = find_run(store, ref)
    jobs = store.runs.jobs(record.id)
    order = {name: i for i, name in enumerate(record.steps)}
    jobs.sort(key=lambda j: (order.get(j.step or "", len(order)), j.created_at, j.id))
    tests = store.runs.tests(record.id)
    now = record.finished_at if record.finished_at is not None else store.queries.now()
    timeline = build(record.id, jobs, origin=record.started_at, now=now)
    return Snapshot(run_summary(record), jobs, tests, timeline, now)


def job_name(job: JobRecord) -> str:
    step = job.step or job.task
    return step if job.item is None else f"{step}[{job.item}]"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def _label(status: str, name: str, *extra: str) -> Text:
    icon, style = _ICONS.get(status, ("?", ""))
    text = Text.assemble((icon, style), " ", printable(name))
    for part in extra:
        if part:
            text.append("  " + part, style="dim")
    return text


def _test_nodes(job: JobRecord, tests: list[TestRecord], slowest: bool) -> list[Node]:
    by_package: dict[str, list[TestRecord]] = defaultdict(list)
    for test in tests:
        by_package[test.package].append(test)
    nodes = []
    for package, found in by_package.items():
        cases = sorted(found, key=lambda c: -c.elapsed) if slowest else found
        status = "failed" if any(c.status == "failed" for c in cases) else "passed"
        children = [
            Node(("test", job.id, package, c.test), _label(c.status, c.test or package,
                 _seconds(c.elapsed)))
            for c in cases
        ]  # fmt: skip
        label = _label(status, package or "(no package)", f"{len(cases)} test(s)")
        nodes.append(Node(("package", job.id, package), label, children))
    return nodes


def _job_node(snap: Snapshot, job: JobRecord, tests: list[TestRecord], flt: Filter) -> Node:
    status = job_status(job)
    # The pipeline's words where it has them; no reason that only repeats the status.
    why = job.error or (None if job.reason == status else job.reason)
    label = _label(status, job_name(job), _seconds(snap.duration(job)), printable(why or ""))
    if flt is Filter.FAILED:
        tests = [t for t in tests if t.status == "failed"]
    return Node(("job", job.id), label, _test_nodes(job, tests, flt is Filter.SLOWEST))


def tree(snap: Snapshot, flt: Filter = Filter.ALL) -> list[Node]:
    """The top-level nodes under ``flt``: steps with their jobs, or (slowest)
    the slowest jobs, longest first."""
    tests: dict[str | None, list[TestRecord]] = defaultdict(list)
    for test in snap.tests:
        tests[test.job_id].append(test)
    jobs = snap.jobs
    if flt is Filter.SLOWEST:
        ran = [j for j in jobs if j.started_at is not None]
        ran.sort(key=lambda j: -(snap.duration(j) or 0.0))
        return [_job_node(snap, j, tests[j.id], flt) for j in ran[:SLOWEST]]
    if flt is Filter.FAILED:
        jobs = [
            j for j in jobs
            if job_status(j) == "failed" or any(t.status == "failed" for t in tests[j.id])
        ]  # fmt: skip
    elif flt is Filter.RUNNING:
        jobs = [j for j in jobs if job_status(j) == "running"]
    nodes = []
    for name, step in snap.run["steps"].items():
        mine = [j for j in jobs if j.step == name]
        if flt is not Filter.ALL and not mine:
            continue
        counts = step.get("counts", {})
        done = sum(int(n) for s, n in counts.items() if s in ("succeeded", "failed", "cancelled"))
        label = _label(step.get("status", "queued"), name, f"{done}/{step.get('jobs', 0)}")
        nodes.append(
            Node(("step", name), label, [_job_node(snap, j, tests[j.id], flt) for j in mine])
        )
    return nodes


@dataclass
class LogCursor:
    """Where a job's log was read up to, and the partial line held back."""

    job_id: str
    after: int = 0
    partial: str = ""


def read_log(store: Store, cursor: LogCursor, *, final: bool) -> list[str]:
    """The job's complete log lines stored since ``cursor`` (advancing it),
    colour codes dropped and control characters escaped; ``final`` (the job
    ended) also returns the last line without its newline."""
    lines: list[str] = []
    while True:
        chunks = store.queries.logs(cursor.job_id, after=cursor.after)
        for chunk in chunks:
            cursor.after = chunk.id
            parts = (cursor.partial + chunk.text).split("\n")
            cursor.partial = parts.pop()
            lines += parts
        if len(chunks) < 1000:
            break
    if final and cursor.partial:
        lines.append(cursor.partial)
        cursor.partial = ""
    return [printable(Text.from_ansi(line).plain) for line in lines]
