"""Durable jobs end to end: submit → worker → every completion recorded,
stockade against xargs and four other job queues.

2,000 ``/bin/true`` jobs are queued in one ``submit`` transaction and run by
a ``stockade worker --slots 2`` process (started, warmed by one job and
idle before the clock starts, as each peer is), until the store holds
2,000 more succeeded jobs. Once on SQLite, once
on PostgreSQL. Baselines in the same round: ``xargs -P2 -n1 /bin/true`` (no
durability at all), and the peers of :mod:`benchmarks.peers` (Celery 5,
Dramatiq 2 with its default prefetch and with 16, procrastinate 3, RQ), each
with 2 worker processes or slots, each job running ``/bin/true`` as a
subprocess and leaving a record that is counted. Targets (issues 4 and 20):
SQLite >= 0.8 of xargs, >= 3x Celery and >= 1.2x tuned Dramatiq;
PostgreSQL >= 3x Celery, >= 1x tuned Dramatiq and >= 3x procrastinate.

The worker polls an idle store every second (``--poll 1s``), as Dramatiq's
workers and Celery's BRPOP do; new work wakes all of them sooner. The same
worker with ``--poll 0.05`` is measured too (SQLite), which shows what the
setting is worth.

All take turns in rounds (``$STOCKADE_BENCH_ROUNDS``, 5 by default, 1 with
``--quick``, 400 jobs), each in a fresh store and worker; figures are medians
over the rounds and each ratio is the median of the rounds' own ratios, so a
burst of load elsewhere on a shared machine hits both sides of a ratio
alike. The notes give each system's whole-machine CPU per job (its broker
or database included) and stockade's worker's own CPU per job, which move
less with the load than jobs/s do, and how long the worker and its helpers
waited on a run queue for a CPU.

Claim latency: median time of one claim (``UPDATE … RETURNING`` over the
claim index) with 100 and with 100,000 queued jobs; target: no slower with
the long queue (ratio <= 1.5 allows for noise).

PostgreSQL comes from ``$STOCKADE_BENCH_PG`` (default the local server,
database ``test``): a database of its own for each end-to-end run, a schema
of its own for each claim-latency store, dropped afterwards; Redis from
``$STOCKADE_BENCH_REDIS`` (default ``redis://127.0.0.1:6379/15``; each peer
takes a database of its own on that server and flushes it). A missing
server or package makes its rows ERROR rows, not a crash of the whole run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks import BIN, Row, progress
from benchmarks.peers import PG, REDIS, Peer, measure, pg_database
from benchmarks.peers.celery_peer import CeleryPeer
from benchmarks.peers.cpu import machine_cpu, pg_backends, snapshot, spent
from benchmarks.peers.dramatiq_peer import DramatiqPeer, TunedDramatiqPeer
from benchmarks.peers.procrastinate_peer import ProcrastinatePeer
from benchmarks.peers.redisdb import persistence
from benchmarks.peers.rq_peer import RqPeer

__all__ = ["PEERS", "REDIS", "compare", "pg_schema", "run"]

#: The other job queues, in the order they run in a round.
PEERS: tuple[type[Peer], ...] = (
    CeleryPeer, DramatiqPeer, TunedDramatiqPeer, ProcrastinatePeer, RqPeer,
)  # fmt: skip
#: Every contender of a round, stockade's first.
SYSTEMS = ("sqlite", "sqlite-poll", "postgresql", "xargs", *(p.name for p in PEERS))
XARGS_SHARE = 0.8
#: (stockade's store, peer) -> how many times the peer's jobs/s it must reach.
TARGETS = {
    ("sqlite", "celery"): 3.0, ("postgresql", "celery"): 3.0,
    ("sqlite", "dramatiq16"): 1.2, ("postgresql", "dramatiq16"): 1.0,
    ("postgresql", "procrastinate"): 3.0,
}  # fmt: skip
#: The worker's idle poll, as the peers' (seconds); and the short one it is compared with.
POLL, SHORT_POLL = 1.0, 0.05


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    import psycopg

    name = f"stk_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{PG}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def _queue(store: object, n: int) -> None:
    from stockade.engine.jobspec import adhoc_task, new_job

    task = adhoc_task(argv=["/bin/true"])
    store.jobs.submit([new_job("true", task) for _ in range(n)])  # type: ignore[attr-defined]


def _unfinished(store: object) -> int:
    """Jobs of the benchmark's task still queued or running (an index range scan)."""
    import sqlalchemy as sa

    from stockade.store import schema

    jobs = schema.jobs
    query = sa.select(sa.func.count()).where(
        jobs.c.task == "true", jobs.c.state.in_(["queued", "running"])
    )
    with store.db.read() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(query).scalar_one())


