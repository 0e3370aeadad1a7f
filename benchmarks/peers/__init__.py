"""Other job queues, run on the store benchmark's workload beside stockade.

Each peer is a :class:`Peer`: it starts its workers (2 processes or slots),
submits N jobs, and cleans up after itself: its own Redis database, flushed,
or its own PostgreSQL database, dropped, whatever happened. Every job runs
``/bin/true`` as a subprocess and then appends its index to a file of
records (:mod:`benchmarks.peers.effect`); :func:`measure` counts those
records, so a peer is timed from its submit to its last job's side effect,
and checked to have run each job exactly once.

The peers' modules import their package only when started, so a missing
package is reported by :meth:`Peer.available`, not as an import error.
"""

from __future__ import annotations

import abc
import contextlib
import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchmarks.peers.cpu import machine_cpu, snapshot, spent
from benchmarks.peers.effect import RECORD

__all__ = ["PG", "REDIS", "Measured", "Peer", "measure", "pg_database", "redis_db"]

#: The Redis server; each peer takes a database of its own on it
#: (:class:`benchmarks.peers.redisdb.RedisPeer`), whatever this URL's is.
REDIS = os.environ.get("STOCKADE_BENCH_REDIS", "redis://127.0.0.1:6379/15")
#: The benchmark's PostgreSQL server (a database of its own per run).
PG = os.environ.get("STOCKADE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
#: The whole run, start to end, may take this long (seconds).
TIMEOUT = 600.0
#: The Python the workers run in: the benchmark's own (its venv's scripts).
BIN = Path(sys.executable).parent
#: Where the workers import the peers' apps from.
REPO = Path(__file__).resolve().parent.parent.parent


def redis_db(db: int) -> str:
    """``REDIS`` with database ``db``: each peer flushes only its own."""
    parts = urlsplit(REDIS)
    return urlunsplit(parts._replace(path=f"/{db}"))


@contextlib.contextmanager
def pg_database(prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh database on the benchmark's PostgreSQL server: its name and
    URL; dropped at the end, connections and all."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield name, urlunsplit(urlsplit(PG)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Peer(abc.ABC):
    """One job queue with its workers, for one round."""

    #: The key of its figures in a round.
    name: str
    #: How the table names it.
    label: str
    #: The modules it needs (its package and its client library).
    modules: Sequence[str]
    #: What makes a comparison with it fair or not, printed under the table.
    notes: str

    def __init__(self, work: Path) -> None:
        self.work = work
        self.tag = uuid.uuid4().hex[:8]
        self.effects = work / f"{self.name}-{self.tag}.records"
        self.effects.touch()
        self.workers: list[subprocess.Popen[bytes]] = []

    @classmethod
    def available(cls) -> str:
        """Why it cannot run here, or "" if it can."""
        missing = [m for m in cls.modules if importlib.util.find_spec(m) is None]
        return f"not installed: {', '.join(missing)}" if missing else ""

    @abc.abstractmethod
    def start(self) -> None:
        """Start the workers and return once they are up (not yet warm)."""

    @abc.abstractmethod
    def submit(self, first: int, count: int) -> None:
        """Queue jobs ``first`` .. ``first + count - 1``, the way its users
        would queue many at once."""

    def servers(self) -> list[int]:
        """The server processes serving it (whose CPU time is its own)."""
        return []

    @abc.abstractmethod
    def cleanup(self) -> None:
        """Drop everything it stored (its Redis database or its PostgreSQL
        database); called after :meth:`stop`, also after a failure."""

    def spawn(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Start one worker process in the work directory, quietly."""
        path = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))
        self.workers.append(subprocess.Popen(
            argv, cwd=self.work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=path, **(env or {})),
        ))  # fmt: skip

    def stop(self) -> None:
        """Stop the workers: SIGTERM; a second one after 2 s (a cold shutdown;
        an idle RQ worker may ignore the first, and ignores a second within
        1 s); SIGKILL after 30 s."""
        for grace, stop in ((2.0, "terminate"), (28.0, "terminate"), (None, "kill")):
            alive = [proc for proc in self.workers if proc.poll() is None]
            for proc in alive:
                getattr(proc, stop)()
            end = time.monotonic() + (grace or 0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                for proc in alive:
                    proc.wait(None if grace is None else max(0.0, end - time.monotonic()))

    def done(self) -> list[int]:
        """The indices of the jobs that have run so far."""
        data = self.effects.read_bytes()
        return [int(data[i : i + RECORD]) for i in range(0, len(data), RECORD)]

    def count(self) -> int:
        """How many jobs have run so far: one fixed-size record each."""
        return self.effects.stat().st_size // RECORD

    def wait(self, n: int, deadline: float) -> None:
        """Until ``n`` jobs have left their record; the workers still alive."""
        while (left := n - self.count()) > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.label}: {left} of {n} jobs not run")
            if any(proc.poll() is not None for proc in self.workers):
                raise RuntimeError(f"{self.label}: a worker exited")
            time.sleep(0.01 if left < 200 else 0.05)


@dataclass(frozen=True)
class Measured:
    """One peer's round: jobs/s submit to last side effect; CPU seconds per
    job of the whole machine, and of the run's own processes
    (:mod:`benchmarks.peers.cpu`)."""

    rate: float
    cpu_per_job: float
    own_cpu_per_job: float


def measure(peer: Peer, n: int) -> Measured:
    """Run ``n`` jobs on ``peer``, after one warm-up job; check that each of
    them ran exactly once; clean up whatever happens."""
    deadline = time.monotonic() + TIMEOUT
    try:
        peer.start()
        peer.submit(0, 1)  # warm: the workers are up, connected and idle
        peer.wait(1, deadline)
        pids = [proc.pid for proc in peer.workers]
        cpu, own = machine_cpu(), snapshot(pids, peer.servers())
        started = time.perf_counter()
        peer.submit(1, n)
        peer.wait(n + 1, deadline)
        elapsed = time.perf_counter() - started
        cpu, own_cpu = machine_cpu() - cpu, spent(own, snapshot(pids, peer.servers()))
        if sorted(peer.done()) != list(range(n + 1)):
            raise RuntimeError(f"{peer.label}: some job ran twice or not at all")
    finally:
        with contextlib.suppress(Exception):
            peer.stop()
        peer.cleanup()
    return Measured(n / elapsed, cpu / n, own_cpu / n)
