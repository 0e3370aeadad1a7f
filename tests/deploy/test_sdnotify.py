"""Readiness, watchdog and stopping via ``sd_notify``, as systemd receives them:
on a Unix datagram socket this test binds and passes as ``$NOTIFY_SOCKET``."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from stockade.sdnotify import Notifier
from tests.deploy.procs import STOCKADE, Notifications, run_job, start_serve


@pytest.fixture
def listener(tmp_path: Path) -> Notifications:
    return Notifications(str(tmp_path / "notify.sock"))


def test_worker_tells_systemd_ready_watchdog_and_stopping(
    store_url: str, listener: Notifications
) -> None:
    env = dict(
        os.environ, STOCKADE_DATABASE_URL=store_url, NOTIFY_SOCKET=listener.address,
        WATCHDOG_USEC="200000",
    )  # fmt: skip
    worker = subprocess.Popen(
        [*STOCKADE, "worker", "--slots", "1", "--name", "w-notify", "-q"], env=env
    )
    try:
        states = listener.wait_for("READY=1")
        assert "STATUS=worker w-notify: 1 slot(s)" in listener.states()
        assert states[0].startswith("READY=1")  # no watchdog ping before ready
        listener.wait_for("WATCHDOG=1")
        # The listener reads nothing more now: its queue (10 datagrams by
        # default) fills with pings, and the worker must go on working.
        listener.wait_full()
        # A job does not inherit the socket: it cannot speak for the worker.
        job = subprocess.run(
            [*STOCKADE, "submit", "--wait", "--max-attempts", "1", "--shell",
             'test -z "$NOTIFY_SOCKET$WATCHDOG_USEC"'],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert job.returncode == 0, job.stderr
        worker.send_signal(signal.SIGTERM)
        listener.wait_for("STOPPING=1")
        assert worker.wait(30) == 0
    finally:
        worker.kill()
        listener.close()


def test_serve_is_ready_once_it_answers(tmp_path: Path) -> None:
    listener = Notifications(f"@stockade-test-{os.getpid()}-{tmp_path.name}")
    proc, url, _ = start_serve(
        tmp_path, env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "200000"}
    )
    try:
        listener.wait_for("READY=1")
        run_job(url)  # the embedded worker runs jobs, and says nothing of its own
        listener.wait_for("WATCHDOG=1")
        proc.send_signal(signal.SIGTERM)
        listener.wait_for("STOPPING=1")
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        listener.close()
    assert listener.states().count("READY=1") == 1


def test_the_variables_are_read_once_and_not_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "@stockade-abstract")
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert Notifier.from_environment() == Notifier("\0stockade-abstract", 2.0)
    assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} & os.environ.keys()
    assert Notifier.from_environment() == Notifier(None, None)


def test_no_socket_no_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/not-a-socket-address")
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")  # the watchdog is another process's
    notifier = Notifier.from_environment()
    assert notifier == Notifier(None, None)
    assert notifier.notify("READY=1") is False