def _helpers(pid: int) -> list[int]:
    """The worker's live helper processes: its store process and its fence."""
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
            with contextlib.suppress(OSError):  # a job that just ended
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"storeproc" in cmdline or b"import fence" in cmdline:
                    found.append(int(child))
    return found


def _cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of process ``pid``: its own plus its live helpers' (the
    store process and the fence), and its reaped children's (the jobs)."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int | str) -> list[str]:
        return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

    fields = stat(pid)
    own = int(fields[11]) + int(fields[12])
    for helper in _helpers(pid):
        with contextlib.suppress(OSError):
            kid = stat(helper)
            own += int(kid[11]) + int(kid[12])
    return own / tick, (int(fields[13]) + int(fields[14])) / tick


def _sched(pid: int) -> tuple[float, float]:
    """Seconds the threads of process ``pid`` and of its live helpers ran on
    a CPU, and waited on a run queue for one (``/proc/PID/task/TID/schedstat``):
    where the worker's time goes when it is neither computing nor idle."""
    ran = waited = 0
    for proc in (pid, *_helpers(pid)):
        with contextlib.suppress(OSError):  # a thread or helper that just ended
            for task in os.listdir(f"/proc/{proc}/task"):
                fields = Path(f"/proc/{proc}/task/{task}/schedstat").read_text().split()
                ran, waited = ran + int(fields[0]), waited + int(fields[1])
    return ran / 1e9, waited / 1e9


_cpu_per_job: dict[str, list[tuple[float, float]]] = {}
#: System -> per round, the worker's (and helpers') seconds per job on a CPU and waiting for one.
_sched_per_job: dict[str, list[tuple[float, float]]] = {}
#: System -> per round, CPU seconds per job: the whole machine's, the run's own processes'.
_machine: dict[str, list[tuple[float, float]]] = {}


