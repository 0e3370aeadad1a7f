"""Store commands: how long ``stockade jobs``, ``show``, ``logs`` and ``submit`` take.

People type these and scripts poll them, so each should cost a small multiple
of starting Python, like ``stockade exec``. On a SQLite store of a few hundred
jobs (300 finished jobs that printed a line, made by ``submit -n`` and a
``worker --burst`` first), wall time of each command against
``.venv/bin/python -c pass``, all as subprocesses, medians of 15 rounds (5
with ``--quick``) after a warm-up, the commands taking turns within each
round so that load elsewhere hits all of them alike. Target: each <= 10x.

The read commands and ``submit`` serve SQLite without SQLAlchemy
(``stockade.store.lite``), and ``submit -- true`` makes its ad-hoc job
without pydantic (``stockade.engine.adhoc``); ``jobs`` and ``submit`` with
``STOCKADE_LITE=0`` (the full store, and the task model for ``submit``) are
reported for comparison.
``PYTHONDONTWRITEBYTECODE`` is dropped as in the start-up benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

from benchmarks import BIN, Row, median, ms, progress, wall

TARGET = 10.0
JOBS = 300


def run(quick: bool) -> list[Row]:
    rounds = 5 if quick else 15
    stockade = str(BIN / "stockade")
    with tempfile.TemporaryDirectory(prefix="stockade-bench-") as tmp:
        env = {**os.environ, "STOCKADE_DATA_DIR": tmp}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("STOCKADE_DATABASE_URL", None)
        progress(f"{JOBS} jobs through a worker")
        make = [stockade, "submit", "-n", str(JOBS), "--shell", "echo hello"]
        subprocess.run(make, env=env, cwd=tmp, capture_output=True, check=True)
        work = [stockade, "worker", "--burst", "-q", "--slots", "2"]
        subprocess.run(work, env=env, cwd=tmp, capture_output=True, check=True)
        listed = [stockade, "jobs", "--limit", "1", "--json"]
        out = subprocess.run(listed, env=env, cwd=tmp, capture_output=True, check=True).stdout
        job_id = json.loads(out.splitlines()[0])["id"]
        commands = {
            "python": [str(BIN / "python"), "-c", "pass"],
            "jobs": [stockade, "jobs"],
            "show": [stockade, "show", job_id],
            "logs": [stockade, "logs", job_id],
            "submit": [stockade, "submit", "--", "true"],
        }
        full_env = {**env, "STOCKADE_LITE": "0"}
        times: dict[str, list[float]] = {name: [] for name in [*commands, "full", "full submit"]}
        progress(f"warm-up, then {rounds} rounds of each command in turn")
        for cmd in commands.values():
            wall(cmd, env, tmp)
        for _ in range(rounds):
            for name, cmd in commands.items():
                times[name].append(wall(cmd, env, tmp))
            times["full"].append(wall(commands["jobs"], full_env, tmp))
            times["full submit"].append(wall(commands["submit"], full_env, tmp))
    python = median(times["python"])
    base = f"{ms(python)} (python -c pass)"
    rows = []
    for name in ("jobs", "show", "logs", "submit"):
        figure = median(times[name])
        ratio = figure / python
        rows.append(
            Row(
                f"cli: stockade {name} (SQLite, {JOBS} jobs)",
                ms(figure),
                base,
                ratio,
                f"<= {TARGET:.0f}x",
                ratio <= TARGET,
            )
        )
    for name in ("jobs", "submit"):
        full = median(times["full" if name == "jobs" else "full submit"])
        rows.append(
            Row(f"  {name} on the full store (STOCKADE_LITE=0)", ms(full), base, full / python)
        )
    return rows
