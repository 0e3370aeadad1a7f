"""What users ask of jobs: cancel them, retry them (part of the job manager)."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockade.reasons import Reason
from stockade.runner.result import Outcome
from stockade.store import gates
from stockade.store import schema as t
from stockade.store.base import CANCEL_CHANNEL, JOBS_CHANNEL, ManagerBase, notify_logs
from stockade.store.outbox import queue_ended
from stockade.store.rows import dedupe
from stockade.store.schema import epoch_now
from stockade.store.states import ALLOWED, JobState, check

__all__ = ["UserRequests"]

Q, R = JobState.QUEUED, JobState.RUNNING


def _locked(
    conn: Connection, ids: list[str]
) -> tuple[dict[str, JobState], dict[str, str], set[str]]:
    """Lock the rows of ``ids``: their states, the pipeline run of those
    that belong to one, and those already asked to stop."""
    jobs = t.jobs
    query = (
        sa.select(jobs.c.id, jobs.c.state, jobs.c.run_id, jobs.c.cancel_requested)
        .where(jobs.c.id.in_(ids))
        .with_for_update()
    )
    states: dict[str, JobState] = {}
    runs: dict[str, str] = {}
    stopping: set[str] = set()
    for jid, state, run_id, cancel in conn.execute(query):
        states[jid] = JobState(state)
        if run_id is not None:
            runs[jid] = run_id
        if cancel:
            stopping.add(jid)
    return states, runs, stopping


def _in_run(run_id: str, instead: str) -> str:
    """Why a job of a pipeline run is left alone: its run's scheduler owns it
    (no worker would see a cancel flag; a requeued job would run outside its run)."""
    return f"refused: part of pipeline run {run_id}; use `{instead.replace('RUN', run_id)}`"


def _by(superseded_by: str | None) -> dict[str, str]:
    """Who asked a cancel, for its event."""
    if superseded_by is None:
        return {"by": "user"}
    return {"by": "superseded", "job": superseded_by}


class UserRequests(ManagerBase):
    """Cancel and retry, by id; each call one transaction."""

    def cancel(
        self, job_ids: Iterable[str], *, force: bool = False, superseded_by: str | None = None
    ) -> dict[str, str]:
        """Cancel jobs: a queued one at once, a running one by asking its worker
        to stop it (stop signal, grace, SIGKILL; the worker records
        ``cancelled``). A running job cancelled again while it stops, or with
        ``force``, is killed at once instead (SIGKILL, no grace).
        ``{job: what happened}``: ``cancelled``, ``cancelling``, ``killing``,
        ``already <state>`` or ``not found``. ``superseded_by``: the job with
        ``cancel_in_progress`` that replaces these (reason ``superseded``)."""
        ids = dedupe(job_ids)
        done: dict[str, str] = {}
        with self.db.transaction() as conn:
            states, runs, stopping = _locked(conn, ids)
            for jid in ids:
                if jid in runs:
                    done[jid] = _in_run(runs[jid], "stockade runs RUN --cancel")
                    continue
                done[jid] = self._cancel_one(
                    conn, jid, states.get(jid), force=force or jid in stopping, by=superseded_by
                )
            for jid, what in done.items():
                if what in ("cancelling", "killing"):
                    self.db.notify(conn, CANCEL_CHANNEL, jid)
            if "cancelled" in done.values():  # ended while queued: its log streams end
                ended = [j for j, what in done.items() if what == "cancelled"]
                notify_logs(self.db, conn, ended)
                queue_ended(conn, ended)
                with self.db.direct_on(conn) as tx:  # its slot, the jobs waiting on it
                    gates.settle_ids(tx, ended)
        return done

    def _cancel_one(
        self, conn: Connection, job_id: str, state: JobState | None, *, force: bool,
        by: str | None = None,
    ) -> str:  # fmt: skip
        jobs, now = t.jobs, epoch_now()
        if state is None:
            return "not found"
        if state is Q:
            check(Q, JobState.CANCELLED)
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == Q.value)
                .values(
                    state=JobState.CANCELLED.value,
                    outcome=Outcome.CANCELLED.value,
                    reason=Reason.CANCELLED_BY_USER if by is None else Reason.SUPERSEDED,
                    error=None if by is None else f"superseded by job {by}",
                    finished_at=now,
                    updated_at=now,
                )
            )
            self._event(conn, job_id, None, "cancelled", _by(by))
            return "cancelled"
        if state is R:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == R.value)
                .values(cancel_requested=True, cancel_forced=force, updated_at=now)
            )
            self._event(conn, job_id, None, "cancel_requested", {**_by(by), "force": force})
            return "killing" if force else "cancelling"
        return f"already {state.value}"

    def retry(self, job_ids: Iterable[str]) -> dict[str, str]:
        """Queue failed or cancelled jobs again with a fresh set of attempts.
        ``{job: "queued" | "already <state>" | "not found"}``."""
        ids, jobs, now = dedupe(job_ids), t.jobs, epoch_now()
        done: dict[str, str] = {}
        with self.db.transaction() as conn:
            states, runs, _ = _locked(conn, ids)
            for jid in ids:
                state = states.get(jid)
                if state is None:
                    done[jid] = "not found"
                elif jid in runs:
                    done[jid] = _in_run(runs[jid], "stockade rerun RUN STEP/ITEM")
                elif Q not in ALLOWED[state]:
                    done[jid] = f"already {state.value}"
                else:
                    check(state, Q)
                    conn.execute(
                        sa.update(jobs)
                        .where(jobs.c.id == jid, jobs.c.state == state.value)
                        .values(
                            state=Q.value,
                            attempts=0,
                            transient=0,
                            cancel_requested=False,
                            cancel_forced=False,
                            run_after=now,
                            updated_at=now,
                            finished_at=None,
                            outcome=None,
                            reason=None,
                            error=None,
                            exit_code=None,
                            signal=None,
                        )
                    )
                    self._event(conn, jid, None, "queued", {"by": "retry"})
                    done[jid] = "queued"
            with self.db.direct_on(conn) as tx:
                if "queued" in done.values():
                    self.db.notify(conn, JOBS_CHANNEL)  # held again if keyed or waiting:
                    gates.requeue(tx, [j for j, what in done.items() if what == "queued"])
                gates.decide_locked(tx, [j for j, what in done.items() if what != "queued"])
        return done
