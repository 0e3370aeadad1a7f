"""The HTTP service: submit throughput and latency, and SSE log delivery latency.

**Submit.** ``stockade serve --slots 0`` (nothing runs the jobs, so only the
HTTP path and the store are measured) takes 1,000 keyed ``POST /api/v1/jobs``
submissions over 100 keep-alive loopback connections, every request in
flight from the start, in 5 rounds taking turns with the baseline (the
ratio is the median of the per-round ratios; 500 in 2 rounds with
``--quick``), sent by :mod:`benchmarks.httpload`, a client that costs far
less CPU than the server. Figures: requests/s, and the p99 of the time
from writing a request to reading its answer. Baseline in the same run: a
bare FastAPI app on the same uvicorn settings whose ``POST /api/v1/jobs``
parses the same body into the same pydantic model, checks a bearer token
and answers 201 with a job-sized JSON body, without a store: the cost of
the HTTP stack itself. Target: >= 0.5 of the bare app's requests/s on
SQLite (the store and group commit may cost no more than the HTTP stack).
Once on SQLite and once on PostgreSQL.

**SSE.** ``stockade serve --slots 1`` runs a job that prints a wall-clock
timestamp every 50 ms; a client following ``…/logs/stream`` takes, for
each line, the time it received it minus the time printed in it: delivery
latency from the job's print to the client, median and p99. This includes
the worker's log buffering (chunks are flushed at most 0.2 s after the
first unwritten byte, :mod:`stockade.engine.logsink`) and how the stream
learns of a new chunk: polling every 0.2 s on SQLite, ``LISTEN``/``NOTIFY``
on PostgreSQL. Baseline in the same run: the same command's lines read
straight from its pipe (no store, no HTTP), the floor any log stream sits on.

PostgreSQL comes from ``$STOCKADE_BENCH_PG`` (see ``bench_store``); a
missing server makes its rows ERROR rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from benchmarks import BIN, Row, ms, progress
from benchmarks.bench_store import pg_schema
from benchmarks.httpload import Load, Request, run_load

TOKEN = "stk_bench-token-0123456789abcdef"
CONNECTIONS = 100
SHARE = 0.5
#: The job the SSE rows follow: a second to connect, then a timestamp every 50 ms.
TICKER = 'sleep 1; for i in $(seq {lines}); do echo "T $(date +%s.%N)"; sleep 0.05; done'

_CONFIG = """
version: 1
tasks:
  bench:
    run: 'true'
    max_attempts: 1
  ticker:
    run: '{ticker}'
    timeout: 120s
    max_attempts: 1
"""

_BARE_APP = """
import hmac
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse

from stockade.server.models import SubmitRequest

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
TOKEN = {token!r}
JOB = {job!r}


