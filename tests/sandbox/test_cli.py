"""``stockade exec --sandbox`` and ``stockade sandboxes``, as users run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stockade.sandbox.identity import NOBODY
from stockade.sandbox.leftovers import leftovers
from tests.sandbox.conftest import require

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def stockade(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [*STOCKADE, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        env={**os.environ, **env},
    )  # fmt: skip
    out, err = proc.communicate(timeout=60)
    assert not leftovers(proc.pid), f"stockade {args[0]} left {leftovers(proc.pid)}"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_exec_with_a_builtin_profile_and_adjustments(tmp_path: Path) -> None:
    require("bwrap")
    out = tmp_path / "out"
    out.mkdir()
    os.chown(out, NOBODY, NOBODY)
    line = "id -u; cat /proc/self/cgroup >/dev/null; echo x > /data/f; ls /"
    proc = stockade(
        "exec", "--sandbox", "bwrap", "--memory", "64MiB", "--pids", "64", "--cpus", "1",
        "--bind", f"{out}:/data", "--shell", line, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("65534\n")
    assert "data" in proc.stdout.split()
    assert (out / "f").read_text() == "x\n"


def test_exec_memory_limit_reports_oom(tmp_path: Path) -> None:
    proc = stockade(
        "exec", "--memory", "32MiB", "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=256M",
        "count=1", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 128 + 9
    assert "ran out of memory" in proc.stderr
    # The summary says the limit and the peak, and what the job used.
    assert "memory limit 32.0MiB reached (peak " in proc.stderr
    assert "stockade: used cpu " in proc.stderr and "memory peak " in proc.stderr


def test_exec_task_runs_in_its_profile(tmp_path: Path) -> None:
    require("chroot")
    (tmp_path / "stockade.yaml").write_text(
        "version: 1\n"
        "tasks:\n"
        "  whoami:\n"
        '    run: id -u; echo "host=$HOST_VAR"\n'
        "    sandbox: builder\n"
        "sandboxes:\n"
        "  builder:\n"
        "    backend: chroot\n"
        "    limits: {pids: 64}\n"
    )
    proc = stockade("exec", "whoami", "--result", "-", cwd=tmp_path, HOST_VAR="leaked")
    assert proc.returncode == 0, proc.stderr
    uid, host, rest = proc.stdout.split("\n", 2)
    assert uid == "65534"
    assert host == "host="  # a sandbox profile clears the environment by default
    assert json.loads(rest)["outcome"] == "succeeded"


def test_exec_usage_errors(tmp_path: Path) -> None:
    proc = stockade("exec", "--bind", "nocolon", "--", "true", cwd=tmp_path)
    assert proc.returncode == 2 and "--bind takes SRC:DST" in proc.stderr
    proc = stockade("exec", "--sandbox", "local", "--network", "none", "--", "true", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot cut the network" in proc.stderr
    proc = stockade("exec", "--sandbox", "nowhere", "--", "true", cwd=tmp_path)
    assert (
        proc.returncode == 2
        and "--sandbox nowhere: no such backend (backends: local" in proc.stderr
    )


def test_sandboxes_lists_backends(tmp_path: Path) -> None:
    proc = stockade("sandboxes", "--json", cwd=tmp_path)
    rows = {row["backend"]: row for row in json.loads(proc.stdout)}
    assert set(rows) == {"local", "bwrap", "chroot", "oci", "mock"}
    assert all(row["usable"] or (row["reason"] and row["fix"]) for row in rows.values())
    assert proc.returncode == (0 if all(r["usable"] for r in rows.values()) else 1)
    text = stockade("sandboxes", cwd=tmp_path).stdout
    assert "bwrap" in text and "isolates:" in text
    assert stockade("sandboxes", "--leftovers", str(os.getpid()), cwd=tmp_path).returncode == 0
