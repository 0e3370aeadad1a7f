"""Infrastructure failures are transient: retried without spending attempts.

The failing sandboxes below wrap the real ``local`` backend and fail on
purpose once; a real sandbox that fails on demand cannot be had otherwise.
"""

from __future__ import annotations

from stockade.engine.worker import Worker
from stockade.errors import SetupError
from stockade.sandbox.base import LaunchRequest, ProcessHandle, Sandbox
from stockade.sandbox.local import LocalSandbox
from stockade.store import Store
from tests.engine.helpers import state, submit, until, with_worker


class _FlakyLaunch(LocalSandbox):
    failures = 1

    def launch(self, request: LaunchRequest) -> ProcessHandle:
        if _FlakyLaunch.failures:
            _FlakyLaunch.failures -= 1
            raise SetupError("sandbox broke under the job")
        return super().launch(request)


class _FlakySetup(LocalSandbox):
    failures = 1

    def setup(self) -> None:
        if _FlakySetup.failures:
            _FlakySetup.failures -= 1
            raise SetupError("cannot set up the slot yet")
        super().setup()


def test_a_broken_sandbox_returns_the_job_without_spending_an_attempt(
    store: Store, store_url: str
) -> None:
    _FlakyLaunch.failures = 1
    job = submit(store, "echo ok", max_attempts=1)

    async def body(worker: Worker) -> None:
        await until(lambda: state(store, job) == "succeeded")

    def factory(index: int) -> Sandbox:
        return _FlakyLaunch(slot=f"flaky{index}")

    worker = with_worker(store_url, body, slots=1, sandbox=factory)
    record = store.queries.job(job)
    assert (record.attempts, record.runs) == (1, 2)
    first, second = store.queries.attempts(job)
    assert (first.outcome, first.reason) == ("retryable", "infrastructure")
    assert "sandbox broke" in (first.error or "")
    assert second.outcome == "succeeded"
    assert worker.counters.released == 1


def test_slot_setup_is_retried(store: Store, store_url: str) -> None:
    _FlakySetup.failures = 1
    job = submit(store, "echo ok")

    async def body(worker: Worker) -> None:
        await until(lambda: state(store, job) == "succeeded", timeout=10)

    with_worker(store_url, body, slots=1, sandbox=lambda i: _FlakySetup(slot=f"setup{i}"))


def test_a_missing_secret_fails_the_job_without_retry(
    store: Store, store_url: str, monkeypatch: object
) -> None:
    job = submit(store, "echo $API_TOKEN", secrets=["STOCKADE_TEST_ABSENT_TOKEN"])

    async def body(worker: Worker) -> None:
        await until(lambda: state(store, job) == "failed")

    with_worker(store_url, body)
    record = store.queries.job(job)
    assert (record.reason, record.attempts) == ("invalid_job", 1)
    assert "STOCKADE_TEST_ABSENT_TOKEN" in (record.error or "")
