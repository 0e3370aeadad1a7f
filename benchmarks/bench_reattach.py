"""Reattach mode (``stockade worker --reattach``): what it costs, how fast it takes over.

Throughput: attempts of ``/bin/true`` through :func:`stockade.runner.attempt.run`
in two reused ``LocalSandbox`` slots (as ``bench_throughput_true`` does),
with a spool directory (each job started by the spool shim, its output and
status kept in the spool) against the same without one, in alternating
rounds of one run, once per shim: the C one (``_spoolshim``, when built) and
the Python one; the ratio is the median of the rounds' own ratios. The shim
is a second process per job, which ``/bin/true``, a job that costs nothing
itself, shows at its worst. Target for the C shim: >= 0.5x the jobs/s
without a shim; the Python one (a bare interpreter's start-up per job) is
informational, the fallback where no C compiler was there at install; so
is the C shim with its spool on tmpfs (``/dev/shm``): creating and renaming
the four spool files per job is much of what the shim costs on disk.

Take-over: a ``stockade worker --reattach --name bench`` running a sleeping
job is SIGKILLed and started again; the figure is the time from the new
worker's start to the job's lease being renewed by it (its ``lease_expires``
moved). Baseline: the same restart without ``--reattach``, to the job
being recovered (``worker_restarted``): what a restart costs today.
Target: <= 1.5x the baseline (both are dominated by the worker's start-up).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Row, median, progress
from stockade.runner.attempt import run as run_attempt
from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from stockade.sandbox import spoolshim
from stockade.sandbox.local import LocalSandbox
from stockade.sandbox.proctree import enable_subreaper

CONCURRENCY = 2
THROUGHPUT = 0.5
TAKEOVER = 1.5
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


async def _jobs(n: int, data_dir: str, slots: list[LocalSandbox], spool: str | None) -> float:
    spec = RunSpec(argv=["/bin/true"], data_dir=data_dir, workdir=data_dir, spool_dir=spool)

    async def slot(sandbox: LocalSandbox, count: int) -> None:
        for _ in range(count):
            result = await run_attempt(spec, sandbox=sandbox, log_file=False)
            assert result.outcome is Outcome.SUCCEEDED, result

    started = time.perf_counter()
    await asyncio.gather(*(slot(s, n // CONCURRENCY) for s in slots))
    return n / (time.perf_counter() - started)


#: The shims measured: name, ``STOCKADE_NATIVE_SHIM`` (see ``spoolshim.launcher``),
#: and whether the spool is on tmpfs (the file system's share of the cost).
SHIMS = (("C", "1", False), ("Python", "0", False), ("C", "1", True))
_SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _throughput(quick: bool) -> list[Row]:
    n, rounds = (200, 2) if quick else (1000, 6)
    built = os.access(spoolshim.NATIVE, os.X_OK)
    shims = [s for s in SHIMS if (s[1] == "0" or built) and (not s[2] or _SHM)]
    enable_subreaper()
    slots = [LocalSandbox() for _ in range(CONCURRENCY)]
    for s in slots:
        s.setup()
    plain: list[float] = []
    spooled: list[list[float]] = [[] for _ in shims]
    try:
        with (
            tempfile.TemporaryDirectory(prefix="stockade-bench-") as tmp,
            tempfile.TemporaryDirectory(prefix="stockade-bench-", dir=_SHM) as shm,
        ):
            spools = {False: os.path.join(tmp, "spool"), True: shm}
            os.mkdir(spools[False])
            asyncio.run(_jobs(20, tmp, slots, None))
            for _, native, tmpfs in shims:
                os.environ["STOCKADE_NATIVE_SHIM"] = native
                asyncio.run(_jobs(20, tmp, slots, spools[tmpfs]))
            for i in range(rounds):
                progress(f"round {i + 1}/{rounds}: {n // rounds} x /bin/true, plain then each shim")
                plain.append(asyncio.run(_jobs(n // rounds, tmp, slots, None)))
                for figures, (_, native, tmpfs) in zip(spooled, shims, strict=True):
                    os.environ["STOCKADE_NATIVE_SHIM"] = native
                    figures.append(asyncio.run(_jobs(n // rounds, tmp, slots, spools[tmpfs])))
                    for entry in os.listdir(spools[tmpfs]):  # the worker removes them once recorded
                        os.unlink(os.path.join(spools[tmpfs], entry))
    finally:
        os.environ.pop("STOCKADE_NATIVE_SHIM", None)
        for s in slots:
            s.cleanup()
    rows = [
        _shim_row(shim, figures, plain, n, rounds)
        for shim, figures in zip(shims, spooled, strict=True)
    ]
    if not built:
        rows.insert(0, Row("reattach: the C spool shim", "not built (no C compiler)"))
    return rows


def _shim_row(
    shim: tuple[str, str, bool], spooled: list[float], plain: list[float], n: int, rounds: int
) -> Row:
    name, _, tmpfs = shim
    ratio = median(s / p for s, p in zip(spooled, plain, strict=True))
    ours, base = median(spooled), median(plain)
    target = name == "C" and not tmpfs  # the others say where the cost is
    where = ", spool on tmpfs" if tmpfs else ""
    return Row(
        f"reattach: /bin/true x{n} (c=2) with the {name} spool shim{where}",
        f"{ours:.0f} jobs/s",
        f"{base:.0f} jobs/s (no shim)",
        ratio,
        f">= {THROUGHPUT}" if target else "-",
        ratio >= THROUGHPUT if target else None,
        note=f"the shim costs {2e6 / ours - 2e6 / base:.0f} us more per attempt; "
        f"medians of {rounds} rounds",
    )


def _worker(url: str, data: str, reattach: bool) -> subprocess.Popen[bytes]:
    args = ["worker", "--name", "bench", "--slots", "1", "--poll", "0.1", "--lease", "30s"]
    args += ["--data-dir", data] + (["--reattach"] if reattach else [])
    env = dict(os.environ, STOCKADE_DATABASE_URL=url)
    return subprocess.Popen([*STOCKADE, *args], env=env, stderr=subprocess.DEVNULL)


def _restart(tmp: Path, reattach: bool) -> float:
    """Seconds from a restarted worker's start to it acting on the job its
    previous process ran (renewed with reattach, recovered without)."""
    from stockade.engine.jobspec import adhoc_task, new_job
    from stockade.store import open_store

    url = f"sqlite:///{tmp}/s-{reattach}.db"
    store = open_store(url)
    job = store.jobs.submit([new_job("t", adhoc_task(shell="sleep 5"))])[0]
    first = _worker(url, str(tmp / "data"), reattach)
    try:
        while store.queries.job(job).state.value != "running":
            time.sleep(0.02)
        time.sleep(0.3)
        first.send_signal(signal.SIGKILL)
        first.wait()
        leased = store.queries.job(job).lease_expires
        started = time.perf_counter()
        second = _worker(url, str(tmp / "data"), reattach)
        try:
            while True:
                row = store.queries.job(job)
                if (reattach and row.lease_expires != leased) or row.state.value != "running":
                    took = time.perf_counter() - started
                    break
                time.sleep(0.005)
        finally:
            second.kill()
            second.wait()
    finally:
        store.close()
    return took  # the job, a short sleep, ends by itself (its fence kills it without reattach)


def _takeover(quick: bool) -> Row:
    rounds = 1 if quick else 3
    ours: list[float] = []
    base: list[float] = []
    with tempfile.TemporaryDirectory(prefix="stockade-bench-") as name:
        tmp = Path(name)
        for i in range(rounds):
            progress(f"round {i + 1}/{rounds}: restart without, then with --reattach")
            base.append(_restart(tmp, False))
            ours.append(_restart(tmp, True))
    ratio = median(o / b for o, b in zip(ours, base, strict=True))
    return Row(
        "reattach: restart to the job's lease renewed",
        f"{median(ours) * 1000:.0f} ms",
        f"{median(base) * 1000:.0f} ms (recovered lost)",
        ratio,
        f"<= {TAKEOVER}",
        ratio <= TAKEOVER,
        note=f"SQLite, worker start-up included; medians of {rounds} rounds",
    )


def run(quick: bool) -> list[Row]:
    return [*_throughput(quick), _takeover(quick)]
