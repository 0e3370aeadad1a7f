"""A real `stockade serve` or `stockade worker` for the production tests, and
the systemd side of ``sd_notify``: a datagram socket that collects states."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.server.helpers import free_port

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
TOKEN = "stk_production-tests-0123456789"
CONFIG = "version: 1\ntasks:\n  hello:\n    run: 'echo hello'\n    max_attempts: 1\n"


class Notifications:
    """What systemd would receive on ``$NOTIFY_SOCKET``: a Unix datagram
    socket bound at ``path`` (a file, or ``@name`` in the abstract namespace)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.messages: list[str] = []

    def wait_for(self, state: str, timeout: float = 30) -> list[str]:
        """Read until a message holds ``state`` (a ``KEY=VALUE`` line); all read so far."""
        deadline = time.monotonic() + timeout
        while state not in self.states():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {state} in {self.messages}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return self.messages

    def wait_full(self, timeout: float = 30) -> None:
        """Read nothing and wait until the socket's queue is full, as a sender
        finds it (EAGAIN): a probe datagram every 50 ms adds to what fills it."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    probe.sendto(b"PROBE=1", socket.MSG_DONTWAIT, target)
                except BlockingIOError:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError("the notification socket's queue never filled")
                time.sleep(0.05)
        finally:
            probe.close()

    def states(self) -> list[str]:
        return [line for message in self.messages for line in message.split("\n")]

    def close(self) -> None:
        self.sock.close()


def start_serve(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`stockade serve` on SQLite in ``tmp_path`` (its process, URL and stderr
    file), once /health answers."""
    (tmp_path / "stockade.yaml").write_text(CONFIG)
    port = free_port()
    log = tmp_path / "serve.err"
    full_env = {**os.environ, "STOCKADE_TOKEN": TOKEN, **(env or {})}
    full_env.pop("STOCKADE_DATABASE_URL", None)
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*STOCKADE, "serve", "--port", str(port), "--config", str(tmp_path / "stockade.yaml"),
             "--data-dir", str(tmp_path / "data"), *args],
            env=full_env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, log
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"serve did not start: {log.read_text()}")


def run_job(url: str) -> str:
    """Queue a `hello` job over HTTP and wait until it ends; its id."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        made = client.post("/api/v1/jobs", json={"task": "hello", "input": {}})
        assert made.status_code == 201, made.text
        job_id: str = made.json()["id"]
        deadline = time.monotonic() + 30
        while client.get(f"/api/v1/jobs/{job_id}").json()["state"] != "succeeded":
            assert time.monotonic() < deadline, "job did not succeed"
            time.sleep(0.1)
    return job_id
