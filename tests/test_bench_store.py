"""The store benchmark's peers at a tiny size: each runs every job exactly
once (counted by the jobs' own records), and leaves nothing behind in
Redis or PostgreSQL; the comparison table lists them beside stockade."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis
from benchmarks.bench_store import PEERS, compare
from benchmarks.peers import PG, Peer, measure, redis_db
from benchmarks.peers.redisdb import RedisPeer

N = 20


@pytest.fixture(scope="module", autouse=True)
def _servers() -> None:
    try:
        with redis.Redis.from_url(redis_db(0)) as client:
            client.ping()
        psycopg.connect(PG, connect_timeout=5).close()
    except (redis.RedisError, psycopg.Error) as exc:
        pytest.skip(f"needs the local Redis and PostgreSQL: {exc}")


def _databases() -> set[str]:
    with psycopg.connect(PG) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


@pytest.mark.parametrize("peer", PEERS, ids=lambda p: p.name)
def test_a_peer_runs_each_job_once_and_cleans_up(peer: type[Peer], tmp_path: Path) -> None:
    if why := peer.available():
        pytest.skip(why)
    before = _databases()
    run = peer(tmp_path)
    measured = measure(run, N)
    assert sorted(run.done()) == list(range(N + 1))  # the warm-up job, then N
    assert measured.rate > 0
    assert measured.cpu_per_job > 0
    assert all(proc.poll() is not None for proc in run.workers)
    if isinstance(run, RedisPeer):
        with redis.Redis.from_url(run.url) as client:
            assert client.dbsize() == 0
    assert _databases() == before


def test_a_failed_run_still_stops_its_workers_and_cleans_up(tmp_path: Path) -> None:
    ready = [p for p in PEERS if issubclass(p, RedisPeer) and not p.available()]
    if not ready:
        pytest.skip("no Redis peer installed")

    class Failing(ready[0]):  # type: ignore[valid-type,misc]
        def submit(self, first: int, count: int) -> None:
            super().submit(first, count)
            raise RuntimeError("the submit failed half-way")

    run = Failing(tmp_path)
    with pytest.raises(RuntimeError, match="half-way"):
        measure(run, N)
    assert run.workers
    assert all(proc.poll() is not None for proc in run.workers)
    with redis.Redis.from_url(run.url) as client:
        assert client.dbsize() == 0


def test_the_table_compares_stockade_with_the_peers(tmp_path: Path) -> None:
    # RQ's workers start and stop fastest; any other installed peer will do.
    ready = sorted((p for p in PEERS if not p.available()), key=lambda p: p.name != "rq")
    if not ready:
        pytest.skip("no peer installed")
    rows = compare(N, 1, tmp_path, ("sqlite", "xargs", ready[0].name))
    assert [r.error for r in rows if r.error] == []
    ours = next(r for r in rows if r.name == f"stockade, SQLite (2 slots) x{N}")
    peer = next(r for r in rows if r.name == f"{ready[0].label} x{N}")
    versus = next(r for r in rows if r.name.startswith("  sqlite vs "))
    assert ours.ratio and peer.ratio and versus.ratio
    assert "CPU/job: whole machine" in peer.note
    assert "on a run queue" in ours.note  # where the worker's time went besides its CPU
    assert "appendonly" in rows[0].note
