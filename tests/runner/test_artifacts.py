"""Artifacts: collected from the workspace after the job ends, as hostile input.

Real jobs (local and bwrap), real files; the job tries to make stockade read
or keep what it should not: a symlink to /etc/shadow, a symlinked directory,
a FIFO (a blocking open would hang the collector), a sparse file of a
terabyte."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from stockade.artifactstore import LocalStorage, delete_artifacts
from stockade.reasons import Reason
from stockade.runner.artifacts import glob_regex
from stockade.runner.attempt import run
from stockade.runner.result import Outcome, Result
from stockade.runner.spec import RunSpec
from stockade.sandbox.registry import create
from stockade.spec.sandbox import SandboxProfile
from tests.sandbox.conftest import require

HOSTILE = (
    "mkdir -p out/deep && echo alpha > out/a.txt && printf beta > out/deep/b.txt; "
    "ln -s /etc/shadow out/shadow.txt; ln -s /etc out/etc; ln -s a.txt out/inside.txt; "
    "mkfifo out/fifo.txt"
)
SPARSE = HOSTILE + "; truncate -s 1T out/sparse.txt"


def _run(tmp_path: Path, line: str, backend: str = "local", **spec: object) -> Result:
    sandbox = create(SandboxProfile(backend=backend), slot=f"art-{backend}")
    sandbox.setup()
    try:
        return asyncio.run(run(
            RunSpec(shell=line, workspace={}, data_dir=str(tmp_path / "data"), **spec),  # type: ignore[arg-type]
            sandbox=sandbox,
        ))  # fmt: skip
    finally:
        sandbox.cleanup()


@pytest.mark.parametrize("backend", ["local", "bwrap"])
def test_hostile_workspace_keeps_only_regular_files_inside(tmp_path: Path, backend: str) -> None:
    require(backend)
    result = _run(
        tmp_path, HOSTILE, backend, artifacts=("out/**",),
        artifact_limits={"file": 1024 * 1024},
    )  # fmt: skip
    assert result.outcome is Outcome.SUCCEEDED, result.error
    kept = {a["name"]: a for a in result.artifacts}
    assert set(kept) == {"out/a.txt", "out/deep/b.txt", "out/inside.txt"}
    assert kept["out/a.txt"]["sha256"] == hashlib.sha256(b"alpha\n").hexdigest()
    assert kept["out/deep/b.txt"]["size"] == 4
    skipped = {s["name"]: s["reason"] for s in result.artifact_skipped}
    assert "escapes the workspace" in skipped["out/shadow.txt"]
    assert "FIFO" in skipped["out/fifo.txt"]
    assert "out/etc" in skipped and not any(n.startswith("out/etc/") for n in kept)
    storage = LocalStorage(tmp_path / "data" / "artifacts")
    with storage.open(result.job_id, kept["out/a.txt"]["sha256"]) as fh:
        assert fh.read() == b"alpha\n"


def test_over_a_limit_fails_the_job_and_keeps_nothing(tmp_path: Path) -> None:
    result = _run(tmp_path, SPARSE, artifacts=("out/**",))  # refused from its size: no read
    assert result.outcome is Outcome.FAILED and result.reason == Reason.OUTPUT_ERROR
    assert "'out/sparse.txt' is 1099511627776 bytes, over the file limit" in (result.error or "")
    assert "artifact_limits" in (result.error or "")
    assert result.artifacts == []
    folder = tmp_path / "data" / "artifacts" / result.job_id
    assert not folder.exists() or list(folder.iterdir()) == []
    many = _run(tmp_path, "for i in 1 2 3; do echo $i > f$i; done", artifacts=("f*",),
                artifact_limits={"count": 2})  # fmt: skip
    assert many.outcome is Outcome.FAILED and "more than 2 artifacts" in (many.error or "")
    total = _run(tmp_path, "head -c 600 /dev/zero > a; head -c 600 /dev/zero > b",
                 artifacts=("*",), artifact_limits={"total": 1000})  # fmt: skip
    assert "over the total limit of 1000 bytes" in (total.error or "")


def test_delete_artifacts_removes_a_jobs_files(tmp_path: Path) -> None:
    result = _run(tmp_path, "echo x > r.txt", artifacts=("*.txt",))
    assert [a["name"] for a in result.artifacts] == ["r.txt"]
    delete_artifacts(result.job_id, tmp_path / "data")
    assert not (tmp_path / "data" / "artifacts" / result.job_id).exists()


@pytest.mark.parametrize(
    ("glob", "yes", "no"),
    [
        ("*.txt", ["a.txt"], ["d/a.txt", "a.txtx"]),
        ("**/*.txt", ["a.txt", "d/e/a.txt"], ["a.log"]),
        ("out/**", ["out/a", "out/d/b"], ["outx/a"]),
        ("f[0-9]?", ["f1a"], ["fa1", "f1"]),
    ],
)
def test_glob_matching(glob: str, yes: list[str], no: list[str]) -> None:
    pattern = glob_regex(glob)
    assert all(pattern.match(p) for p in yes)
    assert not any(pattern.match(p) for p in no)


def test_a_refused_attempt_leaves_an_earlier_attempts_files(tmp_path: Path) -> None:
    from stockade.errors import ArtifactError
    from stockade.runner.artifacts import collect

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.txt").write_text("same\n")
    storage = LocalStorage(tmp_path / "artifacts")
    first = collect(str(workspace), ("*.txt",), {}, storage, "job1")
    (workspace / "b.txt").write_text("x" * 100)
    with pytest.raises(ArtifactError, match="over the file limit of 10 bytes"):
        collect(str(workspace), ("*.txt",), {"file": 10}, storage, "job1")
    with storage.open("job1", first.kept[0]["sha256"]) as fh:  # attempt 1's file stays
        assert fh.read() == b"same\n"
