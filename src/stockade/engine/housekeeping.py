"""The fleet's shared chores: firing schedules and applying retention.

Every worker and every `stockade serve` runs :class:`Chores` as a periodic
task of its own; any number may run at once. Firing is exactly once per tick
(:mod:`~stockade.store.schedules`); retention deletes one small batch per
pass with ``SKIP LOCKED`` (:mod:`~stockade.store.retention`), so passes on
several processes share the work instead of repeating it.

A process given the config first stores its ``schedules:`` and
``retention:`` (:func:`define`), so that workers started without the config
fire the same schedules and apply the same policy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stockade.engine.jobspec import new_job
from stockade.spec import Config
from stockade.store import Store
from stockade.store.retention import Pruned
from stockade.store.schedules import Fired, ScheduleDef

__all__ = ["Chores", "define", "remove_files", "schedule_defs"]

log = logging.getLogger("stockade.worker")

#: Seconds between two passes that fire schedules.
FIRE_EVERY = 1.0
#: Seconds between two retention batches while there is nothing to delete
#: (while a batch is full, the next one comes at the next pass).
PRUNE_EVERY = 10.0
#: Seconds the stored retention policy is reused before being read again.
POLICY_TTL = 30.0
#: Jobs one retention batch deletes at most (one short transaction).
PRUNE_BATCH = 200
#: Seconds a pass goes on deleting full batches (each its own transaction):
#: one batch a pass deleted 200 jobs a second, fewer than a busy worker ends.
PRUNE_BUDGET = 0.25


def schedule_defs(config: Config) -> list[ScheduleDef]:
    """The config's schedules, each with the job its ticks submit (the task
    frozen as a submit would freeze it)."""
    return [
        ScheduleDef(
            name,
            spec.cron,
            spec.timezone,
            spec.catch_up.value,
            new_job(spec.task, config.task(spec.task), config=config, input=spec.input),
        )
        for name, spec in config.schedules.items()
    ]


def define(store: Store, config: Config) -> None:
    """Store the config's schedules and retention policy for the whole fleet."""
    store.schedules.define(schedule_defs(config))
    store.retention.set_policy(config.retention.ages())


def remove_files(data_dir: str | Path | None, jobs: list[tuple[str, int]]) -> int:
    """Remove what this host's data directory holds for ``jobs`` (their
    attempts' structured logs, ``logs/JOB.N.jsonl``, and their artifacts);
    how many log files went. Unlinking never follows a link; ids are the
    store's own hex ids."""
    from stockade.artifactstore import delete_artifacts

    base = Path(data_dir or os.environ.get("STOCKADE_DATA_DIR") or ".stockade") / "logs"
    removed = 0
    for job_id, runs in jobs:
        if not job_id.isalnum():
            continue
        delete_artifacts(job_id, data_dir)
        for attempt in range(1, runs + 1):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                (base / f"{job_id}.{attempt}.jsonl").unlink()
                removed += 1
    return removed


@dataclass
class Chores:
    """The periodic pass: due schedules, then a retention batch when due.

    :meth:`run` is blocking (store calls): call it from the store's thread.
    """

    store: Store
    data_dir: str | None = None
    prune_every: float = PRUNE_EVERY
    policy_ttl: float = POLICY_TTL
    #: The epoch clock retention measures ages on (``None``: the database's).
    epoch: Callable[[], float] | None = None
    _next_prune: float = field(default=0.0, repr=False)
    _policy: tuple[float, dict[str, float]] | None = field(default=None, repr=False)

    def run(self, now: float | None = None) -> tuple[list[Fired], Pruned]:
        """One pass (``now``: a monotonic time, for when to prune next)."""
        now = time.monotonic() if now is None else now
        fired = self.store.schedules.fire_due()
        for one in fired:
            if one.job_ids:
                log.info("schedule %s: submitted %s", one.name, ", ".join(one.job_ids))
            if one.skipped:
                log.info("schedule %s: skipped %d missed tick(s)", one.name, one.skipped)
            if one.error:
                log.warning("schedule %s: cannot fire it here: %s", one.name, one.error)
        pruned = Pruned()
        if now >= self._next_prune:
            pruned, more = self._prune(self.policy(now))
            self._next_prune = now if more else now + self.prune_every
            if pruned.jobs:
                log.debug("retention: deleted %d job(s)", len(pruned.jobs))
        return fired, pruned

    def _prune(self, policy: dict[str, float]) -> tuple[Pruned, bool]:
        """Batches while they come back full, for up to :data:`PRUNE_BUDGET`
        seconds; what went, and whether there may be more (the last was full)."""
        total, deadline = Pruned(), time.monotonic() + PRUNE_BUDGET
        while True:
            clock = self.epoch() if self.epoch is not None else None
            batch = self.store.retention.prune(policy, limit=PRUNE_BATCH, now=clock)
            remove_files(self.data_dir, batch.jobs)
            total += batch
            more = len(batch.jobs) >= PRUNE_BATCH
            if not more or time.monotonic() >= deadline:
                return total, more

    def policy(self, now: float) -> dict[str, float]:
        """The stored retention policy, read at most every ``policy_ttl`` seconds."""
        if self._policy is None or now - self._policy[0] > self.policy_ttl:
            self._policy = (now, self.store.retention.policy())
        return self._policy[1]
