"""Start-up: how long ``stockade exec -- true`` takes from the shell.

The ad-hoc path is what people type and what scripts call in loops, so it
must cost little more than starting Python itself.

Wall time of ``.venv/bin/stockade exec -- true`` against ``.venv/bin/python
-c pass``, both as subprocesses, median of 20 runs each after a warm-up, the
commands taking turns so that load elsewhere hits all of them alike.
Target: <= 6x. ``stockade --help`` is reported too (informational).

``stockade run`` of a one-step pipeline (``run: "true"``, ``--quiet``, a
SQLite store in a fresh data directory that the warm-up created) against
``stockade exec -- true``: what a pipeline costs over the ad-hoc path
(loading and validating ``stockade.yaml``, opening the store, the
scheduler, recording the run). Target: <= 2x.

Also which modules the ad-hoc path imports (``python -X importtime
.venv/bin/stockade exec -- true``): none of pydantic, sqlalchemy, fastapi,
rich or yaml may appear; and the pipeline path (``stockade run`` on its
SQLite store, which records the run straight on ``sqlite3``): none of
sqlalchemy, alembic or psycopg; and, the warm-up having kept the plan of
the config (``stockade.runplan``), none of pydantic, yaml or rich.

Where valgrind is installed (and not with ``--quick``), the instructions
``exec -- true`` executes, against ``python -c pass``, and those of ``run``
against ``exec -- true``, counted by callgrind: figures the load on the
machine does not skew (informational). Valgrind
3.19 cannot launch the job itself (no ``clone3`` or ``pidfd_open``), so the
count is everything ``exec -- true`` does but run the job.

``PYTHONDONTWRITEBYTECODE`` is dropped from the environment so the warm-up
leaves the bytecode cache an installed package has; otherwise every run
would recompile the sources changed since the last cached import.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

from benchmarks import BIN, Row, median, ms, progress, wall

TARGET = 6.0
TARGET_RUN = 2.0
ONE_STEP = 'version: 1\npipelines:\n  one:\n    steps:\n      only:\n        run: "true"\n'
HEAVY = ("pydantic", "sqlalchemy", "fastapi", "rich", "yaml")
ORM = ("sqlalchemy", "alembic", "psycopg")
#: What a run from a cached plan (stdout not a terminal) does without.
MODELS = ("pydantic", "yaml", "rich")


def _imports(args: list[str], env: dict[str, str], cwd: str) -> dict[str, tuple[int, float]]:
    """Module -> (nesting depth, cumulative import seconds) under ``-X importtime``."""
    cmd = [sys.executable, "-X", "importtime", *args]
    err = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True).stderr
    found: dict[str, tuple[int, float]] = {}
    for line in err.decode().splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, raw = line.split("|")
            if cumulative.strip().isdigit():
                depth = (len(raw) - len(raw.lstrip()) - 1) // 2
                found[raw.strip()] = (depth, int(cumulative) / 1e6)
    return found


def _instructions(args: list[str], env: dict[str, str], cwd: str) -> int | None:
    """Instructions ``python ARGS`` executes under callgrind; None without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={os.devnull}", sys.executable]
    err = subprocess.run([*cmd, *args], env=env, cwd=cwd, capture_output=True, check=False).stderr
    found = re.search(rb"Collected : (\d+)", err)
    return int(found.group(1)) if found else None


def run(quick: bool) -> list[Row]:
    runs = 5 if quick else 20
    commands = {
        "python": [str(BIN / "python"), "-c", "pass"],
        "exec": [str(BIN / "stockade"), "exec", "--", "true"],
        "help": [str(BIN / "stockade"), "--help"],
        "run": [str(BIN / "stockade"), "run", "--quiet"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory(prefix="stockade-bench-") as tmp:
        env = {**os.environ, "STOCKADE_DATA_DIR": tmp}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        with open(os.path.join(tmp, "stockade.yaml"), "w") as config:
            config.write(ONE_STEP)
        progress(f"warm-up, then {runs} runs of each command in turn")
        for cmd in commands.values():
            wall(cmd, env, tmp)
        for _ in range(runs):
            for name, cmd in commands.items():
                times[name].append(wall(cmd, env, tmp))
        progress("import trace of the ad-hoc path")
        ours = _imports(commands["exec"], env, tmp)  # the script, run by -X importtime
        bare = _imports(["-c", "pass"], env, tmp)
        pipeline = _imports(commands["run"], env, tmp)
        python_ir = exec_ir = run_ir = None
        if not quick:
            progress("instructions under callgrind")
            python_ir = _instructions(["-c", "pass"], env, tmp)
            exec_ir = _instructions(commands["exec"], env, tmp)
            # The job cannot launch under valgrind: a wide console keeps the
            # line of that failure from wrapping (which would load rich for it).
            run_ir = _instructions(commands["run"], {**env, "COLUMNS": "200"}, tmp)
    python, exec_, help_, run_ = (median(times[n]) for n in commands)
    heavy = sorted({m.split(".")[0] for m in ours} & set(HEAVY))
    orm = sorted({m.split(".")[0] for m in pipeline} & set(ORM))
    models = sorted({m.split(".")[0] for m in pipeline} & set(MODELS))
    # Imports made by stockade's own code path (depth 0), not by Python's start-up.
    top = sorted(((t, m) for m, (d, t) in ours.items() if d == 0 and m not in bare), reverse=True)
    rows = [
        Row(
            "startup: stockade exec -- true",
            f"{ms(exec_)} (max {ms(max(times['exec']))})",
            f"{ms(python)} (python -c pass)",
            exec_ / python,
            f"<= {TARGET:.0f}x",
            exec_ / python <= TARGET,
        ),
        Row(
            "startup: stockade run (one step)",
            f"{ms(run_)} (max {ms(max(times['run']))})",
            f"{ms(exec_)} (stockade exec -- true)",
            run_ / exec_,
            f"<= {TARGET_RUN:.0f}x",
            run_ / exec_ <= TARGET_RUN,
        ),
        Row(
            "startup: stockade --help", ms(help_), f"{ms(python)} (python -c pass)", help_ / python
        ),
        Row(
            "startup: heavy imports on exec path",
            ", ".join(heavy) or "none",
            f"{len(ours)} modules vs {len(bare)}",
            None,
            "none (see doc)",
            not heavy,
            note="imports of `exec -- true` beyond Python's own (cumulative): "
            + ", ".join(f"{m} {t * 1000:.1f} ms" for t, m in top[:6])
            + f"; {sum(t for t, _ in top) * 1000:.0f} ms in all",
        ),
        *(
            Row(
                f"startup: {what}",
                ", ".join(found) or "none",
                f"{len(pipeline)} modules",
                None,
                "none",
                not found,
            )
            for what, found in (
                ("models on the run path (cached plan)", models),
                ("ORM on the run path (SQLite)", orm),
            )
        ),
    ]
    counted = (  # (row, what, its count, the baseline, its count, note)
        (1, "exec -- true", exec_ir, "python -c pass", python_ir,
         "callgrind, which load does not skew; the job itself cannot launch under it"),
        (3, "run (one step)", run_ir, "exec -- true", exec_ir,
         "callgrind; under it the run's job fails to launch, the rest runs"),
    )  # fmt: skip
    for at, what, count, base, base_count, note in counted:
        if count and base_count:
            rows.insert(at, Row(
                f"startup: {what} instructions", f"{count / 1e6:.0f} M",
                f"{base_count / 1e6:.0f} M ({base})", count / base_count, note=note,
            ))  # fmt: skip
    return rows
