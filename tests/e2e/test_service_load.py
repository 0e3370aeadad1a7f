"""Load: 1,000 concurrent submissions from a second process on loopback.

The server runs with no embedded workers (``--slots 0``) so the queue only
grows. Every accepted submission must exist exactly once in the store; every
refused one must have a clear status and body. A request whose connection
breaks is retried with the same idempotency key, as clients are told to. Latency percentiles are
recorded in ``test-artifacts/service-load.json`` as figures, not asserted
(timings belong to ``make bench``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import httpx

from tests.server.helpers import ENV_TOKEN, ROOT, Server

N = 1000
CONCURRENCY = 100
RETRIES = 3


async def _submit_all(url: str) -> list[tuple[int, int, dict[str, object], float]]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    headers = {"Authorization": f"Bearer {ENV_TOKEN}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=60
    ) as client:

        async def one(i: int) -> tuple[int, int, dict[str, object], float]:
            body = {"task": "build", "input": {"repo": "load", "ref": f"r{i}"}}
            key = {"Idempotency-Key": f"load-{i}"}
            started = time.perf_counter()
            for attempt in range(RETRIES):
                # A connection the server closed under load is retried with the
                # same key, as a client should: the key makes the retry safe.
                try:
                    resp = await client.post("/api/v1/jobs", json=body, headers=key)
                    break
                except httpx.TransportError:
                    if attempt == RETRIES - 1:
                        raise
                    await asyncio.sleep(0.1)
            return i, resp.status_code, resp.json(), time.perf_counter() - started

        return await asyncio.gather(*(one(i) for i in range(N)))


def _all_jobs(server: Server) -> list[dict[str, object]]:
    jobs: list[dict[str, object]] = []
    after = None
    while True:
        params: dict[str, object] = {"limit": 500, **({"after": after} if after else {})}
        page = server.client.get("/api/v1/jobs", params=params).json()
        jobs.extend(page["jobs"])
        after = page.get("next")
        if not after:
            return jobs


def test_thousand_concurrent_submissions(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", slots=0)
    try:
        started = time.monotonic()
        results = asyncio.run(asyncio.wait_for(_submit_all(server.url), 120))
        elapsed = time.monotonic() - started
        # 201: created; 200: a retried request whose first try had created it.
        accepted = {i: body["id"] for i, status, body, _ in results if status in (200, 201)}
        refused = [(status, body) for _, status, body, _ in results if status not in (200, 201)]
        for status, body in refused:
            assert status in (429, 503), (status, body)
            assert isinstance(body.get("error"), str) and body["error"]
        jobs = _all_jobs(server)
        ids = [job["id"] for job in jobs]
        assert len(ids) == len(set(ids)), "a job was listed twice"
        assert set(accepted.values()) <= set(ids)
        assert len(jobs) == len(accepted), "a job exists that no response accepted"
        # A retried request with the same key never makes a second job.
        again = server.client.post(
            "/api/v1/jobs",
            json={"task": "build", "input": {"repo": "load", "ref": "r7"}},
            headers={"Idempotency-Key": "load-7"},
        )
        if 7 in accepted:
            assert again.status_code == 200 and again.json()["id"] == accepted[7]
    finally:
        assert server.stop() == 0
    latencies = sorted(lat for *_, lat in results)
    figures = {
        "requests": N,
        "concurrency": CONCURRENCY,
        "accepted": len(accepted),
        "refused": len(refused),
        "seconds": round(elapsed, 3),
        "requests_per_second": round(N / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "service-load.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(figures)