@app.post("/api/v1/jobs", status_code=201)
async def submit(
    body: SubmitRequest,
    authorization: Annotated[str, Header()] = "",
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    if not hmac.compare_digest(authorization, "Bearer " + TOKEN):
        raise HTTPException(401)
    return JSONResponse({{**JOB, "task": body.task, "input": body.input}}, 201)
"""

#: A job as the API shows it, for the bare app's answers (the same size).
_JOB_VIEW = {
    "id": "0192f3a4b5c6d7e8f90", "task": "bench", "state": "queued", "priority": 0,
    "attempts": 0, "max_attempts": 1, "created_at": 1.7e9, "updated_at": 1.7e9,
    "run_after": 1.7e9, "started_at": None, "finished_at": None, "worker_id": None,
    "cancel_requested": False, "outcome": None, "exit_code": None, "signal": None,
    "reason": None, "error": None, "input": None,
}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], path: str = "/health") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url + path, timeout=1)
            return
        time.sleep(0.1)
    raise RuntimeError("the server did not start")


@contextlib.contextmanager
def _process(cmd: list[str], env: dict[str, str], cwd: Path, ready: str) -> Iterator[int]:
    """Run a server on a free port; yields the port once ``ready`` answers."""
    port = _free_port()
    proc = subprocess.Popen(
        [part.format(port=port) for part in cmd], env=env, cwd=cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{port}", proc, ready)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stockade(work: Path, url: str | None, slots: int) -> contextlib.AbstractContextManager[int]:
    env = {**os.environ, "STOCKADE_TOKEN": TOKEN}
    env.pop("STOCKADE_DATABASE_URL", None)
    cmd = [str(BIN / "stockade"), "serve", "--port", "{port}", "--config", "stockade.yaml",
           "--data-dir", str(work / "data"), "--slots", str(slots),
           "--drain-timeout", "5s"]  # fmt: skip
    if url:
        cmd += ["--database-url", url]
    return _process(cmd, env, work, "/health")


def _bare(work: Path) -> contextlib.AbstractContextManager[int]:
    (work / "bare_app.py").write_text(textwrap.dedent(_BARE_APP.format(token=TOKEN, job=_JOB_VIEW)))
    cmd = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", "{port}",
           "--log-level", "warning", "--no-access-log"]  # fmt: skip
    return _process(cmd, dict(os.environ), work, "/api/v1/jobs")


def _submissions(tag: str, n: int) -> list[Request]:
    auth = ("Authorization", f"Bearer {TOKEN}")
    return [
        Request(
            "POST", "/api/v1/jobs", {"task": "bench", "input": {"n": i}},
            (auth, ("Idempotency-Key", f"{tag}-{i}")),
        )
        for i in range(n)
    ]  # fmt: skip


def _load(port: int, tag: str, n: int) -> Load:
    """``n`` submissions; raises unless every one was accepted."""
    load = asyncio.run(run_load("127.0.0.1", port, _submissions(tag, n), CONNECTIONS))
    refused = [a.status for a in load.answers if a.status != 201]
    if refused or len(load.answers) != n:
        raise RuntimeError(f"{len(refused)} of {n} submissions refused: {refused[:3]}")
    return load


def _servers(stack: contextlib.ExitStack, work: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Start the bare app and ``stockade serve`` on each store; ports, and errors."""
    ports = {"bare": stack.enter_context(_bare(work))}
    errors: dict[str, str] = {}
    for kind in ("sqlite", "postgresql"):
        try:
            url = stack.enter_context(pg_schema()) if kind == "postgresql" else None
            ports[kind] = stack.enter_context(_stockade(work, url, 0))
        except Exception as exc:  # a missing server is an ERROR row, not a crash
            errors[kind] = f"{type(exc).__name__}: {exc}"
    return ports, errors


def _submit_rows(n: int, rounds: int, work: Path) -> list[Row]:
    """Rounds of ``n`` submissions to each server in turn (the order rotating),
    so load elsewhere on the machine hits all of them alike; the ratio is the
    median of the per-round ratios."""
    loads: dict[str, list[Load]] = {}
    with contextlib.ExitStack() as stack:
        ports, errors = _servers(stack, work)
        for name, port in ports.items():
            _load(port, f"{name}-warm", 200)
        names = list(ports)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                progress(f"round {r + 1}/{rounds}: {name}, {n} submissions")
                try:
                    loads.setdefault(name, []).append(_load(ports[name], f"{name}-{r}", n))
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
    if "bare" in errors:
        return [Row(f"submit x{n} (bare FastAPI)", "-", error=errors["bare"])]
    bare = loads["bare"]
    rows: list[Row] = []
    for kind in ("sqlite", "postgresql"):
        if kind in errors:
            rows.append(Row(f"submit x{n} ({kind})", "-", error=errors[kind]))
            continue
        ours = loads[kind]
        share = statistics.median(
            a.per_second / b.per_second for a, b in zip(ours, bare, strict=True)
        )
        target = kind == "sqlite"
        rate = statistics.median(a.per_second for a in ours)
        rows.append(Row(
            f"submit x{n}, {CONNECTIONS} conns ({kind})", f"{rate:.0f} req/s",
            f"{statistics.median(b.per_second for b in bare):.0f} req/s (bare FastAPI)",
            share, f">= {SHARE}" if target else "-", share >= SHARE if target else None,
            note=f"median of {rounds} rounds taking turns",
        ))  # fmt: skip
        p99 = statistics.median(a.percentile(0.99) for a in ours)
        bare99 = statistics.median(b.percentile(0.99) for b in bare)
        p50 = statistics.median(a.percentile(0.5) for a in ours)
        bare50 = statistics.median(b.percentile(0.5) for b in bare)
        rows.append(Row(
            f"  submit p99 latency ({kind})", ms(p99), f"{ms(bare99)} (bare FastAPI)",
            p99 / bare99, note=f"p50 {ms(p50)} vs {ms(bare50)}",
        ))  # fmt: skip
    return rows


def _stamps(text: str, received: float) -> list[float]:
    """Delivery latencies of the timestamp lines in ``text``."""
    return [received - float(line[2:]) for line in text.splitlines() if line.startswith("T ")]


def _follow(port: int, lines: int) -> list[float]:
    """Submit the ticker job and follow its log; one latency per line."""
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        job = client.post("/api/v1/jobs", json={"task": "ticker"}).json()["id"]
        latencies: list[float] = []
        with client.stream("GET", f"/api/v1/jobs/{job}/logs/stream") as resp:
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    if "text" in data:
                        latencies += _stamps(data["text"], time.time())
                elif line.startswith("event: end"):
                    break
    if len(latencies) != lines:
        raise RuntimeError(f"{len(latencies)} of {lines} lines arrived")
    return latencies


def _pipe(lines: int) -> list[float]:
    """The baseline: the ticker's lines read from its stdout as they come."""
    command = TICKER.format(lines=lines).replace("sleep 1; ", "")
    latencies: list[float] = []
    with subprocess.Popen(["sh", "-c", command], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            latencies += _stamps(raw.decode(), time.time())
    return latencies


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]


def _sse_rows(lines: int, work: Path) -> list[Row]:
    progress(f"baseline: {lines} timestamp lines read from a pipe")
    pipe = _pipe(lines)
    rows: list[Row] = []
    for kind, how in (("sqlite", "polling"), ("postgresql", "LISTEN/NOTIFY")):
        progress(f"SSE delivery on {kind} ({how}), {lines} lines")
        try:
            with contextlib.ExitStack() as stack:
                url = stack.enter_context(pg_schema()) if kind == "postgresql" else None
                got = _follow(stack.enter_context(_stockade(work, url, 1)), lines)
        except Exception as exc:
            rows.append(Row(f"SSE delivery ({kind})", "-", error=f"{type(exc).__name__}: {exc}"))
            continue
        median = statistics.median(got)
        rows.append(Row(
            f"SSE print->client median ({kind}, {how})", ms(median),
            f"{ms(statistics.median(pipe))} (read from the pipe)", None,
            note=f"p99 {ms(_p99(got))} (pipe p99 {ms(_p99(pipe))}); includes the worker's "
            "0.2 s log flush" if kind == "sqlite" else f"p99 {ms(_p99(got))}",
        ))  # fmt: skip
    return rows


def run(quick: bool) -> list[Row]:
    n, rounds = (500, 2) if quick else (1000, 5)
    lines = 40 if quick else 100
    with tempfile.TemporaryDirectory(prefix="stockade-bench-server-") as tmp:
        work = Path(tmp)
        (work / "stockade.yaml").write_text(_CONFIG.format(ticker=TICKER.format(lines=lines)))
        return _submit_rows(n, rounds, work) + _sse_rows(lines, work)
