"""Job-end notifications against real stores, a real HTTP receiver and real commands."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stockade.engine.jobspec import adhoc_task, new_job
from stockade.engine.worker import Worker
from stockade.spec import Config
from stockade.store import JobState, Store
from tests.engine.helpers import state, until, with_worker

SECRET = "s3cret-notify-key"
FAST = {"initial": 0.05, "max": 0.05}


class Receiver:
    """A real HTTP server that answers 500 to its first ``fail`` posts, then 204."""

    def __init__(self, fail: int) -> None:
        self.fail, self.posts = fail, []  # type: ignore[var-annotated]
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((dict(self.headers), body))
                self.send_response(500 if len(receiver.posts) <= receiver.fail else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?token=hidden"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=2)
    yield r
    r.close()


def _submit(store: Store, shell: str, config: dict[str, Any], **task: Any) -> str:
    cfg = Config.model_validate({"tasks": {"t": {"run": shell, **task}}, **config})
    return store.jobs.submit([new_job("t", cfg.tasks["t"], config=cfg)])[0]


def test_a_failed_job_notifies_a_webhook_that_fails_twice_then_a_command(
    store: Store,
    store_url: str,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_KEY", SECRET)
    out = tmp_path / "summary.json"
    copy = f"import sys; open({str(out)!r}, 'wb').write(sys.stdin.buffer.read())"
    config = {"notify": [{"url": receiver.url, "secret": {"env": "NOTIFY_KEY"}, "retry": FAST}]}
    job = _submit(
        store, "echo boom >&2; exit 3", config, max_attempts=1,
        notify=[
            {"on": ["failed"], "command": [sys.executable, "-c", copy]},
            {"on": ["succeeded"], "command": ["false"]},
        ],
    )  # fmt: skip

    def delivered() -> bool:
        return [n["state"] for n in store.outbox.of_job(job)] == ["delivered", "delivered"]

    async def body(worker: Worker) -> None:
        await until(delivered, 20, "both notifications delivered")

    with_worker(store_url, body, send_notifications=0.02)
    assert state(store, job) == "failed"

    assert len(receiver.posts) == 3  # two 500s, then accepted
    bodies = {raw for _, raw in receiver.posts}
    assert len(bodies) == 1  # every try sends the same bytes
    for headers, raw in receiver.posts:
        expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Stockade-Signature-256"], expected)
        assert headers["X-Stockade-Delivery"] == f"{job}.0"
        assert headers["Content-Type"] == "application/json"
    sent = json.loads(receiver.posts[0][1])
    assert sent["event"] == "job.ended"
    assert sent["job"] | {"error": None} == {
        "id": job, "task": "t", "state": "failed", "outcome": "failed", "reason": "failed",
        "error": None, "exit_code": 3, "signal": None, "attempts": 1, "max_attempts": 1,
        "run_id": None, "step": None,
    }  # fmt: skip
    assert json.loads(out.read_bytes())["job"]["id"] == job  # the command got it on stdin

    hook, command = store.outbox.of_job(job)
    assert [t["status"] for t in hook["history"]] == [500, 500, 204]
    assert hook["tries"] == 3 and hook["kind"] == "webhook"
    assert hook["to"] == receiver.url.split("?")[0]  # no query: it may hold a credential
    assert [t["status"] for t in command["history"]] == [0]
    assert SECRET not in json.dumps(store.outbox.of_job(job))

    shown = subprocess.run(
        [sys.executable, "-m", "stockade.cli.main", "show", job],
        env={**os.environ, "STOCKADE_DATABASE_URL": store_url}, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout  # fmt: skip
    assert f"notify    webhook {hook['to']}: delivered after 3 tries" in shown
    assert "  try 1: status 500 (HTTP 500)" in shown
    assert "  try 3: status 204" in shown
    assert f"notify    command {sys.executable} -c" in shown


def test_a_cancelled_queued_job_queues_its_notification(store: Store) -> None:
    config = {"notify": [{"on": ["cancelled"], "command": ["true"]}]}
    job = _submit(store, "true", config)
    store.jobs.cancel([job])
    (note,) = store.outbox.of_job(job)
    assert note["state"] == "pending"
    assert note["kind"] == "command"


def test_a_job_without_notify_queues_nothing(store: Store) -> None:
    job = store.jobs.submit([new_job("t", adhoc_task(shell="true"))])[0]
    store.jobs.cancel([job])
    assert store.outbox.of_job(job) == []


def test_two_senders_never_hold_one_notification(store: Store) -> None:
    config = {"notify": [{"on": ["cancelled"], "command": ["true"]}]}
    job = _submit(store, "true", config)
    store.jobs.cancel([job])
    (first,) = store.outbox.claim(10, 60.0)
    assert store.outbox.claim(10, 60.0) == []  # held by the first sender
    assert store.outbox.record(first, {"status": 0}, delivered=True, retry_in=None)
    assert store.outbox.claim(10, 60.0) == []  # delivered: never again


def test_a_lapsed_claim_is_taken_over_and_its_holder_cannot_record(store: Store) -> None:
    config = {"notify": [{"on": ["cancelled"], "command": ["true"]}]}
    job = _submit(store, "true", config)
    store.jobs.cancel([job])
    (stale,) = store.outbox.claim(10, -1.0)  # a lease already over: the sender died
    (fresh,) = store.outbox.claim(10, 60.0)
    assert fresh.id == stale.id and fresh.tries == 2
    assert not store.outbox.record(stale, {"status": 0}, delivered=True, retry_in=None)
    assert store.outbox.record(fresh, {"status": 1}, delivered=False, retry_in=None)
    assert [n["state"] for n in store.outbox.of_job(job)] == ["failed"]


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ({"on": ["explode"], "command": ["true"]}, "unknown job end 'explode' in on"),
        ({"url": "ftp://x/y"}, r"is not an http\(s\) URL"),
        ({"url": "http://x/", "command": ["true"]}, "exactly one of url and command"),
        ({"command": ["true"], "secret": {"env": "K"}}, "secret signs a webhook"),
        ({"url": "http://x/", "secret": {"value": "k"}}, "never from a literal value"),
        ({"url": "http://x/", "timeout": "2m"}, "less than or equal to 60"),
    ],
)
def test_bad_notify_config_says_what_to_fix(note: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config.model_validate({"tasks": {"t": {"run": "true", "notify": [note]}}})


def test_a_lost_attempt_that_fails_its_job_queues_the_notification(store: Store) -> None:
    config = {"notify": [{"on": ["lease_expired"], "command": ["true"]}]}
    job = _submit(store, "true", config, max_attempts=1)
    store.journal.register_worker("w", 1)
    (claim,) = store.jobs.claim("w", 1, -1.0)  # its lease is already over: the worker vanished
    assert store.jobs.recover_expired() == [(job, JobState.FAILED)]
    (note,) = store.outbox.of_job(job)
    assert note["state"] == "pending" and note["attempt"] == claim.run
    (delivery,) = store.outbox.claim(10, 60.0)
    assert delivery.body["job"]["reason"] == "lease_expired"


def test_a_dependency_failed_dependent_queues_its_notification(store: Store) -> None:
    config = {"notify": [{"on": ["dependency_failed"], "command": ["true"]}]}
    cfg = Config.model_validate({"tasks": {"t": {"run": "false", **config}}})
    (a,) = store.jobs.submit([new_job("t", cfg.tasks["t"], config=cfg)])
    b, c = (dataclasses.replace(new_job("t", cfg.tasks["t"], config=cfg), after=[a]) for _ in "bc")
    (b_id,) = store.jobs.submit([b])
    (c_id,) = store.jobs.submit([dataclasses.replace(c, after=[b_id])])
    store.jobs.cancel([a])  # cancelled, not run: its dependents fail in turn
    for job in (b_id, c_id):
        assert store.queries.job(job).reason == "dependency_failed"
        (note,) = store.outbox.of_job(job)
        assert note["state"] == "pending"
    (d_id,) = store.jobs.submit([dataclasses.replace(b, after=[c_id])])  # fails at submit
    assert [n["state"] for n in store.outbox.of_job(d_id)] == ["pending"]
    bodies = {d.job_id: d.body for d in store.outbox.claim(10, 60.0)}
    assert bodies[b_id]["job"]["error"] == f"job {a} it runs after was cancelled"
