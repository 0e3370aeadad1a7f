"""The plan cache: what is kept, what is read back, what is ignored.

Real files in a real data directory: :func:`stockade.runplan.load.load_plan`
as ``stockade run`` calls it, and the plan files it leaves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stockade.config import ConfigValidationError
from stockade.runplan.load import load_plan

ONE = """\
version: 1
pipelines:
  one:
    steps:
      only:
        run: "echo ${GREETING:-hello}"
"""


def _write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "stockade.yaml"
    path.write_text(text)
    return path


def _plans(data: Path) -> list[Path]:
    return sorted((data / "plans").glob("*.json")) if (data / "plans").exists() else []


def _run_line(path: Path, data: Path, env: dict[str, str]) -> tuple[str | None, bool]:
    plan, hit = load_plan(path, data, env)
    return plan.pipelines["one"].steps["only"].task.run, hit


def test_a_plan_is_kept_and_read_back(tmp_path: Path) -> None:
    path, data = _write(tmp_path / "p", ONE), tmp_path / "data"
    assert _run_line(path, data, {}) == ("echo hello", False)
    assert _run_line(path, data, {}) == ("echo hello", True)
    (plan,) = _plans(data)
    assert oct(plan.stat().st_mode & 0o777) == "0o600"
    assert oct((data / "plans").stat().st_mode & 0o777) == "0o700"


def test_a_changed_file_is_compiled_again(tmp_path: Path) -> None:
    path, data = _write(tmp_path / "p", ONE), tmp_path / "data"
    load_plan(path, data, {})
    path.write_text(ONE.replace("hello", "again"))
    assert _run_line(path, data, {}) == ("echo again", False)
    assert _run_line(path, data, {}) == ("echo again", True)


def test_a_moved_file_is_compiled_again(tmp_path: Path) -> None:
    path, data = _write(tmp_path / "p", ONE), tmp_path / "data"
    load_plan(path, data, {})
    moved = tmp_path / "elsewhere" / "stockade.yaml"
    moved.parent.mkdir()
    shutil.move(path, moved)
    assert _run_line(moved, data, {}) == ("echo hello", False)


def test_a_variable_whose_value_enters_the_config_is_never_kept(tmp_path: Path) -> None:
    """``${GREETING:-hello}`` unset: the default, kept. Set: its value went
    into the config, so that plan is compiled every time, never stored; unset
    again, the kept plan is the right one."""
    path, data = _write(tmp_path / "p", ONE), tmp_path / "data"
    assert _run_line(path, data, {}) == ("echo hello", False)
    assert _run_line(path, data, {"GREETING": "s3cr3t-value"}) == ("echo s3cr3t-value", False)
    assert _run_line(path, data, {"GREETING": "s3cr3t-value"}) == ("echo s3cr3t-value", False)
    assert _run_line(path, data, {"GREETING": "other"}) == ("echo other", False)
    assert _run_line(path, data, {}) == ("echo hello", True)
    assert len(_plans(data)) == 1
    assert all(b"s3cr3t" not in plan.read_bytes() for plan in _plans(data))


def test_a_secret_reference_is_kept_without_its_value(tmp_path: Path) -> None:
    """A secret named in ``run`` stays a reference: the plan is kept, and
    holds the secret's name and source, never its value."""
    text = (
        "version: 1\nsecrets:\n  API_TOKEN: {env: API_TOKEN}\npipelines:\n  one:\n"
        "    steps:\n      only:\n        run: 'curl -H ${API_TOKEN} x'\n"
    )
    path, data = _write(tmp_path / "p", text), tmp_path / "data"
    env = {"API_TOKEN": "tok-very-secret"}
    assert _run_line(path, data, env) == ("curl -H ${API_TOKEN} x", False)
    assert _run_line(path, data, env) == ("curl -H ${API_TOKEN} x", True)
    (plan,) = _plans(data)
    assert b"tok-very-secret" not in plan.read_bytes()
    assert b'"API_TOKEN":{"env":"API_TOKEN"}' in plan.read_bytes()


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "other-format", "wrong-key", "empty"])
def test_a_damaged_plan_is_ignored(tmp_path: Path, damage: str) -> None:
    path, data = _write(tmp_path / "p", ONE), tmp_path / "data"
    load_plan(path, data, {})
    (plan,) = _plans(data)
    text = plan.read_text()
    damaged = {
        "corrupt": text.replace('"run"', '"run'),
        "truncated": text[: len(text) // 2],
        "other-format": text.replace('"format":1', '"format":99'),
        "wrong-key": text.replace(plan.stem, "0" * 64),
        "empty": "",
    }[damage]
    assert damaged != text or damage == "empty"
    plan.write_text(damaged)
    assert _run_line(path, data, {}) == ("echo hello", False)
    assert _run_line(path, data, {}) == ("echo hello", True)  # written again, whole


def test_a_plan_that_is_a_link_is_not_followed(tmp_path: Path) -> None:
    """A plan file replaced by a symlink (to a plan that says something else)
    is not read: the config is compiled again."""
    path, data = _write(tmp_path / "p", ONE), tmp_path / "data"
    load_plan(path, data, {})
    (plan,) = _plans(data)
    elsewhere = tmp_path / "evil.json"
    elsewhere.write_text(plan.read_text().replace("echo hello", "echo evil"))
    plan.unlink()
    os.symlink(elsewhere, plan)
    assert _run_line(path, data, {}) == ("echo hello", False)


def test_a_config_with_problems_is_reported_not_cached(tmp_path: Path) -> None:
    path, data = _write(tmp_path / "p", ONE + "      bad: {needs: [nowhere], run: x}\n"), tmp_path
    with pytest.raises(ConfigValidationError):
        load_plan(path, data / "data", {})
    assert _plans(data / "data") == []


def test_the_cache_can_be_turned_off(tmp_path: Path) -> None:
    path, data = _write(tmp_path / "p", ONE), tmp_path / "data"
    off = {"STOCKADE_PLAN_CACHE": "0"}
    assert _run_line(path, data, off) == ("echo hello", False)
    assert _run_line(path, data, off) == ("echo hello", False)
    assert _plans(data) == []


def test_a_plan_holds_json_data_only(tmp_path: Path) -> None:
    path, data = _write(tmp_path / "p", ONE), tmp_path / "data"
    load_plan(path, data, {})
    (plan,) = _plans(data)
    stored = json.loads(plan.read_text())
    assert stored["key"] == plan.stem and stored["plan"]["format"] == 1


def test_a_bind_source_removed_after_compiling_fails_the_job_not_the_run(tmp_path: Path) -> None:
    """The plan was compiled while the bind source existed; a run from it
    after the source is gone fails the job with why (as a worker does with
    a frozen profile); with the cache off the file does not load."""
    (tmp_path / "data").mkdir()
    path = _write(
        tmp_path,
        "version: 1\nsandboxes:\n  fake:\n    backend: mock\n"
        "    mounts: [{type: bind, source: ./data, target: /data}]\n"
        "pipelines:\n  p:\n    steps:\n      s: {task: {run: 'true', sandbox: fake}}\n",
    )
    env = {**os.environ, "STOCKADE_DATA_DIR": str(tmp_path / "state")}

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stockade.cli.main", "run", "-q", "-c", str(path)],
            env={**env, **extra}, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    assert run().returncode == 0
    (tmp_path / "data").rmdir()
    failed = run()
    assert failed.returncode == 1
    assert "does not exist on this machine" in " ".join(failed.stdout.split())
    assert run(STOCKADE_PLAN_CACHE="0").returncode == 2


def test_the_cache_keeps_the_newest_plans_only(tmp_path: Path) -> None:
    from stockade.runplan.cache import MAX_PLANS

    data = tmp_path / "data"
    for n in range(MAX_PLANS + 3):
        path = _write(tmp_path / f"p{n}", ONE)
        load_plan(path, data, {})
        if n == 0:
            first = _plans(data)
            os.utime(first[0], (1, 1))  # written long ago: the oldest
    kept = _plans(data)
    assert len(kept) == MAX_PLANS
    assert first[0] not in kept
    # the newest file's plan is still read back
    assert _run_line(path, data, {}) == ("echo hello", True)
