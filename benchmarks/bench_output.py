"""Output throughput and memory: 1 GiB of lines through the runner, masking on.

A chatty job must not be slowed down by its supervisor, and a job that
prints one endless line must not make it run out of memory.

Throughput: 1 GiB of ~100-byte lines (``yes`` with a 1,000-line block,
piped through ``head -c``) through :func:`stockade.runner.attempt.run` with
two secrets declared, into a sink that only counts bytes. Once with secrets
that never appear (the common case), once with each appearing once per
1,000 lines. Baseline: the same producer drained by a bare ``os.read(fd,
65536)`` loop in this process. Target: >= 0.5 of its MB/s.

Memory: one 256 MiB line without a newline (``head -c 256M /dev/zero``)
through the runner, in a fresh Python process (so its peak RSS is its
own), against the same in a bare read loop. Target: < 64 MiB growth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import CountingSink, Row, progress
from stockade.runner.attempt import run as run_attempt
from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec

TARGET = 0.5
RSS_TARGET_MIB = 64
SECRETS = {"BENCH_API_TOKEN": "tok-3f9a1c7e5b2d4a60", "BENCH_DB_PASSWORD": "pw-8e2b6d4f0a9c1e37"}
PRODUCER = 'yes "$1" | head -c "$2"'


def _block(with_secrets: bool) -> str:
    """1,000 lines of 100 bytes (newline included); optionally two carry a secret."""
    lines = [f"line {i:04d} " + "lorem ipsum dolor sit amet " * 3 + "x" * 8 for i in range(1000)]
    if with_secrets:
        lines[500] = lines[500][:40] + " " + SECRETS["BENCH_API_TOKEN"]
        lines[900] = lines[900][:40] + " " + SECRETS["BENCH_DB_PASSWORD"]
    return "\n".join(lines)


def _bare(argv: list[str], size: int) -> float:
    """MB/s of a bare 64 KiB read loop draining ``argv``'s stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    fd, total = proc.stdout.fileno(), 0
    while chunk := os.read(fd, 65536):
        total += len(chunk)
    proc.wait()
    elapsed = time.perf_counter() - started
    assert total == size, (total, size)
    return size / elapsed / 1e6


def _runner(argv: list[str], size: int, tmp: str) -> tuple[float, CountingSink]:
    """MB/s of the same producer through the runner (secrets declared)."""
    spec = RunSpec(argv=argv, secrets=SECRETS, data_dir=tmp, workdir=tmp)
    sink = CountingSink()
    started = time.perf_counter()
    result = asyncio.run(run_attempt(spec, sinks=[sink]))
    elapsed = time.perf_counter() - started
    assert result.outcome is Outcome.SUCCEEDED, result
    assert result.streams["stdout"].bytes_seen == size, result.streams
    return size / elapsed / 1e6, sink


def _throughput(size: int, rounds: int, with_secrets: bool, tmp: str) -> Row:
    argv = ["sh", "-c", PRODUCER, "producer", _block(with_secrets), str(size)]
    bare: list[float] = []
    ours: list[float] = []
    for i in range(rounds):
        progress(f"round {i + 1}/{rounds}: {size >> 20} MiB, secrets present: {with_secrets}")
        bare.append(_bare(argv, size))
        rate, sink = _runner(argv, size, tmp)
        ours.append(rate)
        # Absent secrets leave the bytes as they are; present ones shrink them.
        assert (sink.bytes == size) != with_secrets, (sink.bytes, size)
    ratio = max(ours) / max(bare)
    name = "occurring 2x/1000 lines" if with_secrets else "absent"
    return Row(
        f"output {size >> 20} MiB lines, 2 secrets {name}",
        f"{max(ours):.0f} MB/s",
        f"{max(bare):.0f} MB/s (os.read)",
        ratio,
        f">= {TARGET}",
        ratio >= TARGET,
    )


def _status_kib(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in KiB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def _rss_child(kind: str, mib: int) -> dict[str, int]:
    """In a fresh process: peak RSS over one long line, and RSS before it (KiB).

    The peak (``VmHWM``, what ``ru_maxrss`` reports) is reset first with
    ``5 > /proc/self/clear_refs`` so that imports do not count; where that is
    refused, the peak since start is used, an upper bound.
    """
    argv, size = ["head", "-c", f"{mib}M", "/dev/zero"], mib << 20
    with tempfile.TemporaryDirectory(prefix="stockade-bench-") as tmp:

        def once(cmd: list[str], n: int) -> int:
            if kind == "runner":
                return _runner(cmd, n, tmp)[1].bytes
            _bare(cmd, n)
            return n

        once(["true"], 0)  # warm up: imports, first event loop
        with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = _status_kib("VmRSS")
        seen = once(argv, size)
    return {"before": before, "peak": _status_kib("VmHWM"), "bytes": seen}


def _rss(kind: str, mib: int) -> dict[str, int]:
    cmd = [sys.executable, "-m", "benchmarks.bench_output", "rss", kind, str(mib)]
    found: dict[str, int] = json.loads(
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    )
    return found


def run(quick: bool) -> list[Row]:
    size, rounds, line_mib = (128 << 20, 1, 64) if quick else (1 << 30, 2, 256)
    with tempfile.TemporaryDirectory(prefix="stockade-bench-") as tmp:
        rows = [_throughput(size, rounds, False, tmp), _throughput(size, rounds, True, tmp)]
    progress(f"one {line_mib} MiB line without a newline, in fresh processes")
    ours, bare = _rss("runner", line_mib), _rss("bare", line_mib)
    growth = (ours["peak"] - ours["before"]) / 1024
    bare_growth = (bare["peak"] - bare["before"]) / 1024
    rows.append(
        Row(
            f"peak RSS growth, one {line_mib} MiB line",
            f"{growth:.1f} MiB",
            f"{bare_growth:.1f} MiB (os.read)",
            None,
            f"< {RSS_TARGET_MIB} MiB",
            growth < RSS_TARGET_MIB and ours["bytes"] == line_mib << 20,
            note=f"runner process: {ours['before'] / 1024:.0f} MiB resident after imports, "
            f"peak {ours['peak'] / 1024:.0f} MiB; {ours['bytes']} bytes reached the sink",
        )
    )
    return rows


if __name__ == "__main__":
    # python -m benchmarks.bench_output rss runner|bare SIZE: the memory child.
    if sys.argv[1:2] == ["rss"]:
        print(json.dumps(_rss_child(sys.argv[2], int(sys.argv[3]))))