def _stockade(
    url: str, n: int, work: Path, kind: str, poll: float = POLL, database: str = ""
) -> float:
    """Jobs/s from submit to the last recorded result, worker already idle."""
    from stockade.store import open_store

    store = open_store(url)
    env = dict(os.environ, STOCKADE_DATABASE_URL=url, STOCKADE_DATA_DIR=str(work))
    worker = subprocess.Popen(
        [str(BIN / "stockade"), "worker", "--slots", "2", "--poll", str(poll), "-q"],
        env=env, cwd=work, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not store.queries.workers(alive_within=60):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the worker did not start")
            time.sleep(0.05)
        # Warm, as each peer is: one job through before the clock starts (a
        # fresh worker's first job took 0.5 s, its later ones 10-30 ms).
        _queue(store, 1)
        deadline = time.monotonic() + 60
        while _unfinished(store):
            if time.monotonic() > deadline:
                raise RuntimeError("the warm-up job did not run")
            time.sleep(0.01)
        servers = (lambda: pg_backends(PG, database)) if database else list
        cpu_before, machine, sched = _cpu(worker.pid), machine_cpu(), _sched(worker.pid)
        ours = snapshot([worker.pid], servers())
        started = time.perf_counter()
        _queue(store, n)
        while (left := _unfinished(store)) > 0:
            # The observer must take little CPU from the worker it measures
            # (2 CPUs here): it counted every job 100 times a second at first,
            # a quarter of a CPU by the end. Now it counts the unfinished ones
            # only (ix_jobs_task_state), often only near the end.
            time.sleep(0.01 if left < 200 else 0.05)
        elapsed = time.perf_counter() - started
        machine, ours_cpu = machine_cpu() - machine, spent(ours, snapshot([worker.pid], servers()))
        if store.queries.count_by_state("true").get("succeeded", 0) != n + 1:
            raise RuntimeError("not every job succeeded")
        cpu_after, sched_after = _cpu(worker.pid), _sched(worker.pid)
        _sched_per_job.setdefault(kind, []).append(
            ((sched_after[0] - sched[0]) / n, (sched_after[1] - sched[1]) / n)
        )
        own, jobs = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
        _cpu_per_job.setdefault(kind, []).append((own / n, jobs / n))
        _machine.setdefault(kind, []).append((machine / n, ours_cpu / n))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        store.close()
    return n / elapsed


def _xargs(n: int) -> float:
    def used() -> float:  # this process's CPU and its reaped children's: xargs and its jobs
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    machine, ours = machine_cpu(), used()
    started = time.perf_counter()
    subprocess.run(["xargs", "-P2", "-n1", "/bin/true"], input=b"x\n" * n, check=True)
    elapsed = time.perf_counter() - started
    _machine.setdefault("xargs", []).append(((machine_cpu() - machine) / n, (used() - ours) / n))
    return n / elapsed


def _peer(peer: type[Peer], n: int, work: Path) -> float:
    if why := peer.available():
        raise RuntimeError(why)
    measured = measure(peer(work), n)
    _machine.setdefault(peer.name, []).append((measured.cpu_per_job, measured.own_cpu_per_job))
    return measured.rate


def _claim_latency(urls: dict[int, str], samples: int = 200) -> dict[int, float]:
    """Median seconds of one claim with ``queued`` jobs waiting, for each
    ``{queued: store url}``: the stores take turns claim by claim, so a
    change in the disk's flush time (most of a PostgreSQL claim's commit)
    hits every queue length alike. Measured one after the other, 20 s
    apart, the ratio moved between 0.9 and 1.5 from run to run."""
    from stockade.store import open_store

    stores = {queued: open_store(url) for queued, url in urls.items()}
    try:
        for queued, store in stores.items():
            for start in range(0, queued + samples, 20_000):
                _queue(store, min(20_000, queued + samples - start))
        times: dict[int, list[float]] = {queued: [] for queued in stores}
        for _ in range(samples):
            for queued, store in stores.items():
                began = time.perf_counter()
                store.jobs.claim("bench", 1, 30)
                times[queued].append(time.perf_counter() - began)
    finally:
        for store in stores.values():
            store.close()
    return {queued: statistics.median(values) for queued, values in times.items()}


def _median_ratio(rounds: list[dict[str, float]], ours: str, base: str) -> float | None:
    """The median of the rounds' own ``ours / base`` ratios (rounds with both)."""
    ratios = [r[ours] / r[base] for r in rounds if ours in r and r.get(base)]
    return statistics.median(ratios) if ratios else None


def _labels() -> dict[str, str]:
    return {
        "sqlite": "stockade, SQLite (2 slots)",
        "sqlite-poll": f"  stockade, SQLite, --poll {SHORT_POLL} (vs --poll {POLL:.0f}s)",
        "postgresql": "stockade, PostgreSQL (2 slots)",
        **{p.name: p.label for p in PEERS},
    }


def _end_to_end(n: int, rounds: list[dict[str, float]], systems: Sequence[str]) -> list[Row]:
    """One row per system against xargs, then stockade's against each peer."""
    rates = {
        name: statistics.median(values)
        for name in systems
        if (values := [r[name] for r in rounds if name in r])
    }
    labels, xargs = _labels(), rates.get("xargs")
    rows = []
    for name in (s for s in systems if s != "xargs"):
        label = f"{labels[name]} x{n}"
        if name not in rates:
            rows.append(Row(label, "-", error=rates_error(name)))
            continue
        base, ratio = f"{xargs or 0:.0f} jobs/s (xargs -P2)", _median_ratio(rounds, name, "xargs")
        if name == "sqlite-poll":
            base, ratio = (
                f"{rates.get('sqlite', 0):.0f} jobs/s",
                _median_ratio(rounds, name, "sqlite"),
            )
        target = f">= {XARGS_SHARE}" if name == "sqlite" else "-"
        ok = None if name != "sqlite" or ratio is None else ratio >= XARGS_SHARE
        rows.append(Row(label, f"{rates[name]:.0f} jobs/s", base, ratio, target, ok,
                        note=_note(name)))  # fmt: skip
    for kind in ("sqlite", "postgresql"):
        for peer in (p.name for p in PEERS if p.name in systems):
            times = _median_ratio(rounds, kind, peer)
            if times is None:
                continue
            want = TARGETS.get((kind, peer))
            rows.append(Row(
                f"  {kind} vs {labels[peer].split(' (')[0]}", f"{rates[kind]:.0f} jobs/s",
                f"{rates[peer]:.0f} jobs/s", times, "-" if want is None else f">= {want}",
                None if want is None else times >= want,
            ))  # fmt: skip
    return rows


def _note(name: str) -> str:
    """Where a system's figure comes from: CPU per job, and what is fair."""
    parts = []
    if machine := _machine.get(name):
        whole = statistics.median(m[0] for m in machine) * 1e3
        own = statistics.median(m[1] for m in machine) * 1e3
        parts.append(f"CPU/job: whole machine {whole:.2f} ms, its own processes {own:.2f} ms")
    if samples := _cpu_per_job.get(name):
        own = statistics.median(s[0] for s in samples) * 1e3
        jobs = statistics.median(s[1] for s in samples) * 1e3
        parts.append(f"worker {own:.2f} ms/job of its own (with its store process), "
                     f"{jobs:.2f} ms/job in the jobs")  # fmt: skip
    if waits := _sched_per_job.get(name):
        ran = statistics.median(w[0] for w in waits) * 1e3
        waited = statistics.median(w[1] for w in waits) * 1e3
        parts.append(f"the worker and its helpers ran {ran:.2f} ms/job on a CPU and waited "
                     f"{waited:.2f} ms/job on a run queue for one")  # fmt: skip
    peer = next((p for p in PEERS if p.name == name), None)
    if peer is not None:
        parts.append(peer.notes)
    elif name in ("sqlite", "postgresql"):
        parts.append(
            "stores every job, attempt and result durably; submits all in one transaction; "
            f"the idle worker polls every {POLL:.0f} s and is woken by new work"
        )
    return "; ".join(parts)


_errors: dict[str, str] = {}


def rates_error(name: str) -> str:
    return _errors.get(name, "not measured")


def _measure(name: str, func: object, *args: object) -> float | None:
    try:
        return float(func(*args))  # type: ignore[operator]
    except Exception as exc:  # a missing server is an ERROR row, not a crash
        _errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        progress(f"{name} failed: {_errors[name]}")
        return None


def _round(n: int, work: Path, index: int, systems: Sequence[str]) -> dict[str, float]:
    """One turn of each contender; their jobs/s (a failed one is left out)."""
    rates: dict[str, float] = {}
    peers = {p.name: p for p in PEERS}
    for name in systems:
        progress(f"round {index}: {name}, {n} x /bin/true")
        rate: float | None
        if name in ("sqlite", "sqlite-poll"):
            db = f"sqlite:///{work}/e2e-{index}-{name}.db"
            poll = SHORT_POLL if name == "sqlite-poll" else POLL
            rate = _measure(name, _stockade, db, n, work, name, poll)
        elif name == "postgresql":
            rate = _measure(name, _stockade_pg, n, work)
        elif name == "xargs":
            rate = _xargs(n)
        else:
            rate = _measure(name, _peer, peers[name], n, work)
        if rate is not None:
            rates[name] = rate
    return rates


def _stockade_pg(n: int, work: Path) -> float:
    """On a database of its own, so its backends' CPU time is the run's."""
    with pg_database("stk_bench") as (database, url):
        return _stockade(url, n, work, "postgresql", database=database)


def _rounds() -> int:
    return int(os.environ.get("STOCKADE_BENCH_ROUNDS", "5"))


def compare(n: int, rounds: int, work: Path, systems: Sequence[str] = SYSTEMS) -> list[Row]:
    """``rounds`` interleaved rounds of ``n`` jobs on each of ``systems``; the
    table's rows, the first carrying the fairness notes that hold for all."""
    results = [_round(n, work, i + 1, systems) for i in range(rounds)]
    rows = _end_to_end(n, results, systems)
    try:
        redis = persistence()
    except Exception as exc:
        redis = f"Redis unreachable ({type(exc).__name__})"
    common = (
        f"{redis}; every system runs 2 jobs at a time, each job a /bin/true subprocess; "
        f"clock from the submit to the last completion; {len(results)} round(s), medians; "
        "whole-machine CPU includes whatever else the machine ran meanwhile"
    )
    if "xargs" in _machine:
        common += f"; xargs {_note('xargs')}"
    if rows:
        rows[0].note = f"{common}. {rows[0].note}" if rows[0].note else common
    return rows


def run(quick: bool) -> list[Row]:
    n = 400 if quick else 2000
    big = 20_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="stockade-bench-store-") as tmp:
        work = Path(tmp)
        # Five rounds: a run's jobs/s moved by 10-15% with the VM's load on
        # 2026-12-03, and the median of three ratios still tipped either way.
        rows = compare(n, 1 if quick else _rounds(), work)
        for kind in ("sqlite", "postgresql"):
            rows += _latency_rows(kind, work, big)
    return rows


def _latency_rows(kind: str, work: Path, big: int) -> list[Row]:
    progress(f"claim latency on {kind}: 100 vs {big} queued")
    try:
        if kind == "sqlite":
            times = _claim_latency({q: f"sqlite:///{work}/claim-{q}.db" for q in (100, big)})
        else:
            with pg_schema() as small, pg_schema() as large:
                times = _claim_latency({100: small, big: large})
    except Exception as exc:
        return [Row(f"claim latency ({kind})", "-", error=f"{type(exc).__name__}: {exc}")]
    ratio = times[big] / times[100]
    return [Row(
        f"claim latency, {big} queued ({kind})", f"{times[big] * 1e3:.2f} ms",
        f"{times[100] * 1e3:.2f} ms (100 queued)", ratio, "<= 1.5", ratio <= 1.5,
    )]  # fmt: skip
