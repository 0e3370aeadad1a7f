"""stockade's data directory is its own: private on disk, hidden from sandboxed jobs.

The default data directory (``./.stockade``) lies inside the workspace that
every sandbox binds read-write. The tests fill it the way users do (a job
run with ``exec``, one submitted to the SQLite store), then run a job in
each isolating backend from the same directory and look at what it can see.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.conftest import require

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
CANARY = "canary-of-another-job-6d1f"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    return subprocess.run(
        [*STOCKADE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def _fill(workspace: Path) -> Path:
    """Leave another job's log and a queued job in ``workspace/.stockade``."""
    ran = _cli("exec", "--", "echo", CANARY, cwd=workspace)
    assert ran.returncode == 0, ran.stderr
    queued = _cli("submit", "--shell", f"echo {CANARY}", cwd=workspace)
    assert queued.returncode == 0, queued.stderr
    return workspace / ".stockade"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("backend", ["bwrap", "chroot", "oci"])
def test_a_sandboxed_job_cannot_see_the_data_dir(backend: str, workspace: Path) -> None:
    require(backend)
    data = _fill(workspace)
    probe = (
        f"id -u; ls -a .stockade {data} {data}/logs; "
        f"cat .stockade/stockade.db {data}/stockade.db {data}/logs/*; true"
    )
    seen = _cli("exec", "--sandbox", backend, "--shell", probe, cwd=workspace)
    assert seen.returncode == 0, seen.stderr
    lines = seen.stdout.splitlines()
    assert lines[0] == "65534"  # the job is nobody
    assert CANARY not in seen.stdout
    assert not {"stockade.db", "logs", "run"} & set(lines), seen.stdout
    assert "Permission denied" in seen.stderr


def test_the_data_dir_and_everything_in_it_is_private(tmp_path: Path) -> None:
    data = _fill(tmp_path)
    assert _mode(data) == 0o700
    assert _mode(data / "logs") == 0o700
    files = [data / "stockade.db", *data.glob("stockade.db-*"), *(data / "logs").iterdir()]
    assert len(files) >= 2
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_an_open_data_dir_is_tightened_when_stockade_opens_it(tmp_path: Path) -> None:
    data = _fill(tmp_path)
    (data / "logs").chmod(0o755)
    for path in (data, *data.glob("stockade.db*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    listed = _cli("jobs", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert _mode(data) == 0o700
    assert {_mode(p) for p in data.glob("stockade.db*")} == {0o600}
    ran = _cli("exec", "--", "true", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert _mode(data / "logs") == 0o700
