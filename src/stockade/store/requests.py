"""What users ask of jobs: cancel them, retry them (part of the job manager)."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockade.runner.result import Outcome
from stockade.store import schema as t
from stockade.store.base import CANCEL_CHANNEL, JOBS_CHANNEL, ManagerBase, notify_logs
from stockade.store.rows import dedupe
from stockade.store.schema import epoch_now
from stockade.store.states import ALLOWED, JobState, check

__all__ = ["UserRequests"]

Q, R = JobState.QUEUED, JobState.RUNNING


class UserRequests(ManagerBase):
    """Cancel and retry, by id; each call one transaction."""

    def cancel(self, job_ids: Iterable[str]) -> dict[str, str]:
        """Cancel jobs: a queued one at once, a running one by asking its worker
        to stop it (the worker records ``cancelled``). ``{job: what happened}``:
        ``cancelled``, ``cancelling``, ``already <state>`` or ``not found``."""
        ids, jobs = dedupe(job_ids), t.jobs
        done: dict[str, str] = {}
        with self.db.transaction() as conn:
            query = sa.select(jobs.c.id, jobs.c.state).where(jobs.c.id.in_(ids)).with_for_update()
            states = {jid: JobState(state) for jid, state in conn.execute(query)}
            for jid in ids:
                done[jid] = self._cancel_one(conn, jid, states.get(jid))
            if "cancelling" in done.values():
                for jid in (j for j, what in done.items() if what == "cancelling"):
                    self.db.notify(conn, CANCEL_CHANNEL, jid)
            if "cancelled" in done.values():  # ended while queued: its log streams end
                notify_logs(self.db, conn, (j for j, what in done.items() if what == "cancelled"))
        return done

    def _cancel_one(self, conn: Connection, job_id: str, state: JobState | None) -> str:
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
                    reason="cancelled_by_user",
                    finished_at=now,
                    updated_at=now,
                )
            )
            self._event(conn, job_id, None, "cancelled", {"by": "user"})
            return "cancelled"
        if state is R:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == R.value)
                .values(cancel_requested=True, updated_at=now)
            )
            self._event(conn, job_id, None, "cancel_requested", {"by": "user"})
            return "cancelling"
        return f"already {state.value}"

    def retry(self, job_ids: Iterable[str]) -> dict[str, str]:
        """Queue failed or cancelled jobs again with a fresh set of attempts.
        ``{job: "queued" | "already <state>" | "not found"}``."""
        ids, jobs, now = dedupe(job_ids), t.jobs, epoch_now()
        done: dict[str, str] = {}
        with self.db.transaction() as conn:
            query = sa.select(jobs.c.id, jobs.c.state).where(jobs.c.id.in_(ids)).with_for_update()
            states = {jid: JobState(state) for jid, state in conn.execute(query)}
            for jid in ids:
                state = states.get(jid)
                if state is None:
                    done[jid] = "not found"
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
            if "queued" in done.values():
                self.db.notify(conn, JOBS_CHANNEL)
        return done
