"""Memory of ``stockade exec`` when a job leaves a 1 GiB sparse output file.

A job decides what is at its output paths; a sparse file costs it nothing
to make, and stockade once read it whole (3.1 GB of RSS for a
``$STOCKADE_OUTPUT``, 2.1 GB for a ``file:`` output). Now its size is
refused before anything is read.

Peak RSS (``ru_maxrss``) of ``stockade exec`` whose job runs ``truncate -s
1G`` on ``$STOCKADE_OUTPUT``, and on its ``file:`` output, against
``stockade exec -- true`` measured the same way in the same run; the
largest of a few runs each. Each command is forked from a small interpreter
(``measure`` below): a child's ``ru_maxrss`` starts at its parent's at the
fork. Target: < 64 MiB more than the ``true`` job, and the job ends with
``output_error``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import BIN, Row, progress

GROWTH_TARGET_MIB = 64
CASES = {
    "true": ([], "true"),
    "1 GiB sparse $STOCKADE_OUTPUT": ([], 'truncate -s 1G "$STOCKADE_OUTPUT"'),
    "1 GiB sparse file: output": (["--output-format", "file:out.json"], "truncate -s 1G out.json"),
}


def _peak_kib(tmp: Path, options: list[str], line: str) -> tuple[int, dict[str, object]]:
    """Peak RSS in KiB of one ``stockade exec --shell LINE``, and its result."""
    workspace = Path(tempfile.mkdtemp(dir=tmp))
    record = tmp / "result.json"
    argv = [
        str(BIN / "stockade"), "exec", "-C", str(workspace), "--data-dir", str(tmp / "data"),
        "--result", str(record), *options, "--shell", line,
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "benchmarks.bench_job_files", "measure", *argv]
    done = subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    peak = int(done.stdout)
    result: dict[str, object] = json.loads(record.read_text())
    return peak, result


def run(quick: bool) -> list[Row]:
    rounds = 1 if quick else 3
    peaks: dict[str, int] = {}
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="stockade-bench-") as name:
        tmp = Path(name)
        for i in range(rounds):
            for case, (options, line) in CASES.items():  # taking turns: load hits all alike
                progress(f"round {i + 1}/{rounds}: {case}")
                peak, results[case] = _peak_kib(tmp, options, line)
                peaks[case] = max(peaks.get(case, 0), peak)
    base = peaks["true"]
    rows = []
    for case in list(CASES)[1:]:
        growth = (peaks[case] - base) / 1024
        result = results[case]
        refused = (result["outcome"], result["reason"]) == ("failed", "output_error")
        rows.append(
            Row(
                f"exec peak RSS, {case}",
                f"{peaks[case] / 1024:.1f} MiB",
                f"{base / 1024:.1f} MiB (exec -- true)",
                peaks[case] / base,
                f"< +{GROWTH_TARGET_MIB} MiB",
                growth < GROWTH_TARGET_MIB and refused,
                note=f"{growth:+.1f} MiB; the job ended {result['reason']}: {result['error']}",
            )
        )
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["measure"]:
    # python -m benchmarks.bench_job_files measure ARGV...: run ARGV, print its ru_maxrss.
    pid = os.fork()
    if pid == 0:
        os.execv(sys.argv[2], sys.argv[2:])
    _, status, usage = os.wait4(pid, 0)
    print(usage.ru_maxrss)
