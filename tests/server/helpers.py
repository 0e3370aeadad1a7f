"""A real `stockade serve` in a subprocess on a free port, and signing helpers."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "service" / "stockade.yaml"
#: The token whose hash examples/service/stockade.yaml lists.
CONFIG_TOKEN = "stk_example-token-do-not-use"
ENV_TOKEN = "stk_env-token-for-tests-0123456789"
HOOK_SECRET = "hook-secret-never-shown-4711"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`stockade serve` running in a subprocess (on SQLite in ``data_dir``, or
    on the database at ``database_url``)."""

    def __init__(
        self, data_dir: Path, *, slots: int = 1, drain: str = "20s", config: Path = CONFIG,
        env: dict[str, str] | None = None, database_url: str | None = None,
    ) -> None:  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "STOCKADE_TOKEN": ENV_TOKEN, "HOOK_SECRET": HOOK_SECRET, **(env or {})}
        env.pop("STOCKADE_DATABASE_URL", None)
        self.log = data_dir / "serve.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stockade.cli.main", "serve", "--port", str(self.port),
                 "--config", str(config), "--data-dir", str(data_dir), "--slots", str(slots),
                 "--drain-timeout", drain,
                 *(["--database-url", database_url] if database_url else [])],
                env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ENV_TOKEN}"}, timeout=10
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def stop(self, timeout: float = 30) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def sign(body: bytes, secret: str = HOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def push_payload(ref: str = "refs/heads/main", private: bool = False) -> bytes:
    return json.dumps(
        {"ref": ref, "repository": {"full_name": "acme/widget", "private": private}}
    ).encode()


def hook_headers(body: bytes, delivery: str, event: str = "push", **extra: Any) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(body),
        **extra,
    }


def sse_events(text: str) -> list[dict[str, str]]:
    """Parse an SSE body into events (id, event, data)."""
    events = []
    for block in text.split("\n\n"):
        event: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            event[key] = value.removeprefix(" ")
        if "event" in event:
            events.append(event)
    return events


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn in a thread of this process (real HTTP
    on a free port), for tests whose checks live in this process (a span
    exporter, an in-process worker); its base URL. Quicker to start than
    `stockade serve` in a subprocess."""
    import threading

    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
