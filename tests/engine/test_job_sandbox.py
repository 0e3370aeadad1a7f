"""A job runs in the sandbox its task declares, whichever worker claims it.

Real workers, real bwrap, real SQLite and PostgreSQL: a worker started with
its defaults used to run a ``sandbox: bwrap`` job as root on the host.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.engine.worker import Worker
from stockade.sandbox.base import Sandbox
from stockade.sandbox.local import LocalSandbox
from stockade.spec.sandbox import SandboxProfile
from stockade.store import Store
from tests.engine.helpers import state, submit, until, with_worker

#: uid a bwrap job runs as (``nobody``), unlike the root the tests run as.
NOBODY = "65534"


def _stdout(store: Store, job: str) -> str:
    return str((store.queries.outputs(job) or {}).get("stdout", ""))


def test_a_bwrap_job_runs_in_bwrap_on_a_worker_started_with_defaults(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    host = tmp_path / "host"
    host.mkdir()
    line = f"id -u; touch {host}/escaped 2>/dev/null; true"
    sandboxed = submit(store, line, sandbox="bwrap")
    plain = submit(store, "id -u")
    again = submit(store, line, sandbox="bwrap")
    jobs = (sandboxed, plain, again)

    async def body(worker: Worker) -> None:
        await until(lambda: all(state(store, j) == "succeeded" for j in jobs), timeout=30)

    # One slot: it is set up in bwrap, then in the default, then in bwrap again.
    with_worker(store_url, body, slots=1)
    assert _stdout(store, sandboxed).strip() == NOBODY
    assert _stdout(store, again).strip() == NOBODY
    assert _stdout(store, plain).strip() == "0"  # a job that declares none: the default
    assert not (host / "escaped").exists()
    assert store.queries.job(sandboxed).sandbox == "bwrap"
    assert store.queries.job(plain).sandbox is None


def test_a_worker_that_does_not_offer_a_jobs_sandbox_leaves_it_queued_and_says_why(
    store: Store, store_url: str
) -> None:
    job = submit(store, "id -u", sandbox="bwrap")
    other = submit(store, "true")

    async def local_only(worker: Worker) -> None:
        await until(lambda: state(store, other) == "succeeded")
        await until(lambda: store.queries.job(job).waiting is not None)
        assert state(store, job) == "queued"
        assert store.queries.job(job).waiting == "no live worker offers sandbox 'bwrap'"
        assert store.queries.unservable() == {"bwrap": (1, "no live worker offers sandbox 'bwrap'")}

    with_worker(store_url, local_only, offers=("local",))

    async def with_bwrap(worker: Worker) -> None:
        await until(lambda: state(store, job) == "succeeded", timeout=30)

    with_worker(store_url, with_bwrap, offers=("local", "bwrap"))
    assert _stdout(store, job).strip() == NOBODY
    assert store.queries.job(job).waiting is None
    assert store.queries.unservable() == {}


def test_a_slot_that_would_run_a_job_weaker_than_declared_gives_it_back_unrun(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    """Defence in depth: a profile factory that hands out a host sandbox for a
    bwrap profile (a bug the worker must not trust) never gets the job run."""
    marker = tmp_path / "ran"
    job = submit(store, f"touch {marker}", sandbox="bwrap", max_attempts=1)

    def wrong(index: int, profile: SandboxProfile) -> Sandbox:
        return LocalSandbox(slot=f"wrong{index}")

    async def body(worker: Worker) -> None:
        await until(lambda: len(store.queries.attempts(job)) >= 2, timeout=30)

    with_worker(store_url, body, slots=1, profiles=wrong)
    assert not marker.exists()
    assert state(store, job) != "succeeded"
    first = store.queries.attempts(job)[0]
    assert (first.reason, first.outcome) == ("infrastructure", "retryable")
    assert "was not run" in (first.error or "")


@pytest.mark.parametrize("offers", [("local",), None])
def test_a_claim_takes_only_jobs_whose_sandbox_the_worker_offers(
    store: Store, offers: tuple[str, ...] | None
) -> None:
    needs_bwrap = submit(store, "true", sandbox="bwrap")
    needs_none = submit(store, "true")
    needs_local = submit(store, "true", sandbox="local")
    claimed = {c.job_id for c in store.jobs.claim("w", 10, 30, offers)}
    if offers is None:
        assert claimed == {needs_bwrap, needs_none, needs_local}
    else:
        assert claimed == {needs_none, needs_local}
