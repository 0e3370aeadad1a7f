"""Load: 1,000 concurrent submissions from a second process on loopback.

The server runs with no embedded workers (``--slots 0``) so the queue only
grows. All 1,000 keyed submissions are in flight from the start over 100
keep-alive connections (:mod:`benchmarks.httpload`, a client cheap enough
that the server, not the client, is what is measured; httpx spent more CPU
per request than the server on a 2-CPU machine). Every accepted submission
must exist exactly once in the store; every refused one must have a clear
status and body. A request whose connection breaks is sent again with the
same idempotency key, as clients are told to. Latency percentiles are
recorded in ``test-artifacts/service-load-{sqlite,postgresql}.json`` as
figures, not asserted (timings belong to ``make bench``). Once on each store.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from benchmarks.httpload import Request, run_load

from tests.server.helpers import ENV_TOKEN, ROOT, Server
from tests.store.fixtures import pg_base, pg_url, sqlite_url, store_url

__all__ = ["pg_base", "pg_url", "sqlite_url", "store_url"]

N = 1000
CONNECTIONS = 100


def submissions(tag: str, n: int = N) -> list[Request]:
    """``n`` keyed submissions of the example config's ``build`` task."""
    auth = ("Authorization", f"Bearer {ENV_TOKEN}")
    return [
        Request(
            "POST",
            "/api/v1/jobs",
            {"task": "build", "input": {"repo": "load", "ref": f"r{i}"}},
            (auth, ("Idempotency-Key", f"{tag}-{i}")),
        )
        for i in range(n)
    ]


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


def test_thousand_concurrent_submissions(tmp_path: Path, store_url: str) -> None:
    url = None if store_url.startswith("sqlite") else store_url
    server = Server(tmp_path / "data", slots=0, database_url=url)
    try:
        started = time.monotonic()
        load = asyncio.run(
            asyncio.wait_for(
                run_load("127.0.0.1", server.port, submissions("load"), CONNECTIONS), 120
            )
        )
        elapsed = time.monotonic() - started
        assert len(load.answers) == N
        # 201: created; 200: a retried request whose first try had created it.
        accepted = {a.index: a.body["id"] for a in load.answers if a.status in (200, 201)}
        refused = [(a.status, a.body) for a in load.answers if a.status not in (200, 201)]
        for status, body in refused:
            assert status in (429, 503), (status, body)
            assert isinstance(body.get("error"), str) and body["error"]
        jobs = _all_jobs(server)
        ids = [job["id"] for job in jobs]
        assert len(ids) == len(set(ids)), "a job was listed twice"
        assert set(accepted.values()) <= set(ids)
        assert len(jobs) == len(accepted), "a job exists that no response accepted"
        by_id = {job["id"]: job for job in jobs}
        for index, job_id in accepted.items():
            assert by_id[job_id]["input"] == {"repo": "load", "ref": f"r{index}"}
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
    figures = {
        "requests": N,
        "connections": CONNECTIONS,
        "accepted": len(accepted),
        "refused": len(refused),
        "reconnects": load.reconnects,
        "seconds": round(elapsed, 3),
        "requests_per_second": round(load.per_second, 1),
        "p50_ms": round(load.percentile(0.5) * 1000, 2),
        "p99_ms": round(load.percentile(0.99) * 1000, 2),
    }
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    kind = "sqlite" if url is None else "postgresql"
    (out / f"service-load-{kind}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(figures)
