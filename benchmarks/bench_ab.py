"""The engine against an earlier one: the store benchmark's workload, A/B.

The worker was rebuilt for the issue on a job owning its execution (the
sandbox it declares, the fence, reattach, phases, housekeeping tasks); the
rule was that the store benchmark must not get slower. This runs the same
workload on two source trees in the same run: this checkout, and the tree
of the git ref ``$STOCKADE_AB_BASE`` (default :data:`BASE`, the last commit
before that work), extracted with ``git archive``.

Each round, each tree in turn (the order alternating between rounds): a
fresh SQLite store in a fresh data directory, a ``stockade worker --slots 2
--poll 1`` of that tree started and warmed by one job, then N ``/bin/true``
jobs submitted by that tree's ``submit -n`` and the clock stopped when the
store holds every one succeeded (read with ``sqlite3``, the same query for
both trees). Figures are medians of 5 rounds (1 with ``--quick``); the ratio
is the median of the rounds' own ratios, so load elsewhere hits both sides
alike. Target: >= 0.95 (no slower, within the noise of a round).

The C spawn extension is the same source in both trees (unchanged since
the base), so the base uses this checkout's build of it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO, Row, median, progress

#: The last commit before the engine's rework for the execution issue.
BASE = "f222a9b"
N = 2000
TARGET = 0.95


def _tree(ref: str, into: Path) -> Path:
    """The ``src`` directory of ``ref``, extracted under ``into``."""
    archive = subprocess.run(
        ["git", "archive", ref, "src"], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    built = REPO / "src" / "stockade" / "sandbox"
    for extension in built.glob("_clonespawn*.so"):
        shutil.copy(extension, into / "src" / "stockade" / "sandbox")
    return into / "src"


def _succeeded(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        (count,) = conn.execute("SELECT count(*) FROM jobs WHERE state = 'succeeded'").fetchone()
    return int(count)


def _jobs_per_second(src: Path, work: Path, n: int) -> float:
    """One round of one tree: jobs/s from submit to every end recorded."""
    data = work / "data"
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "STOCKADE_DATA_DIR": str(data),
    }
    env.pop("STOCKADE_DATABASE_URL", None)
    stockade = [sys.executable, "-m", "stockade.cli.main"]

    def submit(count: int) -> None:
        subprocess.run(
            [*stockade, "submit", "-n", str(count), "--", "/bin/true"],
            env=env, cwd=work, capture_output=True, check=True,
        )  # fmt: skip

    submit(1)  # creates the store, and the warm-up job
    db = data / "stockade.db"
    worker = subprocess.Popen(
        [*stockade, "worker", "--slots", "2", "--poll", "1", "-q"],
        env=env, cwd=work, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _succeeded(db) < 1:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(f"the worker of {src} did not run its warm-up job")
            time.sleep(0.02)
        started = time.perf_counter()
        submit(n)
        while _succeeded(db) < n + 1:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker of {src} exited")
            time.sleep(0.02)
        return n / (time.perf_counter() - started)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)


def run(quick: bool) -> list[Row]:
    rounds = 1 if quick else 5
    base = os.environ.get("STOCKADE_AB_BASE", BASE)
    with tempfile.TemporaryDirectory(prefix="stockade-ab-") as tmp:
        trees = {"this checkout": REPO / "src", f"base {base}": _tree(base, Path(tmp))}
        rates: dict[str, list[float]] = {name: [] for name in trees}
        for index in range(rounds):
            order = list(trees) if index % 2 == 0 else list(reversed(trees))
            for name in order:
                progress(f"round {index + 1}/{rounds}: {name}, {N} jobs")
                work = Path(tmp) / f"{index}-{len(rates[name])}-{name.split()[0]}"
                work.mkdir()
                rates[name].append(_jobs_per_second(trees[name], work, N))
                progress(f"  {rates[name][-1]:.0f} jobs/s")
    ours, theirs = rates["this checkout"], rates[f"base {base}"]
    ratio = median(a / b for a, b in zip(ours, theirs, strict=True))
    return [
        Row(
            f"engine A/B: worker jobs/s, SQLite, {N} x /bin/true",
            f"{median(ours):.0f}/s",
            f"{median(theirs):.0f}/s (base {base})",
            ratio,
            f">= {TARGET}",
            ratio >= TARGET,
        )
    ]
